"""The versioned JSON API at /api/v1/ (docs/api.md): the pages' services, for programs."""
