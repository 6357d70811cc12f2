"""Email digests (issue 14): hourly or daily instead of one email an event, exactly once per
person, team and period, through the same delivery rows as every other email."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from bench.common import free_port
from sessions_app.models import (
    Delivery,
    DigestPreference,
    EventKind,
    Membership,
    NotificationPreference,
    SessionTransition,
)
from sessions_app.notifications import delivery, digests, events, services
from tests.factories import SessionFactory
from tests.receivers import SmtpSink

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _quick(settings):
    settings.NOTIFY_GROUP_SECONDS = 0
    settings.SITE_URL = "https://portal.example.com"


def _transition(cast, session, state, stamp):
    session.state = state
    session.update_time = stamp
    events.events_for_transitions(
        [SessionTransition(team=cast.team, session=session, kind="state_changed",
                           from_state="IN_PROGRESS", to_state=state)]
    )  # fmt: skip


def _three_events(cast):
    """Three events for the member (the launcher): two sessions, one of them twice."""
    first = SessionFactory(connection__team=cast.team, launched_by=cast.member, title="First")
    second = SessionFactory(connection__team=cast.team, launched_by=cast.member, title="Second")
    now = timezone.now()
    _transition(cast, first, "AWAITING_USER_FEEDBACK", now)
    _transition(cast, second, "COMPLETED", now)
    _transition(cast, first, "COMPLETED", now + dt.timedelta(seconds=1))
    delivery.fan_out_pending()
    return first, second


def _waiting(cast):
    return Delivery.objects.filter(user=cast.member, channel="email").order_by("created_at")


def test_an_hourly_digest_gathers_the_hour_into_one_message_exactly_once(cast):
    services.digest_set(user=cast.member, team_id=cast.team.pk, frequency="hourly")
    first, second = _three_events(cast)
    rows = list(_waiting(cast))
    assert len(rows) == 3 and {r.status for r in rows} == {"digest"}
    until = rows[0].digest_until
    assert until == digests.period_end("hourly", rows[0].created_at)
    assert until.minute == 0 and dt.timedelta(0) < until - rows[0].created_at <= dt.timedelta(
        hours=1
    )
    # Nothing goes out before the hour ends: not by the sweep, not by the digest task.
    delivery.sweep()
    assert digests.open_due() == []
    assert mail.outbox == []

    after = until + dt.timedelta(seconds=5)
    [opened] = digests.open_due(now=after)
    # Beat running again, or a second worker, opens no second digest of the same period.
    assert digests.open_due(now=after) == []
    assert digests.open_due(now=after + dt.timedelta(minutes=1)) == []
    assert delivery.deliver(opened) == "delivered"
    [message] = mail.outbox
    assert message.to == ["member@example.com"]
    assert message.subject == "Your hourly digest of Acme: 3 notifications"
    for session in (first, second):
        assert f"https://portal.example.com/sessions/{session.pk}/" in message.body
    assert message.body.index("First") < message.body.index("Second")
    assert "Stop all email from Acme" in message.body
    assert message.extra_headers["List-Unsubscribe"].startswith(
        "<https://portal.example.com/notifications/unsubscribe/"
    )
    digest = Delivery.objects.get(pk=opened)
    assert digest.channel == "email_digest" and digest.key.startswith(f"digest:{cast.team.pk}:")
    assert {(r.status, r.grouped_into) for r in _waiting(cast)} == {("delivered", digest.pk)}
    # A repeated task finds the digest delivered and sends nothing more.
    assert delivery.deliver(opened) == "delivered"
    assert len(mail.outbox) == 1


def test_emails_after_the_period_wait_for_the_next_digest(cast):
    services.digest_set(user=cast.member, team_id=cast.team.pk, frequency="hourly")
    _three_events(cast)
    until = _waiting(cast).first().digest_until
    [opened] = digests.open_due(now=until + dt.timedelta(seconds=1))
    # An event of the next hour, recorded before the digest of this one is sent.
    later = SessionFactory(connection__team=cast.team, launched_by=cast.member)
    _transition(cast, later, "COMPLETED", timezone.now())
    delivery.fan_out_pending()
    Delivery.objects.filter(event__session=later).update(digest_until=until + dt.timedelta(hours=1))
    delivery.deliver(opened)
    assert mail.outbox[0].subject.endswith(": 3 notifications")
    assert Delivery.objects.get(event__session=later, channel="email").status == "digest"


def test_a_daily_digest_ends_at_midnight_where_the_portal_is(settings):
    settings.TIME_ZONE = "Europe/Paris"
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    at = dt.datetime(2026, 3, 28, 23, 30, tzinfo=dt.UTC)  # 00:30 on the 29th in Paris
    assert digests.period_end("daily", at) == dt.datetime(2026, 3, 30, tzinfo=paris)
    # The night the clocks go forward, the day is 23 hours long and still ends at midnight.
    assert digests.period_end("daily", at) - at == dt.timedelta(hours=22, minutes=30)
    assert digests.period_end("hourly", at) == dt.datetime(2026, 3, 29, 1, tzinfo=paris)


def test_a_digest_that_cannot_be_sent_is_retried_and_its_emails_wait_for_it(cast, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # Nothing listens there yet.
    settings.EMAIL_TIMEOUT = 2
    settings.NOTIFY_BACKOFF_SECONDS = 1
    services.digest_set(user=cast.member, team_id=cast.team.pk, frequency="daily")
    _three_events(cast)
    until = _waiting(cast).first().digest_until
    [opened] = digests.open_due(now=until + dt.timedelta(seconds=1))
    digest = Delivery.objects.get(pk=opened)
    assert digest.status == "pending" and digest.attempts == 1
    assert "mail server" in digest.last_error
    assert {r.status for r in _waiting(cast)} == {"digest"}
    assert {r.attempts for r in _waiting(cast)} == {0}

    sink = SmtpSink(port=settings.EMAIL_PORT).start()
    try:
        Delivery.objects.filter(pk=opened).update(next_attempt_at=timezone.now())
        assert delivery.deliver(opened) == "delivered"
    finally:
        sink.stop()
    [message] = sink.messages
    assert message["Subject"] == "Your daily digest of Acme: 3 notifications"
    assert sink.envelopes == [["member@example.com"]]
    assert {r.status for r in _waiting(cast)} == {"delivered"}


def test_a_person_who_left_gets_no_digest(cast):
    services.digest_set(user=cast.member, team_id=cast.team.pk, frequency="hourly")
    _three_events(cast)
    until = _waiting(cast).first().digest_until
    Membership.objects.filter(user=cast.member, team=cast.team).delete()
    [opened] = digests.open_due(now=until + dt.timedelta(seconds=1))
    assert Delivery.objects.get(pk=opened).status == "failed"
    assert {r.status for r in _waiting(cast)} == {"failed"}
    assert mail.outbox == []
    assert digests.open_due(now=until + dt.timedelta(minutes=5)) == []


def test_people_on_immediate_email_are_not_held_back(cast):
    services.digest_set(user=cast.member, team_id=cast.team.pk, frequency="immediate")
    _three_events(cast)
    for row in _waiting(cast).filter(status="pending"):
        delivery.deliver(str(row.pk))
    assert len(mail.outbox) == 2  # Grouped per session, as always.
    assert not _waiting(cast).filter(status="digest").exists()


def test_the_settings_page_sets_the_rhythm_and_refuses_nonsense(client, cast):
    client.force_login(cast.member)
    url = reverse("sessions_app:notification-preferences")
    page = client.get(url).content.decode()
    assert f'name="digest:{cast.team.pk}"' in page and "One digest a day" in page
    answer = client.post(url, {f"digest:{cast.team.pk}": "weekly", "on": []})
    assert answer.status_code == 400
    assert "Choose how often email comes" in answer.content.decode()
    assert not DigestPreference.objects.exists()
    client.post(url, {f"digest:{cast.team.pk}": "daily"})
    assert DigestPreference.objects.get(user=cast.member, team=cast.team).frequency == "daily"
    assert 'value="daily" selected' in client.get(url).content.decode()


def test_a_digests_unsubscribe_link_stops_all_email_of_the_team(client, cast):
    from sessions_app.notifications.channels.email import EVERY_KIND, unsubscribe_token

    token = unsubscribe_token(cast.member.pk, cast.team.pk, EVERY_KIND)
    url = reverse("sessions_app:notification-unsubscribe", args=[token])
    assert "Stop all email from Acme?" in client.get(url).content.decode()
    answer = client.post(url)
    assert "no more email from Acme" in answer.content.decode()
    off = NotificationPreference.objects.filter(user=cast.member, team=cast.team, channel="email")
    assert off.count() == len(EventKind) and not off.filter(enabled=True).exists()
