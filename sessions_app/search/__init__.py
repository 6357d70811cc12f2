"""Search across sessions: the index kept by the sync, and the selector the page uses.

docs/search.md tells the whole story: what is indexed, how each database serves it, and
why a common word costs no more than a rare one.
"""
