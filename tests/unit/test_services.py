"""The write services: permissions, policy, the audit entry and the outbox row of each."""

from __future__ import annotations

from unittest import mock

import pytest
from django.http import Http404

from sessions_app import access
from sessions_app.connections import services as connection_services
from sessions_app.models import AuditEntry, JulesConnection, Membership, OutboxAction
from sessions_app.sessions import services
from sessions_app.teams import services as team_services
from tests.factories import (
    ActivityFactory,
    ConnectionFactory,
    SessionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(cast):
    return ConnectionFactory(team=cast.team)


@pytest.fixture
def waiting(cast, connection):
    session = SessionFactory(
        connection=connection, state="AWAITING_PLAN_APPROVAL", launched_by=cast.member
    )
    ActivityFactory(session=session, kind="planGenerated", plan_id="a" * 32)
    return session


def _audit(action):
    return list(AuditEntry.objects.filter(action=action))


# --- launch -------------------------------------------------------------------------


def test_it_launches_with_one_audit_entry_and_one_outbox_row(
    cast, connection, django_capture_on_commit_callbacks
):
    with (
        mock.patch("sessions_app.tasks.deliver_action.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        action = services.session_launch(
            user=cast.member,
            connection=connection,
            prompt="Add tests",
            source_name="sources/github/acme/billing",
            starting_branch="main",
        )
    assert action.kind == "launch" and action.status == "pending"
    assert action.payload["prompt"] == "Add tests"
    delay.assert_called_once_with(str(action.pk))
    [entry] = _audit("session.launch")
    assert entry.actor == cast.member and entry.team_id == cast.team.pk
    assert entry.details["action_id"] == str(action.pk)


def test_it_enqueues_delivery_only_after_the_commit(cast, connection):
    with (
        mock.patch("sessions_app.tasks.deliver_action.delay") as delay,
        mock.patch("django.db.transaction.on_commit") as on_commit,
    ):
        services.session_launch(user=cast.member, connection=connection, prompt="x")
    assert on_commit.call_count == 1
    delay.assert_not_called()


def test_it_keeps_the_action_when_the_broker_is_down(
    cast, connection, django_capture_on_commit_callbacks
):
    with (
        mock.patch("sessions_app.tasks.deliver_action.delay", side_effect=OSError("no broker")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        action = services.session_launch(user=cast.member, connection=connection, prompt="x")
    assert OutboxAction.objects.get(pk=action.pk).status == "pending"


def test_it_forces_plan_approval_when_the_team_requires_it(cast, connection):
    action = services.session_launch(
        user=cast.member, connection=connection, prompt="x", require_plan_approval=False
    )
    assert action.payload["require_plan_approval"] is True
    cast.team.require_plan_approval = False
    cast.team.save()
    action = services.session_launch(
        user=cast.member, connection=connection, prompt="x", require_plan_approval=False
    )
    assert action.payload["require_plan_approval"] is False


def test_it_refuses_launches_it_should(cast, connection):
    with pytest.raises(services.ActionNotAllowed, match="member or above"):
        services.session_launch(user=cast.viewer, connection=connection, prompt="x")
    with pytest.raises(Http404):
        services.session_launch(user=cast.outsider, connection=connection, prompt="x")
    with pytest.raises(services.ActionNotAllowed, match="empty"):
        services.session_launch(user=cast.member, connection=connection, prompt="   ")
    connection.enabled = False
    connection.save()
    with pytest.raises(services.ActionNotAllowed, match="disabled"):
        services.session_launch(user=cast.member, connection=connection, prompt="x")
    assert not OutboxAction.objects.exists() and not AuditEntry.objects.exists()


# --- approve --------------------------------------------------------------------------


def test_it_approves_the_latest_plan_and_records_its_id(cast, waiting):
    ActivityFactory(session=waiting, kind="planGenerated", plan_id="b" * 32)
    action = services.session_approve_plan(user=cast.approver, session=waiting)
    assert action.payload == {"plan_id": "b" * 32}
    [entry] = _audit("session.approve")
    assert entry.details["plan_id"] == "b" * 32
    assert entry.target_type == "session" and entry.target_id == str(waiting.pk)


def test_it_returns_the_first_approval_to_the_second_click(cast, waiting):
    first = services.session_approve_plan(user=cast.approver, session=waiting)
    second = services.session_approve_plan(user=cast.admin, session=waiting)
    assert first.pk == second.pk
    assert OutboxAction.objects.filter(kind="approve").count() == 1
    assert len(_audit("session.approve")) == 1


def test_it_allows_a_new_approval_for_a_new_plan_or_after_a_failure(cast, waiting):
    first = services.session_approve_plan(user=cast.approver, session=waiting)
    OutboxAction.objects.filter(pk=first.pk).update(status="failed", last_error="Jules refused")
    retry = services.session_approve_plan(user=cast.approver, session=waiting)
    assert retry.pk != first.pk
    ActivityFactory(session=waiting, kind="planGenerated", plan_id="c" * 32)
    revised = services.session_approve_plan(user=cast.approver, session=waiting)
    assert revised.pk != retry.pk and revised.payload["plan_id"] == "c" * 32
    assert len(_audit("session.approve")) == 3


def test_it_needs_the_approver_role(cast, waiting):
    for user in (cast.viewer, cast.member):
        with pytest.raises(services.ActionNotAllowed, match="approver"):
            services.session_approve_plan(user=user, session=waiting)
    with pytest.raises(Http404):
        services.session_approve_plan(user=cast.outsider, session=waiting)
    services.session_approve_plan(user=cast.admin, session=waiting)


def test_it_honours_the_self_approval_rule(cast, connection):
    own = SessionFactory(
        connection=connection, state="AWAITING_PLAN_APPROVAL", launched_by=cast.approver
    )
    cast.team.forbid_self_approval = True
    cast.team.save()
    with pytest.raises(services.ActionNotAllowed, match="launched"):
        services.session_approve_plan(user=cast.approver, session=own)
    assert services.can_approve(cast.approver, own)[0] is False
    assert services.can_approve(cast.admin, own) == (True, "")
    cast.team.forbid_self_approval = False
    cast.team.save()
    services.session_approve_plan(user=cast.approver, session=own)


def test_it_refuses_a_session_that_is_not_waiting(cast, connection):
    running = SessionFactory(connection=connection, state="IN_PROGRESS")
    with pytest.raises(services.ActionNotAllowed, match="not waiting"):
        services.session_approve_plan(user=cast.approver, session=running)


def test_it_lets_an_approver_resume_a_plan_that_timed_out(cast, connection):
    timed_out = SessionFactory(connection=connection, state="COMPLETED")
    ActivityFactory(session=timed_out, kind="planGenerated", plan_id="d" * 32)
    assert access.plan_timed_out(timed_out)
    action = services.session_approve_plan(user=cast.approver, session=timed_out)
    assert action.payload["plan_id"] == "d" * 32
    finished = SessionFactory(connection=connection, state="COMPLETED")
    ActivityFactory(session=finished, kind="planGenerated", plan_id="e" * 32)
    ActivityFactory(session=finished, kind="planApproved", plan_id="e" * 32)
    with pytest.raises(services.ActionNotAllowed):
        services.session_approve_plan(user=cast.approver, session=finished)


# --- message, archive, delete ---------------------------------------------------------


def test_it_sends_messages_from_members_to_sessions_that_listen(cast, connection):
    session = SessionFactory(connection=connection, state="AWAITING_USER_FEEDBACK")
    action = services.session_send_message(user=cast.member, session=session, prompt="Yes")
    assert action.payload == {"prompt": "Yes"}
    assert _audit("session.message")[0].details["prompt"] == "Yes"
    with pytest.raises(services.ActionNotAllowed, match="member or above"):
        services.session_send_message(user=cast.viewer, session=session, prompt="Yes")
    with pytest.raises(services.ActionNotAllowed, match="empty"):
        services.session_send_message(user=cast.member, session=session, prompt=" ")
    failed = SessionFactory(connection=connection, state="FAILED")
    with pytest.raises(services.ActionNotAllowed, match="failed session"):
        services.session_send_message(user=cast.member, session=failed, prompt="Yes")


def test_it_lets_members_archive_only_their_own_sessions(cast, connection):
    own = SessionFactory(connection=connection, launched_by=cast.member)
    theirs = SessionFactory(connection=connection, launched_by=cast.admin)
    services.session_archive(user=cast.member, session=own)
    own.refresh_from_db()
    assert own.archived
    with pytest.raises(services.ActionNotAllowed, match="only the sessions they launched"):
        services.session_archive(user=cast.member, session=theirs)
    with pytest.raises(services.ActionNotAllowed, match="only the sessions they launched"):
        services.session_archive(user=cast.approver, session=theirs)
    services.session_archive(user=cast.admin, session=theirs)
    services.session_unarchive(user=cast.admin, session=theirs)
    theirs.refresh_from_db()
    assert not theirs.archived
    with pytest.raises(services.ActionNotAllowed):
        services.session_archive(user=cast.viewer, session=own)
    kinds = list(OutboxAction.objects.order_by("created_at").values_list("kind", flat=True))
    assert kinds == ["archive", "archive", "unarchive"]
    assert len(_audit("session.archive")) == 2 and len(_audit("session.unarchive")) == 1


def test_it_lets_only_admins_delete(cast, connection):
    session = SessionFactory(connection=connection, launched_by=cast.approver)
    for user in (cast.viewer, cast.member, cast.approver):
        with pytest.raises(services.ActionNotAllowed, match="admin"):
            services.session_delete(user=user, session=session)
    with pytest.raises(Http404):
        services.session_delete(user=cast.outsider, session=session)
    action = services.session_delete(user=cast.admin, session=session)
    assert action.kind == "delete" and len(_audit("session.delete")) == 1


@pytest.mark.parametrize(
    ("name", "kwargs", "state"),
    [
        ("session_approve_plan", {}, "AWAITING_PLAN_APPROVAL"),
        ("session_send_message", {"prompt": "hi"}, "IN_PROGRESS"),
        ("session_archive", {}, "COMPLETED"),
        ("session_unarchive", {}, "COMPLETED"),
        ("session_delete", {}, "COMPLETED"),
    ],
)
def test_it_leaves_exactly_one_audit_entry_per_action(cast, connection, name, kwargs, state):
    session = SessionFactory(connection=connection, state=state)
    action = getattr(services, name)(user=cast.admin, session=session, **kwargs)
    [entry] = AuditEntry.objects.all()
    assert entry.action == f"session.{action.kind}"
    assert entry.details["action_id"] == str(action.pk)
    assert OutboxAction.objects.count() == 1


# --- bulk -------------------------------------------------------------------------------


def test_it_checks_each_session_of_a_bulk_action(cast, connection):
    mine = SessionFactory(connection=connection, launched_by=cast.member)
    other = SessionFactory(connection=connection, launched_by=cast.admin)
    foreign = SessionFactory(connection=ConnectionFactory(team=cast.other_team))
    result = services.sessions_bulk(
        user=cast.member, action="archive", sessions=[mine, other, foreign]
    )
    assert result.done == [mine]
    reasons = {s.pk: why for s, why in result.refused}
    assert "only the sessions they launched" in reasons[other.pk]
    assert "not in this session's team" in reasons[foreign.pk]
    with pytest.raises(services.ActionNotAllowed, match="no bulk action"):
        services.sessions_bulk(user=cast.member, action="delete", sessions=[mine])


def test_it_bulk_approves_only_what_the_policy_allows(cast, connection):
    cast.team.forbid_self_approval = True
    cast.team.save()
    own = SessionFactory(
        connection=connection, state="AWAITING_PLAN_APPROVAL", launched_by=cast.approver
    )
    other = SessionFactory(
        connection=connection, state="AWAITING_PLAN_APPROVAL", launched_by=cast.member
    )
    done = SessionFactory(connection=connection, state="COMPLETED")
    result = services.sessions_bulk(
        user=cast.approver, action="approve", sessions=[own, other, done]
    )
    assert result.done == [other]
    assert {s.pk for s, _ in result.refused} == {own.pk, done.pk}


# --- team admin ---------------------------------------------------------------------------


def test_only_the_operator_adds_a_person_without_their_consent(cast):
    newcomer = UserFactory(username="newcomer")
    # A team admin cannot add anyone directly any more: they invite.
    with pytest.raises(services.ActionNotAllowed, match="invite them instead"):
        team_services.membership_add(
            actor=cast.admin, team=cast.team, username="newcomer", role="member"
        )
    with pytest.raises(Http404):
        team_services.membership_add(
            actor=cast.outsider, team=cast.team, username="newcomer", role="member"
        )
    operator = UserFactory(username="operator", is_staff=True)
    membership = team_services.membership_add(
        actor=operator, team=cast.team, username="newcomer", role="approver", operator=True
    )
    assert membership.user == newcomer and membership.role == "approver"
    [entry] = _audit("member.add")
    assert entry.details == {"username": "newcomer", "role": "approver"}
    with pytest.raises(services.ActionNotAllowed, match="already in the team"):
        team_services.membership_add(
            actor=operator, team=cast.team, username="newcomer", role="viewer", operator=True
        )
    with pytest.raises(services.ActionNotAllowed, match="no user named"):
        team_services.membership_add(
            actor=operator, team=cast.team, username="ghost", role="viewer", operator=True
        )


def test_it_never_demotes_or_removes_the_last_admin(cast):
    admin = Membership.objects.get(team=cast.team, user=cast.admin)
    with pytest.raises(services.ActionNotAllowed, match="last admin"):
        team_services.membership_change_role(actor=cast.admin, membership=admin, role="member")
    with pytest.raises(services.ActionNotAllowed, match="last admin"):
        team_services.membership_remove(actor=cast.admin, membership=admin)
    approver = Membership.objects.get(team=cast.team, user=cast.approver)
    team_services.membership_change_role(actor=cast.admin, membership=approver, role="admin")
    team_services.membership_change_role(actor=cast.approver, membership=admin, role="viewer")
    assert Membership.objects.get(pk=admin.pk).role == "viewer"
    [entry] = _audit("member.role_change")[:1]
    assert entry.details["from"] == "admin" and entry.details["to"] == "viewer"


def test_it_removes_members_with_an_audit_entry(cast):
    member = Membership.objects.get(team=cast.team, user=cast.member)
    with pytest.raises(services.ActionNotAllowed):
        team_services.membership_remove(actor=cast.member, membership=member)
    team_services.membership_remove(actor=cast.admin, membership=member)
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert _audit("member.remove")[0].details == {"username": "member", "role": "member"}


def test_it_adds_a_connection_after_jules_accepts_the_key(
    cast, simulator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        connection = connection_services.connection_add(
            actor=cast.admin,
            team=cast.team,
            label="Shared account",
            api_key="test-key",
            base_url=simulator.base_url,
        )
    assert connection.get_api_key() == "test-key" and connection.added_by == cast.admin
    assert simulator.request_counts()["sources.list"] == 1
    assert len(callbacks) == 1  # The first sync, once the connection is committed.
    [entry] = _audit("connection.add")
    assert "test-key" not in str(entry.details) and entry.details["label"] == "Shared account"


def test_it_saves_nothing_when_jules_rejects_the_key(cast, simulator):
    with pytest.raises(
        connection_services.KeyRejected, match="did not accept this API key"
    ) as info:
        connection_services.connection_add(
            actor=cast.admin,
            team=cast.team,
            label="Typo",
            api_key="sk-mistyped-0123",
            base_url=simulator.base_url,
        )
    assert "sk-mistyped-0123" not in str(info.value)
    assert not JulesConnection.objects.exists() and not AuditEntry.objects.exists()


def test_it_refuses_connections_to_non_admins_and_duplicate_labels(cast, simulator):
    with pytest.raises(services.ActionNotAllowed, match="admin"):
        connection_services.connection_add(
            actor=cast.approver,
            team=cast.team,
            label="x",
            api_key="test-key",
            base_url=simulator.base_url,
        )
    ConnectionFactory(team=cast.team, label="Taken")
    with pytest.raises(services.ActionNotAllowed, match="already has a connection"):
        connection_services.connection_add(
            actor=cast.admin,
            team=cast.team,
            label="Taken",
            api_key="test-key",
            base_url=simulator.base_url,
        )
    assert simulator.request_counts().get("sources.list", 0) == 0


def test_it_rotates_a_key_only_to_one_that_works(cast, simulator):
    connection = ConnectionFactory(
        team=cast.team,
        base_url=simulator.base_url,
        api_key="revoked-key",
        sync_status="broken",
        last_error="Jules rejected this connection's API key",
        consecutive_failures=4,
    )
    with pytest.raises(connection_services.KeyRejected):
        connection_services.connection_rotate_key(
            actor=cast.admin, connection=connection, api_key="still-wrong"
        )
    assert JulesConnection.objects.get(pk=connection.pk).get_api_key() == "revoked-key"
    with pytest.raises(services.ActionNotAllowed, match="admin"):
        connection_services.connection_rotate_key(
            actor=cast.approver, connection=connection, api_key="other-key"
        )
    connection_services.connection_rotate_key(
        actor=cast.admin, connection=connection, api_key="other-key"
    )
    connection.refresh_from_db()
    assert connection.get_api_key() == "other-key"
    assert connection.sync_status == "never" and connection.last_error == ""
    assert connection.key_rotated_at is not None
    [entry] = _audit("connection.rotate")
    assert "other-key" not in str(entry.details)


def test_it_disables_and_enables_connections_with_audit_entries(cast, connection):
    connection_services.connection_set_enabled(
        actor=cast.admin, connection=connection, enabled=False
    )
    connection.refresh_from_db()
    assert not connection.enabled and connection.sync_status == "disabled"
    connection_services.connection_set_enabled(
        actor=cast.admin, connection=connection, enabled=False
    )
    connection_services.connection_set_enabled(
        actor=cast.admin, connection=connection, enabled=True
    )
    connection.refresh_from_db()
    assert connection.enabled and connection.sync_status == "never"
    actions = list(AuditEntry.objects.order_by("seq").values_list("action", flat=True))
    assert actions == ["connection.disable", "connection.enable"]
    with pytest.raises(services.ActionNotAllowed):
        connection_services.connection_set_enabled(
            actor=cast.member, connection=connection, enabled=False
        )


def test_it_changes_the_policy_with_before_and_after(cast):
    team_services.team_update_policy(
        actor=cast.admin, team=cast.team, require_plan_approval=True, forbid_self_approval=True
    )
    cast.team.refresh_from_db()
    assert cast.team.forbid_self_approval
    [entry] = _audit("policy.change")
    assert entry.details["before"]["forbid_self_approval"] is False
    assert entry.details["after"]["forbid_self_approval"] is True
    with pytest.raises(services.ActionNotAllowed):
        team_services.team_update_policy(
            actor=cast.approver,
            team=cast.team,
            require_plan_approval=False,
            forbid_self_approval=False,
        )
