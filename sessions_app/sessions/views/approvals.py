"""The approvals inbox and the approve endpoint.

The inbox lists every session waiting for plan approval that the user may approve, across
their teams, oldest first, with the latest plan inline. The approve endpoint answers htmx
with the fragment that asked: the inbox row, or the `approval` fragment that the session
page shows (the button, or the recorded approval once there is one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from sessions_app import access
from sessions_app.access import ActionNotAllowed
from sessions_app.models import Activity, ActivityKind, OutboxAction, Session
from sessions_app.sessions import services
from sessions_app.sessions.selectors import approvable_sessions_for_user, get_session_for_user
from sessions_app.web.context_processors import approvals_waiting, approvals_waiting_changed
from sessions_app.web.htmx import not_modified, render_versioned, unchanged
from sessions_app.web.request import AuthedRequest

TEMPLATE = "sessions_app/approvals/inbox.html"


@dataclass(frozen=True)
class ApprovalState:
    """What the approval fragment shows of a session: its latest plan, the approval that
    counts for it, and whether this person may approve now (and if not, why)."""

    session: Session
    plan: Activity | None
    approval: OutboxAction | None
    can_approve: bool
    reason: str


def with_approval_state(
    sessions: list[Session], user: object, *, check: bool = True
) -> list[ApprovalState]:
    """Each session's latest plan and its recorded approval, in two queries.

    With `check`, also whether the user may approve it now (the inbox's selector already
    applied the role and the policy, so the inbox skips that per-row work). The session
    page uses this too, to render the `approval` fragment of the inbox template:
    `{% include "sessions_app/approvals/inbox.html#approval" %}` with `state` in context.
    """
    ids = [s.pk for s in sessions]
    plans: dict[int, Activity] = {}
    for plan in Activity.objects.filter(
        session_id__in=ids, kind=ActivityKind.PLAN_GENERATED
    ).order_by("create_time", "id"):
        plans[plan.session_id] = plan
    recorded: dict[tuple[int, str], list[OutboxAction]] = {}
    for action in _approvals(ids):
        key = (action.session_id or 0, action.payload.get("plan_id", ""))
        recorded.setdefault(key, []).append(action)
    approvals = {key: access.counting_approval(actions) for key, actions in recorded.items()}
    states = []
    for session in sessions:
        latest = plans.get(session.pk)
        decision = services.can_approve(user, session) if check else access.ALLOWED
        states.append(
            ApprovalState(
                session=session,
                plan=latest,
                approval=approvals.get((session.pk, latest.plan_id if latest else "")),
                can_approve=decision.allowed,
                reason=decision.reason,
            )
        )
    return states


def _approvals(session_ids: Iterable[int]) -> list[OutboxAction]:
    return list(
        OutboxAction.objects.filter(
            session_id__in=list(session_ids), kind=OutboxAction.Kind.APPROVE
        )
        .select_related("actor")
        .order_by("created_at")
    )


INBOX_LIMIT = 500


@require_GET
def approvals_inbox(request: AuthedRequest) -> HttpResponse:
    """The inbox; its list polls itself (`?v=` its digest, 204 while unchanged) as long
    as the user approves in some team, and brings the header's count along."""
    sessions = list(
        approvable_sessions_for_user(request.user).select_related(
            "team", "launched_by", "connection"
        )[:INBOX_LIMIT]
    )
    states = with_approval_state(sessions, request.user, check=False)
    if len(sessions) < INBOX_LIMIT:
        approvals_waiting(request.user, fresh=len(sessions))
    context = {
        "states": states,
        "in_inbox": True,
        "nav_active": "approvals",
        "live": access.approves_in_some_team(request.user),
    }
    context["list_html"], version = render_versioned(request, f"{TEMPLATE}#list", context)
    if not (request.htmx and request.htmx.target == "approvals"):
        response = render(request, TEMPLATE, context)
    elif unchanged(request, version):
        response = not_modified()
    else:
        context["waiting"] = approvals_waiting(request.user)
        response = render(request, f"{TEMPLATE}#list-poll", context)
    # The same address answers a fragment or the page; caches must keep them apart.
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


@require_POST
def session_approve(request: AuthedRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk)
    error = ""
    try:
        services.session_approve_plan(user=request.user, session=session, request=request)
    except ActionNotAllowed as exc:
        error = str(exc)
        messages.error(request, error)
    else:
        messages.success(request, "Plan approved; sending the approval to Jules.")
        approvals_waiting_changed(request.user)
    if request.htmx:
        session.refresh_from_db()
        [state] = with_approval_state([session], request.user)
        fragment = "row" if request.htmx.target == f"approval-row-{session.pk}" else "approval"
        context = {
            "session": session,
            "state": state,
            "error": error,
            "in_inbox": fragment == "row",
        }
        return render(request, f"{TEMPLATE}#{fragment}", context)
    back = request.POST.get("next", "")
    # Only a path of this site: `redirect` would try any other word as a view name.
    if not back.startswith("/") or not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = reverse("sessions_app:session-detail", args=[session.pk])
    return redirect(back)
