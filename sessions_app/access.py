"""Every "may this person do this" rule, in one place.

Views, services and the Django admin all ask here. A rule answers a `Decision` (allowed,
and a sentence for the person when not); `require` turns a refusal into `ActionNotAllowed`.
Outsiders never reach a rule: `role_in_team` is None for them and the selectors answer 404.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from django.db.models import Q
from django.http import Http404

from sessions_app.models import (
    ActivityKind,
    EventKind,
    Invitation,
    Membership,
    OutboxAction,
    Role,
    Schedule,
    Session,
    SessionState,
    Team,
)
from sessions_app.models.teams import role_at_least


class ActionNotAllowed(Exception):
    """The user may see the object but not do this to it now; the message says why."""


class RoleRequired(Exception):
    """The user is in the team but their role does not allow the action."""

    def __init__(self, needed: str, message: str = "") -> None:
        self.needed = needed
        super().__init__(message or f"This needs the {needed} role in the team.")


ROLE_WORDS = {
    Role.VIEWER: "a viewer",
    Role.MEMBER: "a member",
    Role.APPROVER: "an approver",
    Role.ADMIN: "an admin",
}


class Decision(NamedTuple):
    allowed: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.allowed


ALLOWED = Decision(True)


def _refuse(reason: str) -> Decision:
    return Decision(False, reason)


# --- roles ------------------------------------------------------------------------------


def role_in_team(user: Any, team_id: int) -> str | None:
    return (
        Membership.objects.filter(user=user, team_id=team_id).values_list("role", flat=True).first()
    )


def memberships_for_user(user: Any) -> dict[int, Membership]:
    """The user's memberships keyed by team id: one query that answers every role check."""
    return {m.team_id: m for m in Membership.objects.filter(user=user).select_related("team")}


def has_role(role: str | None, needed: str) -> bool:
    return role is not None and role_at_least(role, needed)


def require_role(user: Any, team_id: int, needed: str) -> str:
    """Return the user's role, or raise Http404 (outsider) / RoleRequired (too low a role)."""
    role = role_in_team(user, team_id)
    if role is None:
        raise Http404("No such object.")
    if not role_at_least(role, needed):
        raise RoleRequired(needed)
    return role


def _role_rule(role: str | None, needed: str, doing: str) -> Decision:
    if has_role(role, needed):
        return ALLOWED
    return _refuse(f"Only {ROLE_WORDS[Role(needed)]} or above in this team may {doing}.")


def require(decision: Decision) -> None:
    if not decision:
        raise ActionNotAllowed(decision.reason)


def require_in_team(user: Any, team_id: int) -> str:
    """The user's role in the team; Http404 for outsiders."""
    role = role_in_team(user, team_id)
    if role is None:
        raise Http404("No such object.")
    return role


# --- the rules --------------------------------------------------------------------------


def may_launch(role: str | None) -> Decision:
    return _role_rule(role, Role.MEMBER, "launch sessions")


def may_message(role: str | None, session: Session) -> Decision:
    if not has_role(role, Role.MEMBER):
        return _refuse("Viewers cannot message the agent; only a member or above in this team may.")
    if session.deleted_remotely:
        return _refuse("The session was deleted on Jules; it takes no more messages.")
    if not session.accepts_messages:
        return _refuse(f"A {session.get_state_display().lower()} session does not take messages.")
    return ALLOWED


def may_archive(
    role: str | None, user: Any, session: Session, *, archived: bool = True
) -> Decision:
    verb = "archive" if archived else "unarchive"
    if not has_role(role, Role.MEMBER):
        return _role_rule(role, Role.MEMBER, f"{verb} sessions")
    # Members and approvers (who add only approving) archive their own sessions; admins,
    # who may delete any session, archive any.
    if not has_role(role, Role.ADMIN) and session.launched_by_id != user.pk:
        return _refuse(
            f"Members and approvers may {verb} only the sessions they launched; "
            f"an admin of the team may {verb} any."
        )
    return ALLOWED


def may_delete(role: str | None) -> Decision:
    return _role_rule(role, Role.ADMIN, "delete sessions")


