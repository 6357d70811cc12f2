"""Writes. Each service checks the role and the team's policy, then writes the audit entry
and an outbox row in one transaction, and enqueues delivery once that transaction commits.

Services raise `Http404` for outsiders (through the selectors) and `ActionNotAllowed` with
a message a person understands when the role, the policy or the session's state forbids.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.http import Http404, HttpRequest

from sessions_app import audit
from sessions_app.audit import Target
from sessions_app.models import JulesConnection, OutboxAction, Role, Session, SessionState
from sessions_app.models.teams import role_at_least
from sessions_app.selectors import RoleRequired, require_role, role_in_team


class ActionNotAllowed(Exception):
    """The user may see the object but not do this to it now."""


def _role(user: Any, team_id: int, needed: str) -> str:
    try:
        return require_role(user, team_id, needed)
    except RoleRequired as exc:
        raise ActionNotAllowed(str(exc)) from exc


def _session_target(session: Session) -> Target:
    return Target("session", str(session.pk), session.display_title[:300])


def _enqueue(action: OutboxAction) -> None:
    from sessions_app import tasks

    action_id = str(action.id)
    transaction.on_commit(lambda: _send(tasks.deliver_action, action_id))


def _send(task: Any, action_id: str) -> None:
    # A dead broker must not lose the action: the row is committed and the sweep
    # redelivers it, so a failure to enqueue is logged, not raised to the user.
    try:
        task.delay(action_id)
    except Exception:  # The broker being down is exactly the case handled here.
        import logging

        logging.getLogger(__name__).warning(
            "Could not enqueue action %s; the outbox sweep will deliver it.", action_id
        )


def _open_action(
    *,
    user: Any,
    session: Session | None,
    connection: JulesConnection,
    kind: str,
    payload: dict[str, Any],
    audit_action: str,
    details: dict[str, Any],
    request: HttpRequest | None,
) -> OutboxAction:
    action = OutboxAction.objects.create(
        team_id=connection.team_id,
        connection=connection,
        session=session,
        actor=user,
        kind=kind,
        payload=payload,
    )
    audit.record(
        audit_action,
        actor=user,
        team=connection.team_id,
        target=_session_target(session)
        if session
        else Target("connection", str(connection.pk), connection.label),
        details={**details, "action_id": str(action.id)},
        request=request,
    )
    _enqueue(action)
    return action


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
) -> OutboxAction:
    _role(user, connection.team_id, Role.MEMBER)
    if not connection.enabled:
        raise ActionNotAllowed("This connection is disabled; an admin can enable it.")
    if not prompt.strip():
        raise ActionNotAllowed("A prompt is needed.")
    team = connection.team
    if team.require_plan_approval:
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
    with transaction.atomic():
        return _open_action(
            user=user,
            session=None,
            connection=connection,
            kind=OutboxAction.Kind.LAUNCH,
            payload=payload,
            audit_action="session.launch",
            details={k: v for k, v in payload.items() if k != "prompt"} | {"prompt": prompt[:500]},
            request=request,
        )


def latest_plan_id(session: Session) -> str:
    return (
        session.activities.filter(kind="planGenerated")
        .order_by("-create_time", "-id")
        .values_list("plan_id", flat=True)
        .first()
        or ""
    )


def can_approve(user: Any, session: Session) -> tuple[bool, str]:
    """Whether the user may approve the session's plan now, and why not."""
    role = role_in_team(user, session.team_id)
    if role is None:
        return False, "Not in this team."
    if not role_at_least(role, Role.APPROVER):
        return False, "Approving plans needs the approver role."
    if session.state != SessionState.AWAITING_PLAN_APPROVAL:
        return False, "The session is not waiting for plan approval."
    if session.team.forbid_self_approval and session.launched_by_id == user.pk:
        return (
            False,
            "Your team's policy says the person who launched a session may not approve its plan.",
        )
    return True, ""


