"""Writes. Each service checks the role and the team's policy, then writes the audit entry
(and, for actions on Jules, an outbox row) in one transaction, and enqueues delivery once
that transaction commits.

Services raise `Http404` for outsiders (through the selectors) and `ActionNotAllowed` with
a message a person understands when the role, the policy or the session's state forbids.
Sections: session actions (delivered through the outbox), bulk actions, team admin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from jules import errors as jerrors
from jules.client import JulesClient
from sessions_app import tasks
from sessions_app.audit import chain as audit
from sessions_app.audit.chain import Target
from sessions_app.models import (
    JulesConnection,
    Membership,
    OutboxAction,
    Role,
    Session,
    SessionState,
    Team,
)
from sessions_app.models.jules import SyncStatus
from sessions_app.models.teams import role_at_least
from sessions_app.sessions.selectors import RoleRequired, require_role, role_in_team

logger = logging.getLogger(__name__)


class ActionNotAllowed(Exception):
    """The user may see the object but not do this to it now; the message says why."""


class KeyRejected(ActionNotAllowed):
    """Jules did not accept an API key (or could not be asked); nothing was saved."""


ROLE_WORDS = {
    Role.VIEWER: "a viewer",
    Role.MEMBER: "a member",
    Role.APPROVER: "an approver",
    Role.ADMIN: "an admin",
}


def _require(user: Any, team_id: int, needed: str, doing: str) -> str:
    """The user's role in the team; Http404 for outsiders, ActionNotAllowed if too low."""
    try:
        return require_role(user, team_id, needed)
    except RoleRequired as exc:
        raise ActionNotAllowed(
            f"Only {ROLE_WORDS[Role(needed)]} or above in this team may {doing}."
        ) from exc


def _session_target(session: Session) -> Target:
    return Target("session", str(session.pk), session.display_title[:300])


def _connection_target(connection: JulesConnection) -> Target:
    return Target("connection", str(connection.pk), connection.label)


def _after_commit(task: Any, *args: Any) -> None:
    """Enqueue a task once the current transaction commits, tolerating a dead broker."""

    def send() -> None:
        # A dead broker must not lose the work: the rows are committed and the outbox
        # sweep (or the sync schedule) picks them up, so the failure is logged, not raised.
        try:
            task.delay(*args)
        except Exception:  # The broker being down is exactly the case handled here.
            logger.warning("Could not enqueue %s%r; the periodic sweep will.", task.name, args)

    transaction.on_commit(send)


# --- session actions, delivered through the outbox ------------------------------------


def _open_action(
    *,
    user: Any,
    session: Session | None,
    connection: JulesConnection,
    kind: str,
    payload: dict[str, Any],
    details: dict[str, Any],
    request: HttpRequest | None,
) -> OutboxAction:
    """The outbox row and its audit entry; call inside a transaction."""
    action = OutboxAction.objects.create(
        team_id=connection.team_id,
        connection=connection,
        session=session,
        actor=user,
        kind=kind,
        payload=payload,
    )
    audit.record(
        f"session.{kind}",
        actor=user,
        team=connection.team_id,
        target=_session_target(session) if session else _connection_target(connection),
        details={**details, "action_id": str(action.id)},
        request=request,
    )
    _after_commit(tasks.deliver_action, str(action.id))
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
    _require(user, connection.team_id, Role.MEMBER, "launch sessions")
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
    with transaction.atomic():
        return _open_action(
            user=user,
            session=None,
            connection=connection,
            kind=OutboxAction.Kind.LAUNCH,
            payload=payload,
            details={**payload, "prompt": prompt[:500]},
            request=request,
        )


def latest_plan_id(session: Session) -> str:
    """The id of the newest plan Jules generated for the session ("" before any plan)."""
    return (
        session.activities.filter(kind="planGenerated")
        .order_by("-create_time", "-id")
        .values_list("plan_id", flat=True)
        .first()
        or ""
    )


def plan_timed_out(session: Session) -> bool:
    """Whether Jules completed the session because nobody approved its plan in time.

    Spec §7, odd path 1: an unapproved plan ends COMPLETED about ten minutes after creation,
    with only the plan and no outputs, and approvePlan still answers and may resume the
    work. The official SDK skips its state check for this reason, so the portal lets an
    approver try it.
    """
    if session.state != SessionState.COMPLETED or session.deleted_remotely:
        return False
    kinds = set(session.activities.values_list("kind", flat=True))
    return "planGenerated" in kinds and "planApproved" not in kinds and not session.outputs.exists()