def may_manage_members(role: str | None, doing: str = "manage members") -> Decision:
    return _role_rule(role, Role.ADMIN, doing)


def may_manage_connections(role: str | None, doing: str = "manage connections") -> Decision:
    return _role_rule(role, Role.ADMIN, doing)


def may_invite(role: str | None, doing: str = "invite people") -> Decision:
    return _role_rule(role, Role.ADMIN, doing)


def may_add_without_consent(operator: bool) -> Decision:
    """Only the operator (the Django admin) adds a person directly; a team admin invites,
    and the person decides."""
    if operator:
        return ALLOWED
    return _refuse("A person joins a team by accepting an invitation; invite them instead.")


def addressed_to(user: Any) -> Q:
    """The invitations for this person: to their account, or by email to their address."""
    mine = Q(invited_user=user)
    if user.email:
        mine |= Q(invited_user=None, email__iexact=user.email.strip())
    return mine


def is_invitee(user: Any, invitation: Invitation) -> bool:
    if invitation.invited_user_id is not None:
        return bool(invitation.invited_user_id == user.pk)
    return bool(user.email) and invitation.email.lower() == user.email.strip().lower()


def may_answer_invitation(user: Any, invitation: Invitation) -> Decision:
    """Only the invited person answers, once, before it expires."""
    if not is_invitee(user, invitation):
        raise Http404("No such invitation.")
    if invitation.status != Invitation.Status.PENDING:
        return _refuse(f"This invitation was already {invitation.get_status_display().lower()}.")
    if not invitation.is_open():
        return _refuse("This invitation has expired; ask a team admin for a new one.")
    return ALLOWED


def may_change_policy(role: str | None) -> Decision:
    return _role_rule(role, Role.ADMIN, "change the approval policy")


def may_manage_team_channels(
    role: str | None, doing: str = "manage the team's channels"
) -> Decision:
    """Team channels (webhooks, Slack, Chat, Teams), their delivery logs and the team's
    notification defaults."""
    return _role_rule(role, Role.ADMIN, doing)


# Team channels and their delivery logs are their team admins' business alone.
ADMIN_EVENT_KINDS = (EventKind.ENDPOINT_DISABLED,)


def events_visible_q(user: Any) -> Q:
    """The notification events the user may read (the API's `/events`): those of the teams
    they are in now, whose sessions and connections every member sees, except the events
    about team channels, which only the team's admins see."""
    teams = Membership.objects.filter(user=user).values("team_id")
    admin_teams = Membership.objects.filter(user=user, role=Role.ADMIN).values("team_id")
    return Q(team_id__in=teams) & (~Q(kind__in=ADMIN_EVENT_KINDS) | Q(team_id__in=admin_teams))


# --- approvals --------------------------------------------------------------------------


def plan_timed_out(session: Session) -> bool:
    """Whether Jules completed the session because nobody approved its plan in time.

    An unapproved plan ends COMPLETED with only the plan and no outputs, and approvePlan
    may still resume the work (docs/jules-api.md#plan-approval-timeout), so an approver may try it.
    """
    if session.state != SessionState.COMPLETED or session.deleted_remotely:
        return False
    kinds = set(session.activities.values_list("kind", flat=True))
    return (
        ActivityKind.PLAN_GENERATED in kinds
        and ActivityKind.PLAN_APPROVED not in kinds
        and not session.outputs.exists()
    )


def approvable_state(session: Session) -> Decision:
    if session.deleted_remotely:
        return _refuse("The session was deleted on Jules.")
    if session.state == SessionState.AWAITING_PLAN_APPROVAL or plan_timed_out(session):
        return ALLOWED
    return _refuse("The session is not waiting for plan approval.")


def may_approve_by_policy(user: Any, role: str | None, session: Session) -> Decision:
    """The role and the team's self-approval rule; the session's state is not considered."""
    if role is None:
        return _refuse("You are not in this session's team.")
    if not has_role(role, Role.APPROVER):
        return _refuse("Only an approver or an admin of the team may approve plans.")
    forbids_self = Team.objects.filter(pk=session.team_id, forbid_self_approval=True).exists()
    if forbids_self and session.launched_by_id == user.pk:
        return _refuse(
            "Your team's policy says the person who launched a session may not approve its plan."
        )
    return ALLOWED


