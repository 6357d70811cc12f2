"""Middleware that lets htmx responses raise toasts from Django's messages."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.contrib.messages import get_messages
from django.http import HttpRequest, HttpResponse


class HtmxMessagesMiddleware:
    """Move queued messages into an `HX-Trigger` event on htmx responses.

    A full page renders its messages in the toast area itself; a fragment has no such
    area, so the messages travel in a `messages` event that the base page's script shows.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not getattr(request, "htmx", False):
            return response
        # A redirect the client follows will show the messages on the next page.
        if 300 <= response.status_code < 400 or "HX-Redirect" in response:
            return response
        storage = get_messages(request)
        items = [{"level": m.level_tag, "text": str(m.message)} for m in storage]
        if not items:
            return response
        existing = response.get("HX-Trigger")
        triggers: dict[str, object] = {}
        if existing:
            try:
                loaded = json.loads(existing)
                triggers = loaded if isinstance(loaded, dict) else {existing: None}
            except ValueError:
                triggers = {existing: None}
        triggers["messages"] = items
        response["HX-Trigger"] = json.dumps(triggers)
        return response
