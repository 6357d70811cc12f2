"""The result of a bulk message: one line per session, following each delivery live.

The bulk bar's "Send a message" opens one outbox action per session that awaits feedback
(`sessions.services.sessions_bulk`); this page shows where each stands
(docs/launch-queue.md#bulk-message).
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseClientRedirect

from sessions_app.models import OutboxAction
from sessions_app.sessions.services import BulkResult
from sessions_app.web.htmx import stop_polling
from sessions_app.web.request import AuthedRequest

TEMPLATE = "sessions_app/launch_queue/bulk_message.html"
LIMIT = 200
SHOWN_REASONS = 10


def bulk_message_result(request: AuthedRequest, result: BulkResult, back: str) -> HttpResponse:
    """After the bulk POST: say what was skipped or refused, then show the deliveries."""
    for session, why in result.skipped[:SHOWN_REASONS]:
        messages.info(request, f"Not sent to {session.display_title}: {why}")
    for session, why in result.refused[:SHOWN_REASONS]:
        messages.warning(request, f"Not sent to {session.display_title}: {why}")
    left_out = len(result.skipped) + len(result.refused) - 2 * SHOWN_REASONS
    if left_out > 0:
        messages.info(request, f"{left_out} more were not sent.")
    if not result.actions:
        messages.info(request, "No selected session awaits feedback; nothing was sent.")
        return redirect(back)
    query = [("a", str(action.pk)) for _, action in result.actions] + [("back", back)]
    url = reverse("sessions_app:bulk-message-status") + "?" + urlencode(query)
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _ids(values: list[str]) -> list[uuid.UUID]:
    ids = []
    for value in values[:LIMIT]:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    return ids


@require_GET
def bulk_message_status(request: AuthedRequest) -> HttpResponse:
    """Where each of the user's messages stands; only the user's own actions are shown."""
    ids = _ids(request.GET.getlist("a"))
    actions = list(
        OutboxAction.objects.filter(pk__in=ids, actor=request.user, kind=OutboxAction.Kind.MESSAGE)
        .select_related("session")
        .order_by("created_at")
    )
    back = request.GET.get("back", "")
    if not back.startswith("/sessions/") or "//" in back:
        back = reverse("sessions_app:session-list")
    pending = sum(1 for a in actions if a.is_open)
    context = {
        "actions": actions,
        "pending": pending,
        "delivered": sum(1 for a in actions if a.status == OutboxAction.Status.DONE),
        "failed": sum(1 for a in actions if a.status == OutboxAction.Status.FAILED),
        "query": request.GET.urlencode(),
        "back": back,
        "nav_active": "sessions",
    }
    if not request.htmx:
        return render(request, TEMPLATE, context)
    response = render(request, f"{TEMPLATE}#results", context)
    return response if pending else stop_polling(response)