def launches_in_some_team(user: Any) -> bool:
    """Whether the user is a member or above of at least one team (viewers only read)."""
    roles = [Role.MEMBER, Role.APPROVER, Role.ADMIN]
    return Membership.objects.filter(user=user, role__in=roles).exists()


def approves_in_some_team(user: Any) -> bool:
    """Whether the user is an approver or an admin of at least one team."""
    return Membership.objects.filter(user=user, role__in=[Role.APPROVER, Role.ADMIN]).exists()


def may_approve(user: Any, role: str | None, session: Session) -> Decision:
    """Whether the user may approve the session's plan now, and if not, why not."""
    decision = may_approve_by_policy(user, role, session)
    return decision if not decision else approvable_state(session)


def counting_approval(actions: Iterable[OutboxAction]) -> OutboxAction | None:
    """Of the approvals recorded for one plan, the one that counts.

    A live or delivered approval wins over a failed one; among equals, the first taken.
    Only when every one failed does the newest failure count (it says why).
    """
    ordered = sorted(actions, key=lambda a: a.created_at)
    live = [a for a in ordered if a.status != OutboxAction.Status.FAILED]
    if live:
        return live[0]
    return ordered[-1] if ordered else None


def may_accept_by_link(user: Any, invitation: Invitation) -> Decision:
    """An emailed invitation: whoever holds the link must also own the invited address."""
    if invitation.status != Invitation.Status.PENDING:
        return _refuse(f"This invitation was already {invitation.get_status_display().lower()}.")
    if not invitation.is_open():
        return _refuse("This invitation has expired; ask a team admin for a new one.")
    if invitation.invited_user_id is not None and invitation.invited_user_id != user.pk:
        return _refuse("This invitation is for another account.")
    if invitation.email and (user.email or "").strip().lower() != invitation.email.lower():
        return _refuse(
            f"This invitation is for {invitation.email}, and you are signed in as "
            f"{user.get_username()} ({user.email or 'no email address'}). Sign in with that "
            "address's account, or ask a team admin to invite this one."
        )
    return ALLOWED


# --- launch templates and schedules (docs/templates.md) -------------------------------


def may_edit_templates(role: str | None) -> Decision:
    """A team's template library: members and above create and edit (each save a version)."""
    return _role_rule(role, Role.MEMBER, "create and edit launch templates")


def may_schedule(role: str | None) -> Decision:
    return _role_rule(role, Role.MEMBER, "schedule launches")


def may_change_schedule(role: str | None, user: Any, schedule: Schedule) -> Decision:
    """Edit, pause, resume and run now: its creator, or any admin of the team."""
    if not has_role(role, Role.MEMBER):
        return _role_rule(role, Role.MEMBER, "change schedules")
    if not has_role(role, Role.ADMIN) and schedule.created_by_id != user.pk:
        return _refuse(
            "Members and approvers may change only the schedules they created; "
            "an admin of the team may change any."
        )
    return ALLOWED


# --- the launch queue (docs/launch-queue.md) ---------------------------------------------


def may_cancel_launch(user: Any, role: str | None, launcher_id: int | None) -> Decision:
    if role is not None and (
        launcher_id == getattr(user, "pk", None) or has_role(role, Role.ADMIN)
    ):
        return ALLOWED
    return _refuse("Only the person who launched it or a team admin can cancel it.")


def may_reorder_queue(role: str | None) -> Decision:
    return _role_rule(role, Role.ADMIN, "reorder the launch queue")


def may_set_caps(role: str | None) -> Decision:
    return _role_rule(role, Role.ADMIN, "set a connection's launch caps")


def may_rerun(role: str | None, session: Session) -> Decision:
    """A failed or finished session can be launched again with the same prompt."""
    if not (decision := may_launch(role)):
        return decision
    if session.state not in (SessionState.FAILED, SessionState.COMPLETED):
        return _refuse("Only a failed or completed session can be run again.")
    return ALLOWED
