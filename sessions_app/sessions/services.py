"""Session writes. Each service asks `access` whether the person may, then writes the audit
entry and an outbox row in one transaction (`outbox.services.open_action`); delivery is
enqueued once that transaction commits.

Services raise `Http404` for outsiders and `ActionNotAllowed` with a message a person
understands when the role, the policy or the session's state forbids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.http import Http404, HttpRequest

from sessions_app import access
from sessions_app.access import ActionNotAllowed
from sessions_app.launch_queue.services import ticket_open
from sessions_app.models import (
    ActivityKind,
    JulesConnection,
    OutboxAction,
    Session,
    SessionState,
    Team,
)
from sessions_app.outbox.services import open_action

__all__ = ["ActionNotAllowed"]


# --- session actions, delivered through the outbox ------------------------------------


def session_launch(
    *,
    user: Any,
    connection: JulesConnection,
    prompt: str,
    title: str = "",
    source_name: str = "",
    starting_branch: str = "",
    require_plan_approval: bool = True,
    auto_create_pr: bool = False,
    request: HttpRequest | None = None,
    any_connection: bool = False,
    rerun_of: Session | None = None,
) -> OutboxAction:
    """Queue a launch: it starts when its account has room (docs/launch-queue.md).

    `any_connection` lets the queue start it on any of the team's connections that has the
    repository; `rerun_of` links it to the session it runs again.
    """
    access.require(access.may_launch(access.require_in_team(user, connection.team_id)))
    if not connection.enabled:
        raise ActionNotAllowed("This connection is disabled; a team admin can enable it.")
    if not prompt.strip():
        raise ActionNotAllowed("Say what Jules should do: the prompt is empty.")
    if Team.objects.filter(pk=connection.team_id, require_plan_approval=True).exists():
        # The team's policy: Jules' auto-approval never decides for the team.
        require_plan_approval = True
    payload = {
        "prompt": prompt,
        "title": title,
        "source": source_name,
        "starting_branch": starting_branch,
        "require_plan_approval": require_plan_approval,
        "automation_mode": "AUTO_CREATE_PR" if auto_create_pr else "",
    }
    if rerun_of is not None and rerun_of.team_id != connection.team_id:
        raise ActionNotAllowed("A session is run again in its own team.")
    details: dict[str, Any] = {**payload, "prompt": prompt[:500]}
    if rerun_of is not None:
        details["rerun_of"] = rerun_of.pk
    with transaction.atomic():
        action = open_action(
            user=user,
            session=None,
            connection=connection,
            kind=OutboxAction.Kind.LAUNCH,
            payload=payload,
            details=details,
            request=request,
        )
        ticket_open(action=action, any_connection=any_connection, rerun_of=rerun_of)
        return action


def latest_plan_id(session: Session) -> str:
    """The id of the newest plan Jules generated for the session ("" before any plan)."""
    return (
        session.activities.filter(kind=ActivityKind.PLAN_GENERATED)
        .order_by("-create_time", "-id")
        .values_list("plan_id", flat=True)
        .first()
        or ""
    )


def can_approve(user: Any, session: Session) -> access.Decision:
    """Whether the user may approve the session's plan now, and if not, why not."""
    return access.may_approve(user, access.role_in_team(user, session.team_id), session)


def approval_for(session: Session, plan_id: str | None = None) -> OutboxAction | None:
    """The approval recorded for the session's latest plan (or `plan_id`), failed ones last."""
    if plan_id is None:
        plan_id = latest_plan_id(session)
    return access.counting_approval(
        OutboxAction.objects.filter(
            session=session, kind=OutboxAction.Kind.APPROVE, payload__plan_id=plan_id
        ).select_related("actor")
    )


def session_approve_plan(
    *, user: Any, session: Session, request: HttpRequest | None = None
) -> OutboxAction:
    """Approve the session's latest plan, exactly once per plan.

    When two people click at the same moment, the session row lock serialises them and the
    second gets the first one's action back, so there is one outbox row, one audit entry
    and one call to Jules per plan. A failed approval may be tried again.
    """
    role = access.require_in_team(user, session.team_id)
    access.require(access.may_approve_by_policy(user, role, session))
    with transaction.atomic():
        locked = Session.objects.select_for_update().get(pk=session.pk)
        plan_id = latest_plan_id(locked)
        existing = approval_for(locked, plan_id)
        if existing is not None and existing.status != OutboxAction.Status.FAILED:
            return existing
        access.require(access.approvable_state(locked))
        return open_action(
            user=user,
            session=locked,
            connection=locked.connection,
            kind=OutboxAction.Kind.APPROVE,
            payload={"plan_id": plan_id},
            details={"plan_id": plan_id, "remote_id": locked.remote_id, "state": locked.state},
            request=request,
        )


