"""The audit chain: append-only through the ORM, and tamper-evident behind its back."""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from sessions_app.audit import chain as audit
from sessions_app.connections import crypto
from sessions_app.models import AuditEntry, JulesConnection
from sessions_app.models.audit import AppendOnlyError
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db


def _entries(cast, n=5):
    for index in range(n):
        audit.record("session.message", actor=cast.member, team=cast.team, details={"n": index})


def test_it_refuses_updates_and_deletes_through_the_orm(cast):
    _entries(cast, 1)
    entry = AuditEntry.objects.get()
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.bulk_update([entry], ["action"])
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.update_or_create(seq=entry.seq, defaults={"action": "x"})
    forged = AuditEntry(seq=entry.seq, action="x", prev_hash=entry.prev_hash, hash=entry.hash)
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.bulk_create(
            [forged], update_conflicts=True, unique_fields=["seq"], update_fields=["action"]
        )
    assert AuditEntry.objects.get().action == "session.message"


def test_it_verifies_an_intact_chain(cast, capsys):
    _entries(cast)
    call_command("audit_verify")
    assert "5 audit entries verified" in capsys.readouterr().out


def test_it_names_the_first_entry_edited_in_the_database(cast):
    _entries(cast)
    third = AuditEntry.objects.get(seq=3)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sessions_app_auditentry SET details = %s WHERE id = %s", ['{"n": 99}', third.pk]
        )
    with pytest.raises(CommandError, match="entry #3"):
        call_command("audit_verify")


def test_it_names_the_newest_entry_rewritten_with_a_fresh_hash(cast):
    _entries(cast)
    last = AuditEntry.objects.get(seq=5)
    last.details = {"n": 99}
    forged = last.compute_hash()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE sessions_app_auditentry SET details = %s, hash = %s WHERE id = %s",
            ['{"n": 99}', forged, last.pk],
        )
    with pytest.raises(CommandError, match="entry #5"):
        call_command("audit_verify")


def test_it_notices_a_deleted_entry(cast):
    _entries(cast)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sessions_app_auditentry WHERE seq = 2")
    with pytest.raises(CommandError, match="#2"):
        call_command("audit_verify")


def test_it_records_sign_in_and_failed_sign_in(client, cast):
    from django.urls import reverse

    from tests.factories import DEFAULT_PASSWORD

    client.post(reverse("login"), {"username": "member", "password": "wrong"})
    client.post(reverse("login"), {"username": "member", "password": DEFAULT_PASSWORD})
    actions = list(AuditEntry.objects.order_by("seq").values_list("action", flat=True))
    assert actions == ["auth.sign_in_failed", "auth.sign_in"]
    assert "wrong" not in str(AuditEntry.objects.first().details)


