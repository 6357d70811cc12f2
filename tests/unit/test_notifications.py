"""Events, fan-out and delivery (issue 14): once per change, to the right people, signed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from jules.client import JulesClient
from sessions_app import sync
from sessions_app.models import (
    Delivery,
    Endpoint,
    Event,
    EventKind,
    JulesConnection,
    Membership,
    Notification,
    OutboxAction,
    SessionTransition,
)
from sessions_app.notifications import delivery, events, services
from sessions_app.notifications.channels import DeliveryError, chat, http, slack, teams
from sessions_app.notifications.channels.email import unsubscribe_token
from tests.factories import SessionFactory
from tests.receivers import WebhookReceiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _quick(settings):
    settings.NOTIFY_GROUP_SECONDS = 0
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_TIMEOUT_SECONDS = 2.0
    settings.SITE_URL = "https://portal.example.com"


@pytest.fixture
def receiver():
    hook = WebhookReceiver().start()
    try:
        yield hook
    finally:
        hook.stop()


def _webhook(cast, receiver, **kwargs):
    endpoint, secret = services.endpoint_create(
        user=cast.admin, team=cast.team, kind="webhook", label="CI", url=receiver.url,
        event_kinds=kwargs.get("kinds", []),
    )  # fmt: skip
    receiver.secret = secret
    return endpoint


def _wait_for_plan(simulator, connection, cast):
    client = JulesClient("test-key", simulator.base_url)
    remote = client.create_session(
        prompt="Add tests [sim:plan_approval]",
        source="sources/github/acme/billing",
        starting_branch="main",
        require_plan_approval=True,
    )
    session = sync.upsert_remote_session(connection, remote, launched_by=cast.member)
    simulator.advance(70)
    sync.sync_one_session(session.pk)
    session.refresh_from_db()
    assert session.state == "AWAITING_PLAN_APPROVAL"
    return session, client, remote


def _run_everything():
    """Play the workers' part: fan out, then deliver whatever is due."""
    delivery.fan_out_pending()
    for pk in Delivery.objects.filter(status="pending").values_list("pk", flat=True):
        delivery.deliver(str(pk))


def test_it_tells_every_approver_once_by_portal_email_and_signed_webhook(
    simulator, sim_connection, cast, receiver
):
    _webhook(cast, receiver)
    session, _, _ = _wait_for_plan(simulator, sim_connection, cast)
    _run_everything()
    # A re-sync, and a second fan-out and delivery round, add nothing.
    sync.sync_one_session(session.pk)
    sync.sync_connection(sim_connection.pk, full=True)
    _run_everything()

    [event] = Event.objects.filter(kind=EventKind.PLAN_AWAITING)
    assert event.session_id == session.pk
    told = set(Notification.objects.filter(event=event).values_list("user__username", flat=True))
    assert told == {"admin", "approver"}
    assert sorted(m.to[0] for m in mail.outbox) == ["admin@example.com", "approver@example.com"]
    message = mail.outbox[0]
    link = f"https://portal.example.com/sessions/{session.pk}/#plan-heading"
    assert link in message.body
    assert link in message.alternatives[0][0]
    assert message.extra_headers["List-Unsubscribe"].startswith(
        "<https://portal.example.com/notifications/unsubscribe/"
    )
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [got] = receiver.received
    assert got.verified
    assert got.payload["type"] == "plan.awaiting_approval"
    assert got.payload["data"]["session"]["id"] == session.pk
    assert got.webhook_id == Delivery.objects.get(endpoint__isnull=False).webhook_id


def test_it_retries_a_failing_receiver_with_the_same_id_and_in_order(cast, receiver, settings):
    settings.NOTIFY_BACKOFF_SECONDS = 1
    _webhook(cast, receiver)
    session = SessionFactory(connection__team=cast.team, launched_by=cast.member)
    stamps = ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"]
    for n, state in enumerate(["AWAITING_USER_FEEDBACK", "PAUSED", "COMPLETED"]):
        session.state = state
        session.update_time = dt.datetime.fromisoformat(stamps[n])
        events.events_for_transitions(
            [SessionTransition(team=cast.team, session=session, kind="state_changed",
                               from_state="IN_PROGRESS", to_state=state)]
        )  # fmt: skip
    receiver.status = 500
    _run_everything()
    assert receiver.received == []
    first = Delivery.objects.filter(endpoint__isnull=False).order_by("created_at").first()
    assert first.status == "pending" and first.response_code == 500 and first.attempts == 1
    # The later ones wait behind the first instead of overtaking it.
    assert Delivery.objects.filter(endpoint__isnull=False, attempts=0).count() == 2
    receiver.status = 204
    Delivery.objects.update(next_attempt_at=timezone.now())
    for _ in range(3):
        _run_everything()
    kinds = [r.payload["type"] for r in receiver.received]
    assert kinds == ["session.awaiting_feedback", "session.paused", "session.completed"]
    assert all(r.verified for r in receiver.received)
    assert receiver.received[0].webhook_id == first.webhook_id