def session_send_message(
    *, user: Any, session: Session, prompt: str, request: HttpRequest | None = None
) -> OutboxAction:
    access.require(access.may_message(access.require_in_team(user, session.team_id), session))
    if not prompt.strip():
        raise ActionNotAllowed("The message is empty.")
    if "\x00" in prompt:
        # PostgreSQL cannot store it in text or JSON; browsers never send it.
        raise ActionNotAllowed("The message contains a null character; remove it and send again.")
    with transaction.atomic():
        return open_action(
            user=user,
            session=session,
            connection=session.connection,
            kind=OutboxAction.Kind.MESSAGE,
            payload={"prompt": prompt},
            details={"remote_id": session.remote_id, "prompt": prompt[:500]},
            request=request,
        )


def _set_archived(
    *, user: Any, session: Session, archived: bool, request: HttpRequest | None
) -> OutboxAction:
    role = access.require_in_team(user, session.team_id)
    access.require(access.may_archive(role, user, session, archived=archived))
    kind = OutboxAction.Kind.ARCHIVE if archived else OutboxAction.Kind.UNARCHIVE
    with transaction.atomic():
        # The cache shows the intent at once; the next sync confirms what Jules holds.
        Session.objects.filter(pk=session.pk).update(archived=archived)
        return open_action(
            user=user,
            session=session,
            connection=session.connection,
            kind=kind,
            payload={},
            details={"remote_id": session.remote_id},
            request=request,
        )


def session_archive(
    *, user: Any, session: Session, request: HttpRequest | None = None
) -> OutboxAction:
    return _set_archived(user=user, session=session, archived=True, request=request)


def session_unarchive(
    *, user: Any, session: Session, request: HttpRequest | None = None
) -> OutboxAction:
    return _set_archived(user=user, session=session, archived=False, request=request)


def session_delete(
    *, user: Any, session: Session, request: HttpRequest | None = None
) -> OutboxAction:
    access.require(access.may_delete(access.require_in_team(user, session.team_id)))
    with transaction.atomic():
        return open_action(
            user=user,
            session=session,
            connection=session.connection,
            kind=OutboxAction.Kind.DELETE,
            payload={},
            details={"remote_id": session.remote_id},
            request=request,
        )


# --- bulk ------------------------------------------------------------------------------


@dataclass
class BulkResult:
    done: list[Session] = field(default_factory=list)
    # Nothing to do: already in the state asked for (a plan approved before, say).
    skipped: list[tuple[Session, str]] = field(default_factory=list)
    refused: list[tuple[Session, str]] = field(default_factory=list)
    # The outbox row opened for each session done, to follow its delivery.
    actions: list[tuple[Session, OutboxAction]] = field(default_factory=list)


def _already_done(action: str, session: Session) -> str:
    """Why `action` has nothing left to do on the session, or "" when it has."""
    if action == "archive" and session.archived:
        return "it was already archived."
    if action == "unarchive" and not session.archived:
        return "it was not archived."
    if action == "message" and session.state != SessionState.AWAITING_USER_FEEDBACK:
        return "it does not await feedback."
    if action == "approve":
        approval = approval_for(session)
        if approval is not None and approval.status != OutboxAction.Status.FAILED:
            who = approval.actor.get_username() if approval.actor else "someone"
            return f"its plan was already approved by {who}."
    return ""


BULK: dict[str, Callable[..., OutboxAction]] = {
    "approve": session_approve_plan,
    "archive": session_archive,
    "unarchive": session_unarchive,
    "message": session_send_message,
}


def sessions_bulk(
    *,
    user: Any,
    action: str,
    sessions: Iterable[Session],
    request: HttpRequest | None = None,
    prompt: str = "",
) -> BulkResult:
    """Apply one action to several sessions, each checked on its own.

    "message" sends `prompt` to each selected session that awaits feedback, one outbox
    action per session (docs/launch-queue.md#bulk-message).
    """
    if action not in BULK:
        raise ActionNotAllowed(f"The portal has no bulk action called {action!r}.")
    extra: dict[str, Any] = {}
    if action == "message":
        if not prompt.strip():
            raise ActionNotAllowed("Write the message to send first.")
        extra["prompt"] = prompt
    result = BulkResult()
    for session in sessions:
        if why := _already_done(action, session):
            result.skipped.append((session, why))
            continue
        try:
            opened = BULK[action](user=user, session=session, request=request, **extra)
        except ActionNotAllowed as exc:
            result.refused.append((session, str(exc)))
        except Http404:
            result.refused.append((session, "You are not in this session's team."))
        else:
            result.done.append(session)
            result.actions.append((session, opened))
    return result
