"""The API's URLs. The portal's login-required middleware would redirect a program to the
sign-in page; the API answers 401 itself instead."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern

from sessions_app.api.views import api


def urls() -> Any:
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            login_not_required(pattern.callback)
    return patterns, app_name, namespace