def test_it_holds_a_slow_receiver_to_the_deadline(cast, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    endpoint = _webhook(cast, receiver)
    receiver.delay = 1.5
    session = SessionFactory(connection__team=cast.team, launched_by=cast.member)
    events.record([events.session_event(session, EventKind.COMPLETED, "slow")])
    started = timezone.now()
    _run_everything()
    assert (timezone.now() - started).total_seconds() < 1.4
    row = Delivery.objects.get(endpoint=endpoint)
    assert row.status == "pending" and "No answer within 0.5 s" in row.last_error


def test_it_disables_a_channel_that_fails_for_good_and_tells_the_admins(cast, receiver, settings):
    settings.NOTIFY_RETRY_HOURS = 0
    endpoint = _webhook(cast, receiver)
    receiver.status = 500
    session = SessionFactory(connection__team=cast.team, launched_by=cast.member)
    events.record([events.session_event(session, EventKind.COMPLETED, "x")])
    _run_everything()
    _run_everything()
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "500" in endpoint.disabled_reason
    disabled = Event.objects.get(kind=EventKind.ENDPOINT_DISABLED)
    assert set(disabled.notifications.values_list("user__username", flat=True)) == {"admin"}
    # Redelivering from the log sends it again with the same id, once enabled.
    services.endpoint_set_enabled(user=cast.admin, endpoint=endpoint, enabled=True)
    receiver.status = 204
    failed = Delivery.objects.get(endpoint=endpoint)
    services.delivery_redeliver(user=cast.admin, delivery=failed)
    delivery.deliver(str(failed.pk))
    assert [r.webhook_id for r in receiver.received] == [failed.webhook_id]


def test_it_refuses_loopback_and_private_destinations_unless_allowed(settings):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    settings.WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://[::1]/x", "ftp://a.b/x"):
        with pytest.raises(DeliveryError) as caught:
            http.check_destination(url)
        assert not caught.value.retryable
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    http.check_destination("http://127.0.0.1:9/x")
    settings.WEBHOOK_ALLOWED_HOSTS = []
    settings.WEBHOOK_ALLOW_PRIVATE = True
    http.check_destination("http://10.1.2.3/x")


def test_it_caps_what_it_sends(cast, settings):
    settings.WEBHOOK_MAX_BYTES = 10
    with pytest.raises(DeliveryError, match="over the 10 cap"):
        http.post("http://127.0.0.1:9/x", b"x" * 11, {})


def test_it_records_a_bypassed_approval_but_not_a_portal_one(cast):
    session = SessionFactory(
        connection__team=cast.team, require_plan_approval=True, state="IN_PROGRESS"
    )

    def approved(activity_id, plan_id="p1"):
        return SessionTransition(
            team=cast.team, session=session, kind="plan_approved",
            details={"activity_id": activity_id, "plan_id": plan_id},
        )  # fmt: skip

    events.events_for_transitions([approved("a1")])
    assert Event.objects.filter(kind=EventKind.APPROVED_OUTSIDE).count() == 1
    OutboxAction.objects.create(
        team=cast.team, connection=session.connection, session=session, kind="approve",
        payload={"plan_id": "p2"}, status="done",
    )  # fmt: skip
    events.events_for_transitions([approved("a2", "p2")])
    # And seeing the first one again adds nothing.
    events.events_for_transitions([approved("a1")])
    assert Event.objects.filter(kind=EventKind.APPROVED_OUTSIDE).count() == 1


def test_it_records_a_session_launched_outside_the_portal(simulator, sim_connection, cast):
    JulesConnection.objects.filter(pk=sim_connection.pk).update(
        created_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    )
    client = JulesClient("test-key", simulator.base_url)
    client.create_session(prompt="Made in Jules itself")
    sync.sync_connection(sim_connection.pk, full=True)
    sync.sync_connection(sim_connection.pk, full=True)
    [event] = Event.objects.filter(kind=EventKind.LAUNCHED_OUTSIDE)
    delivery.fan_out(event)
    assert set(event.notifications.values_list("user__username", flat=True)) == {"admin"}


def test_it_records_a_refused_key_once_per_episode(simulator, cast):
    from tests.factories import ConnectionFactory

    connection = ConnectionFactory(
        team=cast.team, base_url=simulator.base_url, api_key="sk-refused-0000"
    )
    sync.sync_connection(connection.pk)
    JulesConnection.objects.filter(pk=connection.pk).update(sync_status="error")
    sync.sync_connection(connection.pk)
    [event] = Event.objects.filter(kind=EventKind.CONNECTION_BROKEN)
    assert event.connection_id == connection.pk
    assert "sk-refused" not in event.body


def test_the_scan_escalates_overdue_approvals_and_reminds_at_most_every_interval(cast):
    session = SessionFactory(
        connection__team=cast.team, state="AWAITING_PLAN_APPROVAL", launched_by=cast.member
    )
    entered = timezone.now()
    SessionTransition.objects.create(
        team=cast.team, session=session, kind="state_changed",
        to_state="AWAITING_PLAN_APPROVAL", observed_at=entered,
    )  # fmt: skip
    for minutes in (1, 6, 7, 14, 16):
        events.scan_waiting(entered + dt.timedelta(minutes=minutes))
    # Target 5 minutes, reminders every 10: at 6 (and 7, the same) and at 16.
    assert Event.objects.filter(kind=EventKind.APPROVAL_OVERDUE).count() == 2


def test_the_scan_records_a_stall_once(cast):
    session = SessionFactory(connection__team=cast.team, state="IN_PROGRESS")
    session.last_activity_at = timezone.now() - dt.timedelta(minutes=45)
    session.save()
    events.scan_waiting()
    events.scan_waiting()
    [stall] = Event.objects.filter(kind=EventKind.STALLED)
    delivery.fan_out(stall)
    # Nobody launched it from the portal: the team's admins watch it.
    assert set(stall.notifications.values_list("user__username", flat=True)) == {"admin"}


def test_a_person_who_leaves_the_team_stops_hearing_of_it(client, cast, settings):
    settings.NOTIFY_GROUP_SECONDS = 60
    session = SessionFactory(connection__team=cast.team, launched_by=cast.member)
    event = events.session_event(session, EventKind.FEEDBACK_AWAITING, "q")
    events.record([event])
    delivery.fan_out_pending()
    assert Notification.objects.filter(user=cast.member).count() == 1
    Membership.objects.filter(user=cast.member, team=cast.team).delete()
    Delivery.objects.update(next_attempt_at=timezone.now())
    _run_everything()
    assert mail.outbox == []
    assert (
        Delivery.objects.get(user=cast.member).last_error == "The person is no longer in the team."
    )
    client.force_login(cast.member)
    assert client.get(reverse("sessions_app:notification-count")).json()["unread"] == 0


def test_the_bell_counts_and_marks_read(client, cast):
    session = SessionFactory(connection__team=cast.team, launched_by=cast.member)
    for key in ("a", "b"):
        events.record([events.session_event(session, EventKind.FEEDBACK_AWAITING, key)])
    delivery.fan_out_pending()
    client.force_login(cast.member)
    count = client.get(reverse("sessions_app:notification-count")).json()
    assert count["unread"] == 2 and count["latest"][0]["url"] == f"/sessions/{session.pk}/"
    page = client.get(reverse("sessions_app:notification-list")).content.decode()
    assert "The agent asks a question" in page
    first = Notification.objects.filter(user=cast.member).first()
    client.post(reverse("sessions_app:notification-read", args=[first.pk]))
    assert client.get(reverse("sessions_app:notification-count")).json()["unread"] == 1
    client.post(reverse("sessions_app:notifications-read-all"))
    assert client.get(reverse("sessions_app:notification-count")).json()["unread"] == 0
    # Another person's notification is not theirs to mark.
    client.force_login(cast.viewer)
    assert (
        client.post(reverse("sessions_app:notification-read", args=[first.pk])).status_code == 404
    )


def test_one_click_unsubscribe_works_without_signing_in(client, cast):
    session = SessionFactory(connection__team=cast.team, launched_by=cast.member)
    token = unsubscribe_token(cast.member.pk, cast.team.pk, EventKind.COMPLETED)
    url = reverse("sessions_app:notification-unsubscribe", args=[token])
    assert client.post(url).status_code == 200
    events.record([events.session_event(session, EventKind.COMPLETED, "done")])
    _run_everything()
    assert mail.outbox == []
    assert Notification.objects.filter(user=cast.member).count() == 1  # The portal stays on.
    bad = reverse("sessions_app:notification-unsubscribe", args=[token[:-3] + "xyz"])
    assert client.post(bad).status_code == 400


def test_preferences_turn_channels_off_and_let_people_ask_for_more(client, cast):
    client.force_login(cast.viewer)
    client.post(
        reverse("sessions_app:notification-preferences"),
        {"on": [f"{cast.team.pk}:{EventKind.PLAN_AWAITING}:portal"]},
    )
    session = SessionFactory(connection__team=cast.team)
    events.record([events.session_event(session, EventKind.PLAN_AWAITING, "p")])
    _run_everything()
    told = set(Notification.objects.values_list("user__username", flat=True))
    assert told == {"admin", "approver", "viewer"}
    assert "viewer@example.com" not in [m.to[0] for m in mail.outbox]


def test_the_chat_formats_link_into_the_portal_and_never_approve(cast):
    session = SessionFactory(connection__team=cast.team)
    event = events.session_event(session, EventKind.PLAN_AWAITING, "p")
    site = "https://portal.example.com"
    url = f"{site}/sessions/{session.pk}/#plan-heading"
    blocks = slack.payload(event, site)["blocks"]
    assert blocks[-1]["elements"][0]["url"] == url
    card = chat.payload(event, site)["cardsV2"][0]["card"]
    assert card["sections"][0]["widgets"][-1]["buttonList"]["buttons"][0]["onClick"] == {
        "openLink": {"url": url}
    }
    adaptive = teams.payload(event, site)["attachments"][0]["content"]
    assert adaptive["actions"] == [
        {"type": "Action.OpenUrl", "title": "Review the plan in the portal", "url": url}
    ]


def test_a_new_secret_is_shown_once_and_rotation_changes_the_signature(client, cast, receiver):
    client.force_login(cast.admin)
    response = client.post(
        reverse("sessions_app:team-channels", args=[cast.team.slug]),
        {"kind": "webhook", "label": "Hook", "url": receiver.url},
    )
    html = response.content.decode()
    endpoint = Endpoint.objects.get(label="Hook")
    secret = endpoint.get_secret()
    assert secret.startswith("whsec_") and secret in html
    assert secret not in endpoint.secret_encrypted
    detail = client.get(reverse("sessions_app:endpoint-detail", args=[endpoint.pk]))
    assert secret not in detail.content.decode()
    rotated = client.post(reverse("sessions_app:endpoint-rotate", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.get_secret() != secret and endpoint.get_secret() in rotated.content.decode()


def test_the_channel_form_explains_a_refused_address(client, cast, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    client.force_login(cast.admin)
    response = client.post(
        reverse("sessions_app:team-channels", args=[cast.team.slug]),
        {"kind": "slack", "label": "Inside", "url": "http://10.0.0.5/hook"},
    )
    assert response.status_code == 400
    assert "private or loopback" in response.content.decode()
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize("role", ["admin", "approver", "member", "viewer", "outsider"])
def test_only_admins_manage_the_team_channels(client, cast, role, receiver):
    endpoint = _webhook(cast, receiver)
    session = SessionFactory(connection__team=cast.team)
    events.record([events.session_event(session, EventKind.COMPLETED, "c")])
    delivery.fan_out_pending()
    row = Delivery.objects.get(endpoint=endpoint)
    client.force_login(cast.by_role()[role])
    posts = [
        (reverse("sessions_app:endpoint-rotate", args=[endpoint.pk]), {}),
        (reverse("sessions_app:endpoint-enabled", args=[endpoint.pk]), {"enabled": "0"}),
        (reverse("sessions_app:delivery-redeliver", args=[endpoint.pk, row.pk]), {}),
        (
            reverse("sessions_app:team-notification-settings", args=[cast.team.slug]),
            {"stalled_after_minutes": 5, "approval_target_minutes": 3, "reminder_minutes": 4},
        ),
        (
            reverse("sessions_app:team-channels", args=[cast.team.slug]),
            {"kind": "slack", "label": f"Slack {role}", "url": receiver.url},
        ),
    ]
    for url, data in posts:
        status = client.post(url, data).status_code
        if role == "admin":
            assert status in {200, 302}, url
        else:
            assert status == (404 if role == "outsider" else 403), url
    assert Endpoint.objects.filter(label=f"Slack {role}").exists() is (role == "admin")


def test_the_team_settings_form_refuses_nonsense(client, cast):
    client.force_login(cast.admin)
    response = client.post(
        reverse("sessions_app:team-notification-settings", args=[cast.team.slug]),
        {"stalled_after_minutes": 0, "approval_target_minutes": "soon", "reminder_minutes": 4},
    )
    assert response.status_code == 400
    assert "Between 1 minute and a week" in response.content.decode()
