"""Everything that speaks the Jules protocol: the client, its resources and errors.

Pure Python and `requests`; it knows nothing of Django, so the sync, the services and the
simulator's tests can all use it without settings. Import from `jules.client`,
`jules.errors` and `jules.resources` directly.
"""
