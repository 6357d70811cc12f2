"""Launch templates and schedules (docs/templates.md)."""
