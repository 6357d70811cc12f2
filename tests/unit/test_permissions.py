"""The permission matrix of the team, audit and approval URLs, with the cast.

Each role sees and does exactly what it may: viewers and above read, only admins change the
team, approvers and admins approve, and the outsider gets a 404 everywhere.
"""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import AuditEntry, Invitation, JulesConnection, Membership, OutboxAction
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLES = ("admin", "approver", "member", "viewer", "outsider")


@pytest.fixture
def world(cast):
    connection = ConnectionFactory(team=cast.team, label="Team account")
    session = SessionFactory(
        connection=connection, state="AWAITING_PLAN_APPROVAL", launched_by=cast.member
    )
    ActivityFactory(session=session, kind="planGenerated", plan_id="a" * 32)
    UserFactory(username="newcomer")
    return {"connection": connection, "session": session}


def _get_urls(cast, world):
    team, connection, session = cast.team, world["connection"], world["session"]
    return {
        "team-detail": reverse("sessions_app:team-detail", args=[team.slug]),
        "connection-detail": reverse("sessions_app:connection-detail", args=[connection.pk]),
        "session-history": reverse("sessions_app:session-history", args=[session.pk]),
    }


@pytest.mark.parametrize("role", ROLES)
def test_it_shows_team_pages_to_members_only(client, cast, world, role):
    client.force_login(cast.by_role()[role])
    for name, url in _get_urls(cast, world).items():
        expected = 404 if role == "outsider" else 200
        assert client.get(url).status_code == expected, (name, role)


@pytest.mark.parametrize("role", ROLES)
def test_it_shows_the_lists_to_everyone_scoped_to_their_teams(client, cast, world, role):
    client.force_login(cast.by_role()[role])
    teams = client.get(reverse("sessions_app:team-list")).content.decode()
    assert ("Acme" in teams) is (role != "outsider")
    assert ("Globex" in teams) is (role == "outsider")
    approvals = client.get(reverse("sessions_app:approvals")).content.decode()
    assert (world["session"].display_title in approvals) is (role in {"admin", "approver"})
    audit = client.get(reverse("sessions_app:audit"))
    assert audit.status_code == 200
    for fmt in ("csv", "json"):
        export = client.get(reverse("sessions_app:audit-export", args=[fmt]))
        assert export.status_code == 200 and export.streaming


@pytest.mark.parametrize("role", ROLES)
def test_it_shows_the_admin_forms_to_admins_only(client, cast, world, role):
    if role == "outsider":
        return
    client.force_login(cast.by_role()[role])
    html = client.get(reverse("sessions_app:team-detail", args=[cast.team.slug])).content.decode()
    connection_html = client.get(
        reverse("sessions_app:connection-detail", args=[world["connection"].pk])
    ).content.decode()
    is_admin = role == "admin"
    assert ("Invite someone" in html) is is_admin
    assert ("Add a connection" in html) is is_admin
    assert ("Save the policy" in html) is is_admin
    assert ("Rotate key" in html) is is_admin
    assert ("Rename" in html) is is_admin
    assert ("Remove…" in html) is is_admin
    assert ("Disable" in connection_html) is is_admin
    rotate = client.get(reverse("sessions_app:connection-rotate", args=[world["connection"].pk]))
    assert rotate.status_code == (200 if is_admin else 403)