def session_approve_plan(
    *, user: Any, session: Session, request: HttpRequest | None = None
) -> OutboxAction:
    _role(user, session.team_id, Role.VIEWER)
    with transaction.atomic():
        # Lock the session so that two people clicking at the same moment are serialised:
        # the second finds the first one's action for this plan and gets it back.
        locked = Session.objects.select_for_update().select_related("team").get(pk=session.pk)
        allowed, why = can_approve(user, locked)
        if not allowed and locked.state == SessionState.AWAITING_PLAN_APPROVAL:
            raise ActionNotAllowed(why)
        if not role_at_least(role_in_team(user, locked.team_id) or Role.VIEWER, Role.APPROVER):
            raise ActionNotAllowed(why)
        plan_id = latest_plan_id(locked)
        existing = (
            OutboxAction.objects.filter(
                session=locked, kind=OutboxAction.Kind.APPROVE, payload__plan_id=plan_id
            )
            .exclude(status=OutboxAction.Status.FAILED)
            .first()
        )
        if existing is not None:
            return existing
        if not allowed:
            raise ActionNotAllowed(why)
        return _open_action(
            user=user,
            session=locked,
            connection=locked.connection,
            kind=OutboxAction.Kind.APPROVE,
            payload={"plan_id": plan_id},
            audit_action="session.approve",
            details={"plan_id": plan_id, "remote_id": locked.remote_id},
            request=request,
        )


def session_send_message(
    *, user: Any, session: Session, prompt: str, request: HttpRequest | None = None
) -> OutboxAction:
    _role(user, session.team_id, Role.MEMBER)
    if not prompt.strip():
        raise ActionNotAllowed("The message is empty.")
    if not session.accepts_messages:
        raise ActionNotAllowed(
            f"A {session.get_state_display().lower()} session does not take messages."
        )
    with transaction.atomic():
        return _open_action(
            user=user,
            session=session,
            connection=session.connection,
            kind=OutboxAction.Kind.MESSAGE,
            payload={"prompt": prompt},
            audit_action="session.message",
            details={"remote_id": session.remote_id, "prompt": prompt[:500]},
            request=request,
        )


def _set_archived(
    *, user: Any, session: Session, archived: bool, request: HttpRequest | None
) -> OutboxAction:
    role = _role(user, session.team_id, Role.MEMBER)
    if not role_at_least(role, Role.APPROVER) and session.launched_by_id != user.pk:
        raise ActionNotAllowed("Members may archive only the sessions they launched.")
    kind = OutboxAction.Kind.ARCHIVE if archived else OutboxAction.Kind.UNARCHIVE
    with transaction.atomic():
        # The cache shows the intent at once; the next sync confirms what Jules holds.
        Session.objects.filter(pk=session.pk).update(archived=archived)
        return _open_action(
            user=user,
            session=session,
            connection=session.connection,
            kind=kind,
            payload={},
            audit_action=f"session.{kind}",
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
    _role(user, session.team_id, Role.ADMIN)
    with transaction.atomic():
        return _open_action(
            user=user,
            session=session,
            connection=session.connection,
            kind=OutboxAction.Kind.DELETE,
            payload={},
            audit_action="session.delete",
            details={"remote_id": session.remote_id},
            request=request,
        )


@dataclass
class BulkResult:
    done: list[Session] = field(default_factory=list)
    refused: list[tuple[Session, str]] = field(default_factory=list)


BULK = {
    "approve": session_approve_plan,
    "archive": session_archive,
    "unarchive": session_unarchive,
}


def sessions_bulk(
    *, user: Any, action: str, sessions: Iterable[Session], request: HttpRequest | None = None
) -> BulkResult:
    if action not in BULK:
        raise ActionNotAllowed(f"Unknown bulk action {action!r}.")
    result = BulkResult()
    for session in sessions:
        try:
            BULK[action](user=user, session=session, request=request)
            result.done.append(session)
        except (ActionNotAllowed, Http404) as exc:
            result.refused.append((session, str(exc)))
    return result