def test_it_rotates_the_field_key(cast, settings, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    ConnectionFactory(team=cast.team, api_key="jules-secret")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_field_key")
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert JulesConnection.objects.get().get_api_key() == "jules-secret"
    assert crypto.decrypt(JulesConnection.objects.get().api_key_encrypted) == "jules-secret"


# --- the audit page, its exports and a session's history -------------------------------


def _page(client, **params):
    from django.urls import reverse

    # The results fragment only: the filter form's options name every action.
    response = client.get(
        reverse("sessions_app:audit"),
        params,
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="audit-results",
    )
    return response.content.decode()


@pytest.fixture
def history(cast):
    from sessions_app.audit.chain import Target

    audit.record(
        "session.message",
        actor=cast.member,
        team=cast.team,
        target=Target("session", "41", "Rounding"),
        details={"prompt": "Use banker's rounding"},
    )
    audit.record("policy.change", actor=cast.admin, team=cast.team, details={"after": {}})
    audit.record("member.add", actor=cast.outsider, team=cast.other_team, details={})


def test_it_shows_only_the_users_teams_history(client, cast, history):
    client.force_login(cast.viewer)
    html = _page(client)
    assert "Use banker&#x27;s rounding" in html and "Approval policy changed" in html
    assert "Member added" not in html
    client.force_login(cast.outsider)
    html = _page(client)
    assert "Member added" in html and "Rounding" not in html


def test_it_filters_by_person_action_team_session_and_date(client, cast, history):
    import datetime as dt

    client.force_login(cast.viewer)
    assert "Rounding" not in _page(client, person="admin")
    assert "Approval policy changed" in _page(client, person="admin")
    html = _page(client, action="session.*")
    assert "Rounding" in html and "Approval policy changed" not in html
    assert "Rounding" in _page(client, session="41")
    assert "Rounding" not in _page(client, session="42")
    assert "Rounding" in _page(client, team=str(cast.team.pk))
    # Another team's id is not a choice: the filter is dropped, the scope stays.
    foreign = _page(client, team=str(cast.other_team.pk))
    assert "Rounding" in foreign and "Member added" not in foreign
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert "No entries match" in _page(client, since=tomorrow)
    # Values the form cannot read are ignored rather than answered with an error.
    assert "Rounding" in _page(client, session="abc", since="never")
    # A day is the portal's calendar day, both ends included; the calendar's edges are fine.
    from django.utils import timezone

    today = timezone.localdate().isoformat()
    assert "Rounding" in _page(client, since=today, until=today)
    yesterday = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    assert "No entries match" in _page(client, until=yesterday)
    for zone in ("UTC", "Asia/Tokyo", "America/Los_Angeles"):
        with timezone.override(zone):
            html = _page(client, since="0001-01-01", until="9999-12-31")
        assert "Rounding" in html, zone
    too_big = "9" * 30
    assert "Rounding" in _page(client, session=too_big, since="9999-12-31x")
    # An export does not drop a bad filter silently (it would export more than asked).
    from django.urls import reverse

    export = client.get(reverse("sessions_app:audit-export", args=["csv"]), {"session": too_big})
    assert (
        export.status_code == 400 and "Ignored the session number filter" in export.content.decode()
    )


def test_it_serves_the_results_as_an_htmx_fragment_and_paginates(client, cast):
    from django.urls import reverse

    for index in range(60):
        audit.record("session.message", actor=cast.member, team=cast.team, details={"n": index})
    client.force_login(cast.viewer)
    response = client.get(
        reverse("sessions_app:audit"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="audit-results"
    )
    html = response.content.decode()
    assert "<html" not in html and 'id="audit-results"' in html
    assert "Page 1 of 2" in html and 'id="audit-60"' in html and 'id="audit-10"' not in html
    second = _page(client, page="2")
    assert 'id="audit-10"' in second and 'id="audit-60"' not in second


def _export(client, fmt, **params):
    from django.urls import reverse

    response = client.get(reverse("sessions_app:audit-export", args=[fmt]), params)
    assert response.streaming
    return response, b"".join(response.streaming_content).decode()


def test_it_exports_the_filtered_entries_as_csv_and_json(client, cast, history):
    import csv
    import io
    import json

    client.force_login(cast.viewer)
    response, body = _export(client, "csv", action="session.message")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 1 and rows[0]["person"] == "member" and rows[0]["team"] == "Acme"
    assert json.loads(rows[0]["details"]) == {"prompt": "Use banker's rounding"}
    _, body = _export(client, "json")
    items = json.loads(body)
    actions = [item["action"] for item in items if not item["action"].startswith("auth.")]
    assert actions == ["policy.change", "session.message"]
    assert all(len(item["hash"]) == 64 for item in items)


def test_it_defuses_spreadsheet_formulas_in_csv(client, cast):
    from sessions_app.audit.chain import Target

    audit.record(
        "session.launch",
        actor=cast.member,
        team=cast.team,
        target=Target("connection", "1", '=HYPERLINK("http://evil")'),
    )
    client.force_login(cast.viewer)
    _, body = _export(client, "csv")
    assert "'=HYPERLINK" in body


def test_it_streams_large_exports_in_flat_memory(client, cast):
    import tracemalloc

    from django.db import connection as db_connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(cast.viewer)
    count = 100_000
    # Rows straight into the table: the chain does not matter to an export.
    AuditEntry.objects.bulk_create(
        (
            AuditEntry(
                seq=1000 + index,
                team=cast.team,
                actor_label="member",
                action="session.message",
                target_type="session",
                target_id=str(index),
                target_label=f"Session {index}",
                details={"prompt": "x" * 100},
                prev_hash="0" * 64,
                hash="0" * 64,
            )
            for index in range(count)
        ),
        batch_size=5000,
    )
    from django.urls import reverse

    for fmt in ("csv", "json"):
        response = client.get(reverse("sessions_app:audit-export", args=[fmt]))
        chunks = iter(response.streaming_content)
        # Rows are produced lazily: the first chunk is out before the query runs.
        with CaptureQueriesContext(db_connection) as queries:
            next(chunks)
        assert len(queries) == 0
        tracemalloc.start()
        size = 0
        lines = 0
        for chunk in chunks:
            size += len(chunk)
            lines += chunk.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert lines >= count
        # The whole export is many times the memory its production ever held: one chunk
        # of rows at a time, never the whole result.
        assert size > 5 * peak, (fmt, size, peak)
        assert peak < 8_000_000, (fmt, peak)


def test_it_shows_a_sessions_history_including_its_launch(client, cast):
    from django.urls import reverse

    from sessions_app.models import OutboxAction
    from sessions_app.sessions import services
    from tests.factories import ConnectionFactory, SessionFactory

    connection = ConnectionFactory(team=cast.team)
    launch = services.session_launch(user=cast.member, connection=connection, prompt="Go")
    session = SessionFactory(connection=connection, state="AWAITING_USER_FEEDBACK")
    OutboxAction.objects.filter(pk=launch.pk).update(session=session, status="done")
    services.session_send_message(user=cast.member, session=session, prompt="<b>bold</b>")
    other = SessionFactory(connection=connection, state="AWAITING_USER_FEEDBACK")
    services.session_send_message(user=cast.member, session=other, prompt="elsewhere")
    client.force_login(cast.viewer)
    url = reverse("sessions_app:session-history", args=[session.pk])
    page = client.get(url).content.decode()
    assert "<html" in page and "Session launched" in page and "Message sent" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "elsewhere" not in page
    fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and f'id="session-{session.pk}-history"' in fragment


def test_it_audits_a_lockout_after_repeated_failed_sign_ins(client, cast, settings):
    from django.urls import reverse

    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "member", "password": "wrong"})
    locked = AuditEntry.objects.filter(action="auth.locked_out")
    assert locked.count() == 1
    assert locked.get().details == {"username": "member"}
    assert AuditEntry.objects.filter(action="auth.sign_in_failed").count() == (
        settings.AXES_FAILURE_LIMIT
    )
    assert "wrong" not in str(list(AuditEntry.objects.values_list("details", flat=True)))