def _posts(cast, world):
    team, connection = cast.team, world["connection"]
    viewer_membership = Membership.objects.get(team=team, user=cast.viewer)
    member_membership = Membership.objects.get(team=team, user=cast.member)
    doomed = ConnectionFactory(team=team, label="Doomed account")
    invitee = UserFactory(username="invitee")
    pending = Invitation.objects.create(
        team=team,
        role="viewer",
        invited_user=invitee,
        token_hash="h" * 64,
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    return [
        (
            reverse("sessions_app:invitation-create", args=[team.slug]),
            {"email": "newcomer@example.com", "role": "viewer"},
            lambda: Invitation.objects.filter(email="newcomer@example.com").exists(),
        ),
        (
            reverse("sessions_app:invitation-revoke", args=[team.slug, pending.pk]),
            {},
            lambda: Invitation.objects.get(pk=pending.pk).status == "revoked",
        ),
        (
            reverse("sessions_app:connection-rename", args=[connection.pk]),
            {"label": "Renamed account"},
            lambda: JulesConnection.objects.get(pk=connection.pk).label == "Renamed account",
        ),
        (
            reverse("sessions_app:connection-remove", args=[doomed.pk]),
            {},
            lambda: not JulesConnection.objects.filter(pk=doomed.pk).exists(),
        ),
        (
            reverse("sessions_app:member-role", args=[team.slug, viewer_membership.pk]),
            {"role": "member"},
            lambda: Membership.objects.get(pk=viewer_membership.pk).role == "member",
        ),
        (
            reverse("sessions_app:member-remove", args=[team.slug, member_membership.pk]),
            {},
            lambda: not Membership.objects.filter(pk=member_membership.pk).exists(),
        ),
        (
            reverse("sessions_app:connection-add", args=[team.slug]),
            {"label": "New one", "api_key": "sk-new"},
            lambda: JulesConnection.objects.filter(label="New one").exists(),
        ),
        (
            reverse("sessions_app:team-policy", args=[team.slug]),
            {"forbid_self_approval": "on", "require_plan_approval": "on"},
            lambda: type(team).objects.get(pk=team.pk).forbid_self_approval,
        ),
        (
            reverse("sessions_app:connection-enabled", args=[connection.pk]),
            {"enabled": "0"},
            lambda: not JulesConnection.objects.get(pk=connection.pk).enabled,
        ),
        (
            reverse("sessions_app:connection-rotate", args=[connection.pk]),
            {"api_key": "sk-rotated"},
            lambda: JulesConnection.objects.get(pk=connection.pk).get_api_key() == "sk-rotated",
        ),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_it_lets_only_admins_change_the_team(client, cast, world, role):
    client.force_login(cast.by_role()[role])
    with mock.patch("sessions_app.connections.services.check_api_key", return_value=[]):
        for url, data, changed in _posts(cast, world):
            response = client.post(url, data)
            if role == "admin":
                assert response.status_code == 302, url
                assert changed(), url
            else:
                assert response.status_code == (404 if role == "outsider" else 403), url
                assert not changed(), url
    changes = AuditEntry.objects.exclude(action__startswith="auth.").count()
    assert changes == (10 if role == "admin" else 0)


@pytest.mark.parametrize("role", ROLES)
def test_it_lets_approvers_and_admins_approve(client, cast, world, role):
    client.force_login(cast.by_role()[role])
    response = client.post(reverse("sessions_app:session-approve", args=[world["session"].pk]))
    approved = OutboxAction.objects.filter(kind="approve").exists()
    if role == "outsider":
        assert response.status_code == 404 and not approved
    else:
        assert response.status_code == 302
        assert approved is (role in {"admin", "approver"})


def test_it_hides_other_teams_objects_behind_404s(client, cast, world):
    foreign = ConnectionFactory(team=cast.other_team)
    foreign_session = SessionFactory(connection=foreign)
    foreign_membership = Membership.objects.get(team=cast.other_team)
    client.force_login(cast.admin)
    assert client.get(reverse("sessions_app:team-detail", args=["globex"])).status_code == 404
    assert (
        client.get(reverse("sessions_app:connection-detail", args=[foreign.pk])).status_code == 404
    )
    assert (
        client.get(reverse("sessions_app:session-history", args=[foreign_session.pk])).status_code
        == 404
    )
    # A membership of another team under this team's URL is not found either.
    url = reverse("sessions_app:member-remove", args=["acme", foreign_membership.pk])
    assert client.post(url).status_code == 404
    assert Membership.objects.filter(pk=foreign_membership.pk).exists()


@pytest.mark.parametrize("role", ROLES)
def test_only_the_invitee_answers_an_invitation(client, cast, role):
    invitee = UserFactory(username="invitee")
    invitation = Invitation.objects.create(
        team=cast.team,
        role="member",
        invited_user=invitee,
        token_hash="i" * 64,
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    client.force_login(cast.by_role()[role])
    for name in ("invitation-accept", "invitation-decline"):
        url = reverse(f"sessions_app:{name}", args=[invitation.pk])
        # The team's admin included: answering is the invitee's alone.
        assert client.post(url).status_code == 404, (name, role)
        assert client.get(url).status_code == 405
    invitation.refresh_from_db()
    assert invitation.status == "pending"
    assert not Membership.objects.filter(user=invitee).exists()
    client.force_login(invitee)
    response = client.post(reverse("sessions_app:invitation-accept", args=[invitation.pk]))
    assert response.status_code == 302
    assert Membership.objects.get(user=invitee, team=cast.team).role == "member"


# --- every URL of the portal, for every role ------------------------------------------

PATCH = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n"


@pytest.fixture
def everything(cast, world):
    from sessions_app.models import SessionOutput

    connection, waiting = world["connection"], world["session"]
    own = SessionFactory(
        connection=connection, state="AWAITING_USER_FEEDBACK", launched_by=cast.member
    )
    SessionOutput.objects.create(session=own, position=0, kind="changeSet", patch=PATCH)
    with_patch = ActivityFactory(
        session=own, kind="progressUpdated", artifacts=[{"kind": "changeSet", "patch": PATCH}]
    )
    actions = {
        role: OutboxAction.objects.create(
            team=cast.team, connection=connection, actor=user, kind="launch", payload={}
        )
        for role, user in cast.by_role().items()
    }
    from sessions_app.models import Endpoint

    endpoint = Endpoint(team=cast.team, kind="webhook", label="Hook")
    endpoint.set_url("https://hooks.example.com/x")
    endpoint.save()
    return {
        **world,
        **_launch_templates(cast, connection),
        "endpoint": endpoint,
        "own": own,
        "waiting": waiting,
        "output": own.outputs.get(),
        "activity": with_patch,
        "actions": actions,
    }


def _every_get(cast, things, role):
    """Every GET URL: name -> (url, status for a team role, status for the outsider)."""
    team, connection, own = cast.team, things["connection"], things["own"]
    pages = {
        "home": ([], 302, 302),
        "session-list": ([], 200, 200),
        "session-launch": ([], 200, 200),
        "launch-branches": ([], 200, 200),
        "session-detail": ([own.pk], 200, 404),
        "session-live": ([own.pk], 200 if own.can_change else 286, 404),
        # The list's poll, asking for the row of `own` (QUERIES): stale, so answered.
        "session-live-rows": ([], 200 if own.can_change else 286, 404),
        "session-patch": ([own.pk, things["output"].pk], 200, 404),
        "session-activity-patch": ([own.pk, things["activity"].pk], 200, 404),
        "session-history": ([own.pk], 200, 404),
        # Whose action it is matters, not the role: the user's own is found.
        "action-status": ([things["actions"][role].pk], 200, 200),
        "approvals": ([], 200, 200),
        "team-list": ([], 200, 200),
        "team-detail": ([team.slug], 200, 404),
        "connection-detail": ([connection.pk], 200, 404),
        "connection-rotate": ([connection.pk], 200 if role == "admin" else 403, 404),
        "connection-remove": ([connection.pk], 200 if role == "admin" else 403, 404),
        "audit": ([], 200, 200),
        "audit-export": (["csv"], 200, 200),
        "notification-list": ([], 200, 200),
        "notification-count": ([], 200, 200),
        "notification-preferences": ([], 200, 200),
        # Signed for someone; it needs no sign-in, whoever opens it.
        "notification-unsubscribe": ([_unsubscribe_token(cast)], 200, 200),
        "team-channels": ([team.slug], 200 if role == "admin" else 403, 404),
        "endpoint-detail": ([things["endpoint"].pk], 200 if role == "admin" else 403, 404),
        "api-tokens": ([], 200, 200),
        "team-tokens": ([team.slug], 200 if role == "admin" else 403, 404),
        # The emailed link is the capability: anyone who holds it sees what it offers;
        # accepting also needs the invited address (tests/unit/test_email_invitations.py).
        "invitation-join": ([_join_token(cast)], 200, 200),
        **_launch_template_pages(things, role),
        "team-queue": ([team.slug], 200, 404),
        # Lists only the user's own messages, whoever asks.
        "bulk-message-status": ([], 200, 200),
        # Finds only the user's teams' sessions (tests/unit/test_search.py).
        "search": ([], 200, 200),
        # Analytics: a team's page for its members; the cross-team one covers the user's teams.
        "team-analytics": ([team.slug], 200, 404),
        "team-analytics-csv": ([team.slug, "sessions"], 200, 404),
        "analytics": ([], 200, 200),
        "analytics-csv": (["overview"], 200, 200),
    }
    queries = {"session-live-rows": f"?rows={own.pk}:{'0' * 16}"}
    return {
        name: (
            reverse(f"sessions_app:{name}", args=args) + queries.get(name, ""),
            outsider if role == "outsider" else ok,
        )
        for name, (args, ok, outsider) in pages.items()
    }


def _join_token(cast):
    import secrets

    from sessions_app.identity.invitations import invitation_create_by_email
    from sessions_app.models import Invitation
    from sessions_app.teams.services import token_hash

    invitation = invitation_create_by_email(
        actor=cast.admin, team=cast.team, email=f"{secrets.token_hex(4)}@example.com", role="viewer"
    )
    # The token as the email carries it: set here, since the email is not read in this test.
    token = secrets.token_urlsafe(16)
    Invitation.objects.filter(pk=invitation.pk).update(token_hash=token_hash(token))
    return token


def _unsubscribe_token(cast):
    from sessions_app.notifications.channels.email import unsubscribe_token

    return unsubscribe_token(cast.member.pk, cast.team.pk, "session.completed")


FRAGMENTS = {"session-live", "session-live-rows"}
POST_ONLY = {
    "session-bulk",
    "session-approve",
    "session-message",
    "session-archive",
    "session-delete",
    "invitation-create",
    "invitation-revoke",
    "invitation-accept",
    "invitation-decline",
    "connection-rename",
    "member-role",
    "member-remove",
    "connection-add",
    "team-policy",
    "connection-enabled",
    "notification-read",
    "notifications-read-all",
    "team-notification-settings",
    "endpoint-rotate",
    "endpoint-enabled",
    "delivery-redeliver",
    "api-token-create",
    "api-token-revoke",
    "team-token-create",
    "schedule-active",
    "schedule-run-now",
    "queue-cancel",
    "queue-move",
    "connection-caps",
}


def test_the_matrix_names_every_url(cast, everything):
    from sessions_app.urls import urlpatterns

    names = {pattern.name for pattern in urlpatterns}
    covered = set(_every_get(cast, everything, "admin")) | POST_ONLY
    assert names == covered, names ^ covered


@pytest.mark.parametrize("role", ROLES)
def test_every_page_answers_each_role_as_the_issue_says(client, cast, everything, role):
    client.force_login(cast.by_role()[role])
    for name, (url, expected) in _every_get(cast, everything, role).items():
        # The polled fragments answer htmx; a plain visit is sent to the page.
        headers = {"HTTP_HX_REQUEST": "true"} if name in FRAGMENTS else {}
        assert client.get(url, **headers).status_code == expected, (name, role)
    # Someone else's action is not found, whatever the role.
    other = "viewer" if role != "viewer" else "member"
    url = reverse("sessions_app:action-status", args=[everything["actions"][other].pk])
    assert client.get(url).status_code == 404
    # Every POST-only URL refuses a GET.
    for name, args in [
        ("session-approve", [everything["waiting"].pk]),
        ("session-delete", [everything["own"].pk]),
        ("team-policy", [cast.team.slug]),
        ("invitation-create", [cast.team.slug]),
        ("connection-rename", [everything["connection"].pk]),
    ]:
        assert client.get(reverse(f"sessions_app:{name}", args=args)).status_code == 405


# What each role may do to the sessions of its team (team changes are tested above).
MAY = {
    "viewer": set(),
    "member": {
        "launch",
        "message",
        "archive own",
        "unarchive own",
        "bulk archive own",
        "bulk message own",
    },
    "approver": {
        "launch",
        "message",
        "archive own",
        "unarchive own",
        "bulk archive own",
        "bulk message own",
        "approve",
        "bulk approve",
    },
}
# Admins may delete any session, and archive any.
MAY["admin"] = MAY["approver"] | {"delete", "archive others'"}
MAY["outsider"] = set()


def _session_posts(cast, things, user):
    """(what, url, data, outbox kind it makes, the session it is about); "own" sessions
    were launched by `user`, "others'" by someone else of the team."""
    waiting, connection = things["waiting"], things["connection"]
    someone = UserFactory(username="someone")
    own = SessionFactory(connection=connection, state="AWAITING_USER_FEEDBACK", launched_by=user)
    theirs = SessionFactory(
        connection=connection, state="AWAITING_USER_FEEDBACK", launched_by=someone
    )
    archived = SessionFactory(
        connection=connection, state="COMPLETED", launched_by=user, archived=True
    )
    bulk_waiting = SessionFactory(connection=connection, state="AWAITING_PLAN_APPROVAL")
    ActivityFactory(session=bulk_waiting, kind="planGenerated", plan_id="b" * 32)
    bulk_own = SessionFactory(connection=connection, state="COMPLETED", launched_by=user)
    bulk_asking = SessionFactory(
        connection=connection, state="AWAITING_USER_FEEDBACK", launched_by=user
    )

    def url(name, pk=None):
        return reverse(f"sessions_app:{name}", args=[pk] if pk else [])

    return [
        (
            "launch",
            url("session-launch"),
            {"connection": connection.pk, "prompt": "Fix it", "require_plan_approval": "on"},
            "launch",
            None,
        ),
        ("message", url("session-message", own.pk), {"prompt": "Carry on"}, "message", own),
        ("archive own", url("session-archive", own.pk), {}, "archive", own),
        (
            "unarchive own",
            url("session-archive", archived.pk),
            {"undo": "1"},
            "unarchive",
            archived,
        ),
        ("archive others'", url("session-archive", theirs.pk), {}, "archive", theirs),
        ("approve", url("session-approve", waiting.pk), {}, "approve", waiting),
        ("delete", url("session-delete", theirs.pk), {}, "delete", theirs),
        (
            "bulk approve",
            url("session-bulk"),
            {"action": "approve", "ids": [bulk_waiting.pk]},
            "approve",
            bulk_waiting,
        ),
        (
            "bulk archive own",
            url("session-bulk"),
            {"action": "archive", "ids": [bulk_own.pk]},
            "archive",
            bulk_own,
        ),
        (
            "bulk message own",
            url("session-bulk"),
            {"action": "message", "prompt": "Yes, go on", "ids": [bulk_asking.pk]},
            "message",
            bulk_asking,
        ),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_does_to_sessions_exactly_what_the_issue_says(client, cast, everything, role):
    client.force_login(cast.by_role()[role])
    done = set()
    for what, url, data, kind, session in _session_posts(cast, everything, cast.by_role()[role]):
        before = OutboxAction.objects.filter(kind=kind, session=session, actor=cast.by_role()[role])
        count = before.count()
        response = client.post(url, data)
        if (
            role == "outsider"
            and session is not None
            and what not in {"bulk approve", "bulk archive own", "bulk message own"}
        ):
            assert response.status_code == 404, what
        else:
            assert response.status_code in {200, 302}, (what, response.status_code)
        if before.count() > count:
            done.add(what)
            audited = AuditEntry.objects.filter(
                action=f"session.{kind}", actor=cast.by_role()[role]
            )
            assert audited.exists(), what
    assert done == MAY[role], role


# --- launch templates and schedules (docs/templates.md) ----------------------------------


def _launch_templates(cast, connection):
    from sessions_app.launch_templates import schedules, services

    template = services.template_create(
        user=cast.member,
        team=cast.team,
        content=services.TemplateContent(name="Nightly", prompt="Tidy {{ area }}"),
    )
    schedule = schedules.schedule_create(
        user=cast.member,
        template=template,
        spec=schedules.ScheduleSpec(
            name="Nightly tidy",
            connection=connection,
            cadence="daily",
            time_of_day=dt.time(3),
            variables={"area": "docs"},
        ),
    )
    return {"template": template, "schedule": schedule}


def _launch_template_pages(things, role):
    """name -> (args, status for the team role, status for the outsider)."""
    template, schedule = things["template"].pk, things["schedule"].pk
    edits = 403 if role == "viewer" else 200
    # The schedule is the member's: they and admins change it.
    changes = 200 if role in {"member", "admin"} else 403
    return {
        "template-list": ([], 200, 200),
        # The outsider is an admin of another team, where they may add templates.
        "template-create": ([], edits, 200),
        "template-detail": ([template], 200, 404),
        "template-edit": ([template], edits, 404),
        "template-launch": ([template], edits, 404),
        "schedule-create": ([template], edits, 404),
        "schedule-list": ([], 200, 200),
        "schedule-preview": ([], 200, 200),
        "schedule-detail": ([schedule], 200, 404),
        "schedule-edit": ([schedule], changes, 404),
    }


@pytest.mark.parametrize("role", ROLES)
def test_only_its_creator_and_admins_pause_or_run_a_schedule(client, cast, role):
    from sessions_app.models import Schedule, ScheduleRun

    things = _launch_templates(cast, ConnectionFactory(team=cast.team))
    schedule = things["schedule"]
    client.force_login(cast.by_role()[role])
    pause = client.post(
        reverse("sessions_app:schedule-active", args=[schedule.pk]), {"active": "0"}
    )
    run = client.post(reverse("sessions_app:schedule-run-now", args=[schedule.pk]))
    allowed = role in {"member", "admin"}
    expected = 302 if allowed else (404 if role == "outsider" else 403)
    assert (pause.status_code, run.status_code) == (expected, expected)
    assert Schedule.objects.get(pk=schedule.pk).active is not allowed
    assert ScheduleRun.objects.filter(schedule=schedule).exists() is allowed


# --- the launch queue (docs/launch-queue.md) ---------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_each_role_does_to_the_launch_queue_what_it_may(client, cast, world, role):
    from sessions_app.models import LaunchCaps, LaunchTicket
    from sessions_app.sessions import services

    user = cast.by_role()[role]
    connection = world["connection"]
    client.force_login(user)

    def launch(by):
        return services.session_launch(user=by, connection=connection, prompt="Later")

    theirs, own_first, own = launch(cast.member), launch(cast.approver), launch(cast.approver)
    if role in {"admin", "approver", "member"}:
        own = launch(user)

    def status(action):
        return LaunchTicket.objects.get(pk=action.pk).status

    # Cancel: the launcher, or an admin; the outsider is told nothing exists.
    response = client.post(reverse("sessions_app:queue-cancel", args=[theirs.pk]))
    assert response.status_code == (404 if role == "outsider" else 302)
    cancelled = role in {"admin", "member"}  # the member launched it
    assert (status(theirs) == "cancelled") is cancelled, role
    if role in {"approver", "admin", "member"}:
        client.post(reverse("sessions_app:queue-cancel", args=[own.pk]))
        assert status(own) == "cancelled"
    # Move: admins only.
    before = LaunchTicket.objects.get(pk=own_first.pk).order
    response = client.post(
        reverse("sessions_app:queue-move", args=[own_first.pk]), {"direction": "down"}
    )
    assert response.status_code == (404 if role == "outsider" else 302)
    moved = LaunchTicket.objects.get(pk=own_first.pk).order != before
    assert moved is (role == "admin"), role
    # Caps: admins only; others 403, the outsider 404.
    response = client.post(
        reverse("sessions_app:connection-caps", args=[connection.pk]),
        {"tier": "pro", "max_in_flight": "2"},
    )
    expected = {"admin": 302, "outsider": 404}.get(role, 403)
    assert response.status_code == expected, role
    tier = LaunchCaps.objects.filter(pk=connection.pk).values_list("tier", flat=True).first()
    assert (tier == "pro") is (role == "admin")


# --- search (docs/search.md) --------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_search_finds_a_teams_session_for_its_members_only(client, cast, world, role):
    from sessions_app.search.documents import index_sessions

    session = world["session"]
    Session = type(session)
    Session.objects.filter(pk=session.pk).update(title="Rework the xylophone exporter")
    theirs = SessionFactory(
        connection=ConnectionFactory(team=cast.other_team), title="Tune the xylophone"
    )
    index_sessions([session.pk, theirs.pk])
    client.force_login(cast.by_role()[role])
    html = client.get(reverse("sessions_app:search"), {"q": "xylophone"}).content.decode()
    assert ("xylophone</mark> exporter" in html) is (role != "outsider")
    assert ("Tune the" in html) is (role == "outsider")
