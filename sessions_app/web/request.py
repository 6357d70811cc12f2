"""Function views. `AuthedRequest` types what the middleware guarantees on every view."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class AuthedRequest(HttpRequest):
    """A request after LoginRequiredMiddleware and HtmxMiddleware."""

    user: User
    htmx: HtmxDetails
