"""The template and schedule pages (docs/templates.md)."""
