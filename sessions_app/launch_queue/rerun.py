"""Running a failed or finished session again: the launch form prefilled from it, and the
link between the two sessions (docs/launch-queue.md#re-run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sessions_app import access
from sessions_app.access import ActionNotAllowed
from sessions_app.models import LaunchTicket, Session, Source
from sessions_app.sessions.forms import parse_id


def rerun_source(request: Any, value: Any, *, check: bool = True) -> Session | None:
    """The session to run again, if the value names one the user may run again.

    `check=False` only reads it back for the form's notice (the POST checks again)."""
    pk = parse_id(value)
    if pk is None or pk == 0:
        return None
    session = Session.objects.filter(pk=pk).select_related("connection").first()
    if session is None:
        return None
    if not check:
        return session
    role = access.role_in_team(request.user, session.team_id)
    if role is None:
        raise ActionNotAllowed("The session to run again is not in your teams.")
    access.require(access.may_rerun(role, session))
    return session


def rerun_initial(request: Any, value: str) -> dict[str, Any]:
    """The launch form as the session was launched, or {} if the user may not run it."""
    pk = parse_id(value)
    session = (
        Session.objects.filter(pk=pk, team__memberships__user=request.user)
        .select_related("connection")
        .first()
        if pk
        else None
    )
    if session is None:
        return {}
    role = access.role_in_team(request.user, session.team_id)
    if not access.may_rerun(role, session):
        return {}
    source = Source.objects.filter(
        connection_id=session.connection_id, name=session.source_name
    ).first()
    return {
        "connection": session.connection_id,
        "source": str(source.pk) if source and session.source_name else "",
        "branch": session.starting_branch,
        "prompt": session.prompt,
        "title": session.title,
        "require_plan_approval": session.require_plan_approval is not False,
        "auto_create_pr": session.automation_mode == "AUTO_CREATE_PR",
        "rerun_of": session.pk,
    }


@dataclass(frozen=True)
class RerunLinks:
    """Both directions: what this session re-runs, and its own re-runs (newest first)."""

    original: Session | None
    reruns: list[LaunchTicket]
    may_rerun: bool


def rerun_links(session: Session, role: str | None) -> RerunLinks:
    ticket = (
        LaunchTicket.objects.filter(action__session=session, rerun_of__isnull=False)
        .select_related("rerun_of")
        .first()
    )
    reruns = list(
        LaunchTicket.objects.filter(rerun_of=session)
        .select_related("action__session", "launcher")
        .order_by("-created_at")[:10]
    )
    return RerunLinks(
        original=ticket.rerun_of if ticket else None,
        reruns=reruns,
        may_rerun=bool(access.may_rerun(role, session)),
    )
