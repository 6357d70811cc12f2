"""Sign-in lockout behind proxies: whose address it is, what counts together, what is audited."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sessions_app.audit import chain as audit
from sessions_app.audit.lockout import close_finished_lockouts
from sessions_app.models import AuditEntry, SignInLockout
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

BALANCER = "10.0.0.2"


def _sign_in(username, password, *, forwarded_for=None, remote=BALANCER):
    headers = {"HTTP_X_FORWARDED_FOR": forwarded_for} if forwarded_for else {}
    client = Client(REMOTE_ADDR=remote, **headers)
    return client.post(reverse("login"), {"username": username, "password": password})


@pytest.fixture
def behind_balancer(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    return settings


def test_it_audits_the_client_address_behind_a_proxy(cast, behind_balancer):
    _sign_in("member", "wrong", forwarded_for="203.0.113.7")
    # What the client wrote itself, left of what the balancer appended, is not believed.
    _sign_in("member", DEFAULT_PASSWORD, forwarded_for="198.51.100.66, 203.0.113.8")
    failed = AuditEntry.objects.get(action="auth.sign_in_failed")
    signed_in = AuditEntry.objects.get(action="auth.sign_in")
    assert failed.ip_address == "203.0.113.7"
    assert signed_in.ip_address == "203.0.113.8"


def test_it_uses_the_peer_address_when_no_proxy_is_configured(cast, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    _sign_in("member", "wrong", forwarded_for="203.0.113.7", remote="192.0.2.4")
    assert AuditEntry.objects.get(action="auth.sign_in_failed").ip_address == "192.0.2.4"


def test_it_locks_out_two_clients_behind_one_proxy_separately(cast, behind_balancer):
    for _ in range(behind_balancer.AXES_FAILURE_LIMIT):
        _sign_in("member", "wrong", forwarded_for="203.0.113.7")
    assert _sign_in("member", DEFAULT_PASSWORD, forwarded_for="203.0.113.7").status_code == 429
    # The same person (or a colleague) behind the same balancer, from another client.
    assert _sign_in("member", DEFAULT_PASSWORD, forwarded_for="203.0.113.8").status_code == 302
    assert _sign_in("viewer", DEFAULT_PASSWORD, forwarded_for="203.0.113.9").status_code == 302
    locked = AuditEntry.objects.get(action="auth.locked_out")
    assert locked.ip_address == "203.0.113.7"


def test_it_does_not_let_a_stranger_lock_a_named_person_out(cast, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT * 3):
        _sign_in("admin", "wrong", remote="198.51.100.20")
    # The stranger is stopped, even with the right password...
    assert _sign_in("admin", DEFAULT_PASSWORD, remote="198.51.100.20").status_code == 429
    # ...and the admin, from their own address, is not.
    assert _sign_in("admin", DEFAULT_PASSWORD, remote="192.0.2.50").status_code == 302


def test_it_stops_one_address_guessing_many_accounts(cast, settings):
    settings.AXES_ADDRESS_FAILURE_LIMIT = 8
    for index in range(settings.AXES_ADDRESS_FAILURE_LIMIT):
        _sign_in(f"guess{index}", "wrong", remote="192.0.2.9")
    assert _sign_in("viewer", DEFAULT_PASSWORD, remote="192.0.2.9").status_code == 429
    assert _sign_in("viewer", DEFAULT_PASSWORD, remote="192.0.2.10").status_code == 302
    entry = AuditEntry.objects.get(action="auth.locked_out")
    assert entry.ip_address == "192.0.2.9" and entry.details == {"limit": "address"}


def test_it_keeps_one_entry_per_lockout_window_with_the_count(cast, settings):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit):
        _sign_in("member", "wrong", remote="198.51.100.30")
    for attempt in range(100):
        password = DEFAULT_PASSWORD if attempt % 10 == 0 else "wrong"
        assert _sign_in("member", password, remote="198.51.100.30").status_code == 429
    assert AuditEntry.objects.filter(action="auth.sign_in_failed").count() == limit
    assert AuditEntry.objects.filter(action="auth.locked_out").count() == 1
    assert SignInLockout.objects.get().refused == 100

    # Nothing closes while the lockout lasts; once it has ended, one entry has the count.
    assert close_finished_lockouts() == 0
    later = timezone.now() + dt.timedelta(hours=settings.AXES_COOLOFF_TIME, minutes=1)
    assert close_finished_lockouts(later) == 1
    ended = AuditEntry.objects.get(action="auth.lockout_ended")
    assert ended.details == {"username": "member", "refused": 100}
    assert ended.ip_address == "198.51.100.30"
    assert close_finished_lockouts(later) == 0
    assert AuditEntry.objects.filter(action__startswith="auth.").count() == limit + 2
    checked, broken = audit.verify_chain()
    assert broken is None and checked == AuditEntry.objects.count()


def test_it_opens_a_new_window_after_the_last_one_ended(cast, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        _sign_in("member", "wrong", remote="198.51.100.31")
    # The beat task closes the first window once its lockout has ended.
    SignInLockout.objects.update(
        last_attempt_at=timezone.now() - dt.timedelta(hours=settings.AXES_COOLOFF_TIME, minutes=1)
    )
    from axes.models import AccessAttempt

    AccessAttempt.objects.all().delete()
    from sessions_app.tasks import close_lockouts

    close_lockouts.delay()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in("member", "wrong", remote="198.51.100.31")
    actions = list(
        AuditEntry.objects.filter(action__in=["auth.locked_out", "auth.lockout_ended"])
        .order_by("seq")
        .values_list("action", "details")
    )
    assert actions == [
        ("auth.locked_out", {"username": "member"}),
        ("auth.lockout_ended", {"username": "member", "refused": 1}),
        ("auth.locked_out", {"username": "member"}),
    ]
