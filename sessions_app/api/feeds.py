"""What integrators read in bulk: the audit export and the notification events they poll
(docs/api.md, "Exports and events")."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.conf import settings
from django.db.models import Min
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from ninja import Query, Router

from sessions_app import access
from sessions_app.api import schemas as s
from sessions_app.api.auth import caller, need
from sessions_app.api.common import ERRORS, MAX_LIMIT, AuditQuery, audit_entries
from sessions_app.api.errors import invalid
from sessions_app.audit import export
from sessions_app.models import Event, EventKind, Scope
from sessions_app.notifications.channels import webhook

# A poller is not shown events younger than this: one written by a transaction that
# commits later than a newer one would otherwise fall behind its `after` for good.
EVENTS_HOLD_BACK = dt.timedelta(seconds=10)
router = Router()
EXPORT_RESPONSE = {
    200: {
        "description": "The matching entries, newest first, streamed.",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


@router.get(
    "/audit/export",
    response=ERRORS,
    tags=["audit"],
    openapi_extra={"responses": EXPORT_RESPONSE},
)
def audit_export(
    request: HttpRequest,
    filters: Query[AuditQuery],
    format: Literal["jsonl", "csv"] = "jsonl",
) -> Any:
    """The audit history the caller may see, with the audit list's filters, as JSON lines
    or CSV (cells that a spreadsheet would run as formulas are quoted)."""
    need(request, Scope.READ)
    entries = audit_entries(request)
    response = StreamingHttpResponse(
        export.WRITERS[format](entries), content_type=export.CONTENT_TYPES[format]
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{format}"'
    return response


@router.get("/events", response={200: s.EventPage, **ERRORS}, tags=["events"])
def event_list(
    request: HttpRequest,
    after: int = Query(0, ge=0, le=2**63 - 1, description="Only events after this one."),
    kind: list[str] = Query(  # noqa: B008 (ninja's way of declaring a query list)
        [], description="Only these kinds (repeat it), as docs/notifications.md lists them."
    ),
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
) -> Any:
    """The notification events of the caller's teams, oldest first, for polling: pass the
    answer's `next_after` as `after`. Events of the last few seconds wait for the next
    poll, so that one committed late is not skipped."""
    need(request, Scope.READ)
    unknown = [k for k in kind if k not in EventKind.values]
    if unknown:
        raise invalid("kind", f"Unknown event kind {unknown[0][:60]!r}.")
    visible = Event.objects.filter(access.events_visible_q(caller(request)), id__gt=after)
    if kind:
        visible = visible.filter(kind__in=kind)
    # Stop before the oldest young event, not just skip young ones: ids are given out at
    # insert, commits may come in another order.
    cutoff = timezone.now() - EVENTS_HOLD_BACK
    horizon = visible.filter(created_at__gt=cutoff).aggregate(first=Min("id"))["first"]
    rows = visible if horizon is None else visible.filter(id__lt=horizon)
    events = list(rows.select_related("team").order_by("id")[:limit])
    return {
        "items": [{"id": e.pk, **webhook.payload(e, settings.SITE_URL)} for e in events],
        "next_after": events[-1].pk if events else after,
    }