def _approvable_state(session: Session) -> tuple[bool, str]:
    if session.deleted_remotely:
        return False, "The session was deleted on Jules."
    if session.state == SessionState.AWAITING_PLAN_APPROVAL or plan_timed_out(session):
        return True, ""
    return False, "The session is not waiting for plan approval."


def _approval_policy(user: Any, session: Session) -> tuple[bool, str]:
    """The role and the team's self-approval rule; the session's state is not considered."""
    role = role_in_team(user, session.team_id)
    if role is None:
        return False, "You are not in this session's team."
    if not role_at_least(role, Role.APPROVER):
        return False, "Only an approver or an admin of the team may approve plans."
    forbids_self = Team.objects.filter(pk=session.team_id, forbid_self_approval=True).exists()
    if forbids_self and session.launched_by_id == user.pk:
        return (
            False,
            "Your team's policy says the person who launched a session may not approve its plan.",
        )
    return True, ""


def can_approve(user: Any, session: Session) -> tuple[bool, str]:
    """Whether the user may approve the session's plan now, and if not, why not."""
    allowed, why = _approval_policy(user, session)
    if not allowed:
        return allowed, why
    return _approvable_state(session)


def approval_for(session: Session, plan_id: str | None = None) -> OutboxAction | None:
    """The approval recorded for the session's latest plan (or `plan_id`), failed ones last."""
    if plan_id is None:
        plan_id = latest_plan_id(session)
    actions = OutboxAction.objects.filter(
        session=session, kind=OutboxAction.Kind.APPROVE, payload__plan_id=plan_id
    ).select_related("actor")
    return (
        actions.exclude(status=OutboxAction.Status.FAILED).order_by("created_at").first()
        or actions.order_by("-created_at").first()
    )


def session_approve_plan(
    *, user: Any, session: Session, request: HttpRequest | None = None
) -> OutboxAction:
    """Approve the session's latest plan, exactly once per plan.

    When two people click at the same moment, the session row lock serialises them and the
    second gets the first one's action back, so there is one outbox row, one audit entry
    and one call to Jules per plan. A failed approval may be tried again.
    """
    require_role(user, session.team_id, Role.VIEWER)
    allowed, why = _approval_policy(user, session)
    if not allowed:
        raise ActionNotAllowed(why)
    with transaction.atomic():
        locked = Session.objects.select_for_update().get(pk=session.pk)
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
        allowed, why = _approvable_state(locked)
        if not allowed:
            raise ActionNotAllowed(why)
        return _open_action(
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
    _require(user, session.team_id, Role.MEMBER, "message the agent")
    if not prompt.strip():
        raise ActionNotAllowed("The message is empty.")
    if "\x00" in prompt:
        # PostgreSQL cannot store it in text or JSON; browsers never send it.
        raise ActionNotAllowed("The message contains a null character; remove it and send again.")
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
            details={"remote_id": session.remote_id, "prompt": prompt[:500]},
            request=request,
        )


