"""The API's audit export, the events integrators poll, and a team's service tokens over
the API (docs/api.md, "Exports and events", "Service tokens over the API")."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.http import StreamingHttpResponse
from django.utils import timezone

from sessions_app.api.feeds import EVENTS_HOLD_BACK
from sessions_app.api.tokens import token_create
from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.audit.chain import Target
from sessions_app.models import ApiToken, AuditEntry, Event, EventKind, Membership, Scope
from tests.factories import ConnectionFactory, SessionFactory

pytestmark = pytest.mark.django_db
ALL = list(Scope.values)


def auth(user, scopes=ALL):
    _, raw = token_create(user=user, name="feed", scopes=scopes)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _body(response) -> str:
    # Streamed: the rows are written while the database iterator reads them.
    assert isinstance(response, StreamingHttpResponse) and response.streaming
    return response.getvalue().decode()


@pytest.fixture
def history(cast):
    session = SessionFactory(connection=ConnectionFactory(team=cast.team))
    evil = '=HYPERLINK("https://evil.example","x")'
    audit.record(
        AuditAction.SESSION_MESSAGE,
        actor=cast.member,
        team=cast.team,
        target=Target("session", str(session.pk), evil),
        details={"prompt": "-2+3"},
    )
    audit.record(AuditAction.MEMBER_ADD, actor=cast.admin, team=cast.team)
    audit.record(AuditAction.MEMBER_ADD, actor=cast.outsider, team=cast.other_team)
    return session


def test_the_audit_export_streams_jsonl_within_the_callers_teams(client, cast, history):
    headers = auth(cast.viewer)
    # The team's history, and the viewer's own token (no team), as on the audit page.
    mine = AuditEntry.objects.filter(team=cast.team) | AuditEntry.objects.filter(
        team=None, actor_id=cast.viewer.pk
    )
    response = client.get("/api/v1/audit/export", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in _body(response).splitlines()]
    assert [item["seq"] for item in lines] == [e.seq for e in mine.order_by("-seq")]
    assert {item["team"] for item in lines} == {"Acme", None}
    only = client.get("/api/v1/audit/export", {"action": "member.add"}, **auth(cast.outsider))
    [foreign] = [json.loads(line) for line in _body(only).splitlines()]
    assert foreign["team"] == "Globex" and foreign["person"] == "outsider"


def test_the_csv_export_keeps_formulas_from_running(client, cast, history):
    response = client.get(
        "/api/v1/audit/export",
        {"format": "csv", "action": "session.message"},
        **auth(cast.member),
    )
    assert response["Content-Type"].startswith("text/csv")
    header, row = list(csv.reader(io.StringIO(_body(response))))
    assert header[:3] == ["seq", "time", "person"]
    cells = dict(zip(header, row, strict=True))
    assert cells["target"].startswith("'=HYPERLINK(")
    assert json.loads(cells["details"]) == {"prompt": "-2+3"}
    assert cells["person"] == "member"


def test_the_audit_export_refuses_a_bad_filter_instead_of_exporting_more(client, cast, history):
    response = client.get("/api/v1/audit/export", {"team": cast.other_team.pk}, **auth(cast.admin))
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"team"}
    wrong = client.get("/api/v1/audit/export", {"format": "xlsx"}, **auth(cast.admin))
    assert wrong.status_code == 422


def _event(team, kind=EventKind.COMPLETED, age=dt.timedelta(minutes=1), **extra):
    number = Event.objects.count()
    return Event.objects.create(
        key=f"test:{number}",
        kind=kind,
        team=team,
        title=f"Event {number}",
        created_at=timezone.now() - age,
        **extra,
    )


def test_events_are_polled_after_a_cursor_within_the_callers_teams(client, cast):
    session = SessionFactory(connection=ConnectionFactory(team=cast.team))
    first = _event(cast.team, session=session)
    foreign = _event(cast.other_team)
    channel = _event(cast.team, kind=EventKind.ENDPOINT_DISABLED)
    third = _event(cast.team, kind=EventKind.PAUSED, session=session)
    viewer = auth(cast.viewer)
    page = client.get("/api/v1/events", {"limit": 1}, **viewer).json()
    assert [e["id"] for e in page["items"]] == [first.pk]
    [item] = page["items"]
    assert item["type"] == "session.completed" and item["version"] == 1
    assert item["data"]["team"]["slug"] == "acme"
    rest = client.get("/api/v1/events", {"after": page["next_after"]}, **viewer).json()
    # Channel events are the team admins' only.
    assert [e["id"] for e in rest["items"]] == [third.pk]
    admin = client.get("/api/v1/events", {"after": first.pk}, **auth(cast.admin)).json()
    assert [e["id"] for e in admin["items"]] == [channel.pk, third.pk]
    paused = client.get("/api/v1/events", {"kind": "session.paused"}, **viewer).json()
    assert [e["id"] for e in paused["items"]] == [third.pk]
    empty = client.get("/api/v1/events", {"after": third.pk}, **viewer).json()
    assert empty == {"items": [], "next_after": third.pk}
    theirs = client.get("/api/v1/events", **auth(cast.outsider)).json()["items"]
    assert [e["id"] for e in theirs] == [foreign.pk]
    bad = client.get("/api/v1/events", {"kind": "nope"}, **viewer)
    assert bad.status_code == 422 and "kind" in bad.json()["error"]["fields"]


def test_a_poller_never_skips_an_event_committed_after_a_newer_one(client, cast):
    old = _event(cast.team)
    # Given its id first, but young: its transaction may not have committed everywhere.
    young = _event(cast.team, age=dt.timedelta(seconds=1))
    later = _event(cast.team, age=EVENTS_HOLD_BACK * 3)
    headers = auth(cast.member)
    page = client.get("/api/v1/events", **headers).json()
    # `later` is old enough, but it comes after the young one: it waits too.
    assert [e["id"] for e in page["items"]] == [old.pk]
    Event.objects.filter(pk=young.pk).update(created_at=timezone.now() - EVENTS_HOLD_BACK * 2)
    page = client.get("/api/v1/events", {"after": page["next_after"]}, **headers).json()
    assert [e["id"] for e in page["items"]] == [young.pk, later.pk]


def test_a_team_admin_lists_and_revokes_service_tokens_with_the_admin_scope(client, cast):
    token, raw = token_create(
        user=cast.admin, name="deploy", scopes=["read"], team=cast.team, role="member"
    )
    token_create(user=cast.outsider, name="theirs", scopes=["read"], team=cast.other_team)
    headers = auth(cast.admin)
    listed = client.get(f"/api/v1/teams/{cast.team.slug}/tokens", **headers).json()
    assert [(t["name"], t["bot"], t["revoked_at"]) for t in listed] == [
        ("deploy", f"token:{token.prefix}:deploy", None)
    ]
    assert "digest" not in listed[0] and raw not in json.dumps(listed)
    url = f"/api/v1/teams/{cast.team.slug}/tokens/{token.pk}/revoke"
    revoked = client.post(url, **headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert not Membership.objects.filter(user=token.user).exists()
    assert AuditEntry.objects.filter(action="token.revoke", actor_id=cast.admin.pk).count() == 1
    # The bot's token no longer works.
    bot = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert client.get("/api/v1/teams", **bot).status_code == 401
    theirs = ApiToken.objects.get(name="theirs")
    other = f"/api/v1/teams/{cast.team.slug}/tokens/{theirs.pk}/revoke"
    assert client.post(other, **headers).status_code == 404
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None


def test_service_tokens_over_the_api_need_the_admin_scope_and_role(client, cast):
    url = f"/api/v1/teams/{cast.team.slug}/tokens"
    assert client.get(url, **auth(cast.admin, ["read"])).status_code == 403
    assert client.get(url, **auth(cast.approver)).status_code == 403
    assert client.get(url, **auth(cast.outsider)).status_code == 404