def test_it_generates_a_usable_field_key(capsys):
    call_command("generate_field_key")
    key = capsys.readouterr().out.strip()
    assert Fernet(key.encode()).decrypt(Fernet(key.encode()).encrypt(b"k")) == b"k"


# --- one entry for every action the issue lists ---------------------------------------

ADDRESS = "203.0.113.5"


def test_every_listed_action_leaves_exactly_one_entry(
    cast, simulator, settings, django_capture_on_commit_callbacks
):
    """Each person's action through the pages, and the sync's observations, in one story."""
    from django.test import Client
    from django.urls import reverse

    from sessions_app import sync
    from sessions_app.models import Membership, OutboxAction, Session, Source
    from tests.factories import DEFAULT_PASSWORD, UserFactory

    settings.JULES_API_BASE_URL = simulator.base_url
    newcomer_user = UserFactory(username="newcomer", email="newcomer@example.com")
    client = Client(REMOTE_ADDR=ADDRESS)

    def post(name, args=(), data=None, **extra):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse(name, args=list(args)), data or {}, **extra)
        assert response.status_code in {200, 302}, (name, response.status_code)
        return response

    post("login", data={"username": "admin", "password": "wrong"})
    post("login", data={"username": "admin", "password": DEFAULT_PASSWORD})
    post(
        "sessions_app:connection-add",
        [cast.team.slug],
        {"label": "Shared", "api_key": "test-key"},
    )
    connection = JulesConnection.objects.get(label="Shared")
    post("sessions_app:connection-rotate", [connection.pk], {"api_key": "test-key"})
    from django.core import mail

    post(
        "sessions_app:invitation-create",
        [cast.team.slug],
        {"email": "newcomer@example.com", "role": "viewer"},
    )
    invitee = Client(REMOTE_ADDR=ADDRESS)
    invitee.force_login(newcomer_user)
    link = re.search(r"/invitations/join/[^/\s]+/", mail.outbox[-1].body)
    assert link is not None
    accepted = invitee.post(link.group(0), {"answer": "accept"})
    assert accepted.status_code == 302
    accept = AuditEntry.objects.get(action="member.accept")
    assert accept.actor == newcomer_user and accept.team_id == cast.team.pk
    newcomer = Membership.objects.get(user__username="newcomer")
    post("sessions_app:member-role", [cast.team.slug, newcomer.pk], {"role": "member"})
    post("sessions_app:member-remove", [cast.team.slug, newcomer.pk])
    post("sessions_app:team-policy", [cast.team.slug], {})

    # Launch: delivered at once (eager Celery), so the session exists on Jules and here.
    post(
        "sessions_app:session-launch",
        data={
            "connection": connection.pk,
            "source": Source.objects.get(
                connection=connection, name="sources/github/acme/billing"
            ).pk,
            "branch": "main",
            "prompt": "Add tests [sim:question]",
            "require_plan_approval": "on",
            "auto_create_pr": "on",
        },
    )
    session = OutboxAction.objects.get(kind="launch").session
    assert session is not None
    simulator.advance(70)
    sync.sync_one_session(session.pk)
    session.refresh_from_db()
    assert session.state == "AWAITING_PLAN_APPROVAL"
    post("sessions_app:session-approve", [session.pk])
    simulator.advance(60)
    sync.sync_one_session(session.pk)
    session.refresh_from_db()
    assert session.state == "AWAITING_USER_FEEDBACK", session.state
    post("sessions_app:session-message", [session.pk], {"prompt": "Toward zero, please."})
    simulator.advance(900)
    sync.sync_one_session(session.pk)
    session.refresh_from_db()
    assert session.state == "COMPLETED" and session.pr_url
    post("sessions_app:session-archive", [session.pk])
    post("sessions_app:session-archive", [session.pk], {"undo": "1"})
    post("sessions_app:session-delete", [session.pk])
    post("sessions_app:connection-enabled", [connection.pk], {"enabled": "0"})

    # A failure Jules reports, observed by the sync (launched outside the portal).
    from jules.client import JulesClient

    remote = JulesClient("test-key", simulator.base_url).create_session(
        prompt='Break [sim:failure step=1 reason="Tests do not pass"]'
    )
    failing = sync.upsert_remote_session(connection, remote)
    simulator.advance(900)
    sync.sync_one_session(failing.pk)
    failing.refresh_from_db()
    assert failing.state == "FAILED"

    people = [
        "auth.sign_in_failed",
        "auth.sign_in",
        "connection.add",
        "connection.rotate",
        "member.invite",
        "member.role_change",
        "member.remove",
        "policy.change",
        "session.launch",
        "session.approve",
        "session.message",
        "session.archive",
        "session.unarchive",
        "session.delete",
        "connection.disable",
    ]
    for action in people:
        # The invitee's own sign-in is theirs, not part of the admin's story.
        entries = AuditEntry.objects.filter(action=action).exclude(actor_label="newcomer")
        assert entries.count() == 1, action
        entry = entries.get()
        assert entry.ip_address == ADDRESS, action
        if action != "auth.sign_in_failed":
            assert entry.actor == cast.admin and entry.actor_label == "admin", action
        if not action.startswith("auth."):
            assert entry.team_id == cast.team.pk and entry.target_type and entry.target_id, action
    on_session = ["session.approve", "session.message", "session.archive", "session.delete"]
    for action in on_session:
        assert AuditEntry.objects.get(action=action).target_id == str(session.pk), action
    assert AuditEntry.objects.get(action="session.approve").details["plan_id"]

    observed = AuditEntry.objects.filter(action__startswith="sync.", target_id=str(session.pk))
    for action in ("sync.plan_generated", "sync.plan_approved", "sync.pr_opened"):
        assert observed.filter(action=action).count() == 1, action
    states = [
        entry.details["to_state"]
        for entry in observed.filter(action="sync.state_changed").order_by("seq")
    ]
    assert "AWAITING_PLAN_APPROVAL" in states and states[-1] == "COMPLETED"
    failed = AuditEntry.objects.filter(action="sync.failed", target_id=str(failing.pk))
    assert failed.count() == 1
    assert all(e.actor_id is None and e.ip_address is None for e in observed)
    # The chain holds across everything written above.
    checked, broken = audit.verify_chain()
    assert broken is None and checked == AuditEntry.objects.count()
    assert Session.objects.filter(pk=session.pk).exists()


