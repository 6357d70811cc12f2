"""Helpers for fragments that poll themselves.

A polled fragment carries a digest of what the browser shows (`?v=`). When a poll would
render the same thing again, the answer is 204, which htmx does not swap, so the page
stays still: no lost focus, no closed `<details>`, no live region read out again. Once
the thing polled cannot change any more, the last answer is a 286, on which htmx stops.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django_htmx.http import HttpResponseStopPolling

from sessions_app.web.request import AuthedRequest

POLL_VERSION = "__poll_version__"
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')


def digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def render_versioned(
    request: HttpRequest, template: str, context: dict[str, Any]
) -> tuple[SafeString, str]:
    """Render a template whose HTML names its own digest where it says `poll_version`.

    The CSRF token is left out of the digest: Django masks it differently each time.
    """
    html = render_to_string(template, {**context, "poll_version": POLL_VERSION}, request=request)
    version = digest(CSRF_INPUT.sub("", html))
    return mark_safe(html.replace(POLL_VERSION, version)), version  # noqa: S308 - rendered above.


def unchanged(request: HttpRequest, version: str) -> bool:
    """Whether the poller already shows this version."""
    return bool(version) and request.GET.get("v") == version


def not_modified() -> HttpResponse:
    return HttpResponse(status=204)


def stop_polling(response: HttpResponse) -> HttpResponse:
    """Mark a fragment as the last one its poller needs."""
    response.status_code = HttpResponseStopPolling.status_code
    return response


def fragment_only(request: AuthedRequest, url: str) -> HttpResponse | None:
    """Fragments are for htmx; a person who opens one directly gets the page it is from."""
    return None if request.htmx else redirect(url)