def _set_archived(
    *, user: Any, session: Session, archived: bool, request: HttpRequest | None
) -> OutboxAction:
    verb = "archive" if archived else "unarchive"
    role = _require(user, session.team_id, Role.MEMBER, f"{verb} sessions")
    # The roles: members (and approvers, who add only approving) archive their
    # own sessions; admins, who may delete any session, archive any.
    if not role_at_least(role, Role.ADMIN) and session.launched_by_id != user.pk:
        raise ActionNotAllowed(
            f"Members and approvers may {verb} only the sessions they launched; "
            f"an admin of the team may {verb} any."
        )
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
    _require(user, session.team_id, Role.ADMIN, "delete sessions")
    with transaction.atomic():
        return _open_action(
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
    refused: list[tuple[Session, str]] = field(default_factory=list)


BULK: dict[str, Callable[..., OutboxAction]] = {
    "approve": session_approve_plan,
    "archive": session_archive,
    "unarchive": session_unarchive,
}


def sessions_bulk(
    *, user: Any, action: str, sessions: Iterable[Session], request: HttpRequest | None = None
) -> BulkResult:
    """Apply one action to several sessions, each checked on its own."""
    if action not in BULK:
        raise ActionNotAllowed(f"The portal has no bulk action called {action!r}.")
    result = BulkResult()
    for session in sessions:
        try:
            BULK[action](user=user, session=session, request=request)
        except ActionNotAllowed as exc:
            result.refused.append((session, str(exc)))
        except Http404:
            result.refused.append((session, "You are not in this session's team."))
        else:
            result.done.append(session)
    return result


# --- team admin ------------------------------------------------------------------------


def _admin(actor: Any, team: Team, doing: str) -> None:
    _require(actor, team.pk, Role.ADMIN, doing)


def _lock_team(team: Team) -> Team:
    # Membership changes of one team are serialised on its row, so that two admins
    # demoting each other at the same moment cannot leave the team without an admin.
    return Team.objects.select_for_update().get(pk=team.pk)


def _other_admins(team: Team, membership: Membership) -> bool:
    return Membership.objects.filter(team=team, role=Role.ADMIN).exclude(pk=membership.pk).exists()


def membership_add(
    *, actor: Any, team: Team, username: str, role: str, request: HttpRequest | None = None
) -> Membership:
    _admin(actor, team, "add members")
    role = Role(role)
    user = get_user_model().objects.filter(username=username.strip()).first()
    if user is None:
        raise ActionNotAllowed(
            f"There is no user named {username.strip()!r}; an operator creates accounts."
        )
    with transaction.atomic():
        _lock_team(team)
        existing = Membership.objects.filter(team=team, user=user).first()
        if existing is not None:
            raise ActionNotAllowed(
                f"{user.get_username()} is already in the team as {existing.get_role_display()}."
            )
        membership = Membership.objects.create(team=team, user=user, role=role)
        audit.record(
            "member.add",
            actor=actor,
            team=team,
            target=Target("user", str(user.pk), user.get_username()),
            details={"username": user.get_username(), "role": role.value},
            request=request,
        )
    return membership


def membership_change_role(
    *, actor: Any, membership: Membership, role: str, request: HttpRequest | None = None
) -> Membership:
    team = membership.team
    _admin(actor, team, "change roles")
    role = Role(role)
    with transaction.atomic():
        _lock_team(team)
        current = Membership.objects.select_related("user").get(pk=membership.pk)
        if current.role == role:
            return current
        if current.role == Role.ADMIN and not _other_admins(team, current):
            raise ActionNotAllowed(
                "This is the team's last admin; make someone else an admin first."
            )
        before = current.role
        current.role = role
        current.save(update_fields=["role"])
        audit.record(
            "member.role_change",
            actor=actor,
            team=team,
            target=Target("user", str(current.user_id), current.user.get_username()),
            details={"username": current.user.get_username(), "from": before, "to": role.value},
            request=request,
        )
    return current


def membership_remove(
    *, actor: Any, membership: Membership, request: HttpRequest | None = None
) -> None:
    team = membership.team
    _admin(actor, team, "remove members")
    with transaction.atomic():
        _lock_team(team)
        current = Membership.objects.select_related("user").filter(pk=membership.pk).first()
        if current is None:
            return
        if current.role == Role.ADMIN and not _other_admins(team, current):
            raise ActionNotAllowed(
                "This is the team's last admin; make someone else an admin first."
            )
        username = current.user.get_username()
        current.delete()
        audit.record(
            "member.remove",
            actor=actor,
            team=team,
            target=Target("user", str(current.user_id), username),
            details={"username": username, "role": current.role},
            request=request,
        )


@sensitive_variables("api_key", "client")
def check_api_key(api_key: str, base_url: str) -> None:
    """Ask Jules whether it accepts the key (one small sources.list); raise KeyRejected if not.

    The key never appears in the message: only the kind of failure and the address.
    """
    try:
        client = JulesClient(
            api_key,
            base_url,
            connect_timeout=settings.JULES_CONNECT_TIMEOUT,
            read_timeout=settings.JULES_READ_TIMEOUT,
            # A person is waiting on the form: a short budget, then a clear answer.
            retry_budget=min(settings.JULES_RETRY_BUDGET, 10.0),
        )
    except ValueError:
        raise KeyRejected(
            "This is not an API key Jules could accept: it has characters other than "
            "letters, digits and punctuation. Nothing was saved."
        ) from None
    try:
        client.list_sources(page_size=1)
    except jerrors.AuthError:
        raise KeyRejected(
            "Jules did not accept this API key (it may be mistyped, revoked or deleted). "
            "Nothing was saved."
        ) from None
    except jerrors.PermissionDeniedError:
        raise KeyRejected("Jules denied access with this API key. Nothing was saved.") from None
    except jerrors.NotFoundError:
        raise KeyRejected(
            f"{base_url} does not look like the Jules API (it answered 404). Nothing was saved."
        ) from None
    except jerrors.JulesError as exc:
        raise KeyRejected(
            f"Could not check the key with Jules at {base_url}: {exc.message} "
            "Nothing was saved; try again in a moment."
        ) from None


@sensitive_variables("api_key", "connection")
def connection_add(
    *,
    actor: Any,
    team: Team,
    label: str,
    api_key: str,
    base_url: str,
    request: HttpRequest | None = None,
) -> JulesConnection:
    """Add a Jules account to the team, after Jules confirmed that the key works."""
    _admin(actor, team, "add connections")
    label = label.strip()
    api_key = api_key.strip()
    if not label or not api_key:
        raise ActionNotAllowed("A connection needs a label and an API key.")
    if JulesConnection.objects.filter(team=team, label=label).exists():
        raise ActionNotAllowed(f"The team already has a connection called {label!r}.")
    check_api_key(api_key, base_url)
    connection = JulesConnection(team=team, label=label, base_url=base_url, added_by=actor)
    connection.set_api_key(api_key)
    try:
        with transaction.atomic():
            connection.save()
            audit.record(
                "connection.add",
                actor=actor,
                team=team,
                target=_connection_target(connection),
                details={"label": label, "base_url": base_url},
                request=request,
            )
            _after_commit(tasks.sync_connection, connection.pk)
    except IntegrityError:
        raise ActionNotAllowed(f"The team already has a connection called {label!r}.") from None
    return connection


@sensitive_variables("api_key", "locked")
def connection_rotate_key(
    *,
    actor: Any,
    connection: JulesConnection,
    api_key: str,
    request: HttpRequest | None = None,
) -> JulesConnection:
    """Replace the connection's key, after Jules confirmed that the new one works."""
    _require(actor, connection.team_id, Role.ADMIN, "rotate API keys")
    api_key = api_key.strip()
    if not api_key:
        raise ActionNotAllowed("Paste the new API key.")
    check_api_key(api_key, connection.base_url)
    with transaction.atomic():
        locked = JulesConnection.objects.select_for_update().get(pk=connection.pk)
        locked.set_api_key(api_key)
        locked.key_rotated_at = timezone.now()
        fields = ["api_key_encrypted", "key_rotated_at"]
        if locked.sync_status in {SyncStatus.BROKEN, SyncStatus.ERROR}:
            # The old key's failure no longer describes the connection.
            locked.sync_status = SyncStatus.NEVER if not locked.last_success_at else SyncStatus.OK
            locked.last_error = ""
            locked.consecutive_failures = 0
            fields += ["sync_status", "last_error", "consecutive_failures"]
        locked.save(update_fields=fields)
        audit.record(
            "connection.rotate",
            actor=actor,
            team=locked.team_id,
            target=_connection_target(locked),
            details={"label": locked.label},
            request=request,
        )
        if locked.enabled:
            _after_commit(tasks.sync_connection, locked.pk)
    return locked


def connection_set_enabled(
    *,
    actor: Any,
    connection: JulesConnection,
    enabled: bool,
    request: HttpRequest | None = None,
) -> JulesConnection:
    verb = "enable" if enabled else "disable"
    _require(actor, connection.team_id, Role.ADMIN, f"{verb} connections")
    with transaction.atomic():
        locked = JulesConnection.objects.select_for_update().get(pk=connection.pk)
        if locked.enabled == enabled:
            return locked
        locked.enabled = enabled
        locked.sync_status = (
            SyncStatus.DISABLED
            if not enabled
            else SyncStatus.OK
            if locked.last_success_at
            else SyncStatus.NEVER
        )
        locked.save(update_fields=["enabled", "sync_status"])
        audit.record(
            f"connection.{verb}",
            actor=actor,
            team=locked.team_id,
            target=_connection_target(locked),
            details={"label": locked.label},
            request=request,
        )
        if enabled:
            _after_commit(tasks.sync_connection, locked.pk)
    return locked


def team_update_policy(
    *,
    actor: Any,
    team: Team,
    require_plan_approval: bool,
    forbid_self_approval: bool,
    request: HttpRequest | None = None,
) -> Team:
    _admin(actor, team, "change the approval policy")
    with transaction.atomic():
        locked = _lock_team(team)
        before = {
            "require_plan_approval": locked.require_plan_approval,
            "forbid_self_approval": locked.forbid_self_approval,
        }
        after = {
            "require_plan_approval": require_plan_approval,
            "forbid_self_approval": forbid_self_approval,
        }
        if before == after:
            return locked
        locked.require_plan_approval = require_plan_approval
        locked.forbid_self_approval = forbid_self_approval
        locked.save(update_fields=list(after))
        audit.record(
            "policy.change",
            actor=actor,
            team=locked,
            target=Target("team", str(locked.pk), locked.name),
            details={"before": before, "after": after},
            request=request,
        )
    return locked
