"""Session pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from sessions_app.selectors import sessions_for_user


@require_GET
def session_list(request: HttpRequest) -> HttpResponse:
    sessions = sessions_for_user(request.user).select_related("launched_by")[:50]
    return render(request, "sessions_app/session_list.html", {"sessions": sessions})