def _sign_in(address, username, password):
    from django.test import Client
    from django.urls import reverse

    client = Client(REMOTE_ADDR=address)
    return client.post(reverse("login"), {"username": username, "password": password})


def test_it_does_not_lock_an_account_out_for_failures_from_other_addresses(cast, settings):
    from tests.factories import DEFAULT_PASSWORD

    for index in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(f"198.51.100.{index + 1}", "member", "wrong")
    # Failures count per account and address together (docs/architecture.md).
    assert _sign_in("198.51.100.200", "member", DEFAULT_PASSWORD).status_code == 302
    assert not AuditEntry.objects.filter(action="auth.locked_out").exists()


def test_it_locks_out_one_address_trying_many_accounts(cast, settings):
    from tests.factories import DEFAULT_PASSWORD

    for index in range(settings.AXES_ADDRESS_FAILURE_LIMIT):
        _sign_in("192.0.2.9", f"guess{index}", "wrong")
    locked = _sign_in("192.0.2.9", "viewer", DEFAULT_PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert not AuditEntry.objects.filter(action="auth.sign_in").exists()
    assert _sign_in("192.0.2.10", "viewer", DEFAULT_PASSWORD).status_code == 302
    entry = AuditEntry.objects.get(action="auth.locked_out")
    assert entry.ip_address == "192.0.2.9"


def test_it_shows_sign_in_events_to_the_account_and_its_team_admins(client, cast, settings):
    from sessions_app.audit.selectors import audit_entries_for_user
    from tests.factories import DEFAULT_PASSWORD

    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in("198.51.100.7", "member", "wrong")
    _sign_in("198.51.100.8", "approver", DEFAULT_PASSWORD)
    _sign_in("198.51.100.9", "outsider", "wrong")

    def seen_by(user):
        return set(
            audit_entries_for_user(user)
            .filter(action__startswith="auth.")
            .values_list("action", "actor_label")
        )

    # The team's admin watches its members' accounts; nobody sees another team's.
    assert seen_by(cast.admin) == {
        ("auth.sign_in_failed", "member"),
        ("auth.locked_out", "member"),
        ("auth.sign_in", "approver"),
    }
    assert seen_by(cast.member) == {
        ("auth.sign_in_failed", "member"),
        ("auth.locked_out", "member"),
    }
    assert seen_by(cast.approver) == {("auth.sign_in", "approver")}
    assert seen_by(cast.viewer) == set()
    assert seen_by(cast.outsider) == {("auth.sign_in_failed", "outsider")}
    client.force_login(cast.admin)
    html = _page(client, action="auth.locked_out")
    assert "Locked out" in html and "<td>member</td>" in html


def test_it_shows_the_newest_hundred_entries_of_a_session(client, cast):
    from django.urls import reverse

    from sessions_app.audit.chain import Target
    from tests.factories import ConnectionFactory, SessionFactory

    session = SessionFactory(connection=ConnectionFactory(team=cast.team))
    for index in range(105):
        audit.record(
            "sync.state_changed",
            actor_label="system",
            team=cast.team,
            target=Target("session", str(session.pk), "x"),
            details={"n": index},
        )
    client.force_login(cast.viewer)
    html = client.get(reverse("sessions_app:session-history", args=[session.pk])).content.decode()
    shown = [int(seq) for seq in re.findall(r'id="history-(\d+)"', html)]
    assert len(shown) == 100 and shown == sorted(shown, reverse=True)
    newest = AuditEntry.objects.filter(action="sync.state_changed").order_by("-seq").first()
    assert shown[0] == newest.seq


def test_it_shows_details_in_words_without_empty_keys(client, cast):
    from django.urls import reverse

    from sessions_app.audit.chain import Target
    from tests.factories import ConnectionFactory as Connections
    from tests.factories import SessionFactory

    session = SessionFactory(connection=Connections(team=cast.team), title="Rounding")
    target = Target.of_session(session)
    audit.record(
        "session.completed",
        team=cast.team,
        target=target,
        details={"from_state": "IN_PROGRESS", "to_state": "COMPLETED", "reason": "", "x": None},
    )
    audit.record(
        "member.role",
        actor=cast.admin,
        team=cast.team,
        target=Target.of_user(cast.viewer),
        details={"username": "viewer", "from": "viewer", "to": "approver", "note": []},
    )
    audit.record(
        "policy.change",
        actor=cast.admin,
        team=cast.team,
        details={"before": {"forbid_self_approval": False}, "after": {}},
    )
    audit.record("session.message", team=cast.team, target=target, details={"prompt": "FAILED"})
    client.force_login(cast.admin)
    for url in (
        reverse("sessions_app:audit"),
        reverse("sessions_app:session-history", args=[session.pk]),
    ):
        page = client.get(url).content.decode()
        assert "<dt>from</dt><dd>In progress</dd>" in page and "<dd>Completed</dd>" in page
        assert "IN_PROGRESS" not in page
        assert "<dt>reason</dt>" not in page and "<dt>x</dt>" not in page
        # What a person typed stays as typed.
        assert "<dd>FAILED</dd>" in page
    page = client.get(reverse("sessions_app:audit")).content.decode()
    assert "<dt>to</dt><dd>Approver</dd>" in page and "<dt>note</dt>" not in page
    assert "<dd>forbid self approval: no</dd>" in page and "<dt>after</dt>" not in page


def test_it_names_models_in_plural_in_the_admin():
    from django.apps import apps

    plurals = {
        m._meta.verbose_name_plural for m in apps.get_app_config("sessions_app").get_models()
    }
    assert "audit entries" in plurals and "activities" in plurals
    assert not any(name.endswith(("ys", "hs")) and not name.endswith("ays") for name in plurals)


def test_it_refuses_an_export_whose_filter_it_would_ignore(client, cast, history):
    from django.urls import reverse

    client.force_login(cast.viewer)
    for params in ({"team": "999"}, {"team": cast.other_team.pk}, {"session": "²"}):
        response = client.get(reverse("sessions_app:audit-export", args=["csv"]), params)
        assert response.status_code == 400
        text = response.content.decode()
        assert text.startswith("Nothing was exported.") and "Ignored the" in text
    # The page itself still shows the entries, and names the ignored filter.
    html = client.get(reverse("sessions_app:audit"), {"team": "999"}).content.decode()
    assert "Ignored the team filter (999): Select a valid choice." in html
