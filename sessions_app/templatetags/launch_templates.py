"""The session page's "from template X vN" line (docs/templates.md)."""

from __future__ import annotations

from typing import Any

from django import template

from sessions_app.launch_templates.selectors import launch_of_session

register = template.Library()


@register.inclusion_tag("launch_templates/origin.html")
def template_origin(session: Any) -> dict[str, Any]:
    # The session and the template belong to one team, so whoever sees one sees the other.
    return {"launch": launch_of_session(session)}
