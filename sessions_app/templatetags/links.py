"""Links to addresses that come from Jules: only web addresses become links.

Jules' answers are outside data. A pull request or session URL with another scheme
(`javascript:`, `data:`) would run in the portal's origin when clicked, so it is dropped.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django import template

register = template.Library()


@register.filter
def web_url(value: object) -> str:
    """The value if it is an http(s) address, otherwise ""."""
    text = str(value or "").strip()
    try:
        scheme = urlsplit(text).scheme.lower()
    except ValueError:
        return ""
    return text if scheme in {"http", "https"} else ""
