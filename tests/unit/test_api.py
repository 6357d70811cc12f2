"""The API's behaviour: tokens, the bot identity of service tokens, idempotent retries, the
rate limit, the browser session with CSRF, cursor pagination and the error shape."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from sessions_app.api.tokens import digest, token_create, token_revoke
from sessions_app.models import ActivityKind, ApiToken, AuditEntry, OutboxAction, Scope
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory

pytestmark = pytest.mark.django_db
ALL = list(Scope.values)


def auth(raw):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def waiting(cast):
    connection = ConnectionFactory(team=cast.team)
    session = SessionFactory(
        connection=connection, state="AWAITING_PLAN_APPROVAL", launched_by=cast.approver
    )
    ActivityFactory(session=session, kind=ActivityKind.PLAN_GENERATED, plan_id="p" * 32)
    return session


def test_it_stores_only_the_digest_and_shows_the_secret_once(cast):
    token, raw = token_create(user=cast.member, name="ci", scopes=["read"])
    stored = ApiToken.objects.get(pk=token.pk)
    assert raw.startswith("jpt_") and raw not in repr(stored.__dict__)
    assert stored.digest == digest(raw)
    entry = AuditEntry.objects.get(action="token.create")
    assert entry.actor_id == cast.member.pk and raw not in str(entry.details)


def test_it_answers_401_to_a_revoked_expired_or_unknown_token(client, cast):
    token, raw = token_create(user=cast.member, name="ci", scopes=["read"])
    assert client.get("/api/v1/teams", **auth(raw)).status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None
    token_revoke(user=cast.member, token=token)
    response = client.get("/api/v1/teams", **auth(raw))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert AuditEntry.objects.filter(action="token.revoke").count() == 1
    old, raw_old = token_create(
        user=cast.member, name="old", scopes=["read"], expires_at=timezone.now() + dt.timedelta(1)
    )
    ApiToken.objects.filter(pk=old.pk).update(expires_at=timezone.now())
    assert client.get("/api/v1/teams", **auth(raw_old)).status_code == 401
    assert client.get("/api/v1/teams", **auth("jpt_nothing_here")).status_code == 401


def test_a_service_token_acts_as_its_bot_and_the_audit_names_it(client, cast, waiting):
    token, raw = token_create(
        user=cast.admin, name="release-bot", scopes=ALL, team=cast.team, role="approver"
    )
    response = client.post(f"/api/v1/sessions/{waiting.pk}/approve", **auth(raw))
    assert response.status_code == 202
    entry = AuditEntry.objects.get(action="session.approve")
    assert entry.actor_id == token.user_id and entry.team_id == cast.team.pk
    assert entry.actor_label.startswith(f"token:{token.prefix}:release-bot")
    assert not token.user.is_active and not token.user.has_usable_password()
    members = client.get(f"/api/v1/teams/{cast.team.slug}/members", **auth(raw)).json()
    assert [m["service_token"] for m in members if m["username"] == entry.actor_label] == [True]
    token_revoke(user=cast.admin, token=token)
    assert not token.user.memberships.exists()


def test_only_team_admins_make_service_tokens(cast):
    from sessions_app.access import ActionNotAllowed

    with pytest.raises(ActionNotAllowed):
        token_create(user=cast.member, name="x", scopes=["read"], team=cast.team)
    assert not ApiToken.objects.exists()


def test_the_team_policy_binds_a_tokens_owner(client, cast, waiting):
    cast.team.forbid_self_approval = True
    cast.team.save()
    _, raw = token_create(user=cast.approver, name="mine", scopes=ALL)
    response = client.post(f"/api/v1/sessions/{waiting.pk}/approve", **auth(raw))
    assert response.status_code == 403
    assert "policy" in response.json()["error"]["message"]
    assert not OutboxAction.objects.exists()


def test_a_state_conflict_is_409(client, cast, waiting):
    busy = SessionFactory(connection=waiting.connection, state="IN_PROGRESS")
    _, raw = token_create(user=cast.admin, name="mine", scopes=ALL)
    response = client.post(f"/api/v1/sessions/{busy.pk}/approve", **auth(raw))
    assert response.status_code == 409
    assert "not waiting" in response.json()["error"]["message"]
    assert response.json()["error"]["code"] == "conflict"


def test_an_idempotency_key_returns_the_first_answer(client, cast):
    connection = ConnectionFactory(team=cast.team)
    _, raw = token_create(user=cast.member, name="ci", scopes=ALL)
    body = {"connection": connection.pk, "prompt": "Fix the build"}
    headers = {**auth(raw), "HTTP_IDEMPOTENCY_KEY": "build-42"}
    first = client.post("/api/v1/sessions", body, content_type="application/json", **headers)
    again = client.post("/api/v1/sessions", body, content_type="application/json", **headers)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert OutboxAction.objects.count() == 1
    assert AuditEntry.objects.filter(action="session.launch").count() == 1
    other = client.post("/api/v1/sessions", body, content_type="application/json", **auth(raw))
    assert other.status_code == 202 and OutboxAction.objects.count() == 2


def test_it_rate_limits_each_token_with_retry_after(client, cast, settings):
    settings.API_RATE_LIMIT = 3
    cache.clear()
    _, raw = token_create(user=cast.member, name="ci", scopes=["read"])
    _, other = token_create(user=cast.member, name="other", scopes=["read"])
    codes = [client.get("/api/v1/teams", **auth(raw)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.get("/api/v1/teams", **auth(raw))
    assert 1 <= int(limited["Retry-After"]) <= 61
    assert limited.json()["error"]["code"] == "rate_limited"
    assert client.get("/api/v1/teams", **auth(other)).status_code == 200


def test_the_browser_session_needs_the_csrf_token_to_write(cast, waiting):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(cast.admin)
    assert browser.get("/api/v1/teams").status_code == 200
    url = f"/api/v1/sessions/{waiting.pk}/approve"
    assert browser.post(url).status_code == 403
    assert not OutboxAction.objects.exists()
    browser.get("/sessions/")
    csrf = browser.cookies["csrftoken"].value
    assert browser.post(url, HTTP_X_CSRFTOKEN=csrf).status_code == 202


def _every_session(client, raw):
    """The ids of the sessions list, page after page of two, by cursor."""
    seen, cursor = [], ""
    while True:
        page = client.get("/api/v1/sessions", {"limit": 2, "cursor": cursor}, **auth(raw)).json()
        seen += [item["id"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            return seen


def test_the_sessions_list_pages_by_cursor_with_the_list_filters(client, cast):
    connection = ConnectionFactory(team=cast.team)
    start = timezone.now()
    made = [
        SessionFactory(connection=connection, state="COMPLETED", create_time=start)
        for _ in range(3)
    ] + [
        SessionFactory(
            connection=connection, state="FAILED", create_time=start - dt.timedelta(hours=i)
        )
        for i in range(1, 4)
    ]
    _, raw = token_create(user=cast.viewer, name="ci", scopes=["read"])
    seen = _every_session(client, raw)
    expected = sorted(made, key=lambda s: (s.create_time, s.pk), reverse=True)
    assert seen == [s.pk for s in expected]
    failed = client.get("/api/v1/sessions", {"state": "FAILED"}, **auth(raw)).json()["items"]
    assert {item["state"] for item in failed} == {"FAILED"} and len(failed) == 3


def test_bad_input_answers_422_with_fields(client, cast):
    _, raw = token_create(user=cast.viewer, name="ci", scopes=["read"])
    for query, field in (
        ({"state": "NOPE"}, "state"),
        ({"cursor": "%%%"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"created_after": "2026-13-01"}, "created_after"),
    ):
        response = client.get("/api/v1/sessions", query, **auth(raw))
        assert response.status_code == 422, query
        assert field in response.json()["error"]["fields"], (query, response.json())


def test_activities_come_incrementally(client, cast, waiting):
    later = ActivityFactory(session=waiting, kind=ActivityKind.PROGRESS_UPDATED)
    _, raw = token_create(user=cast.viewer, name="ci", scopes=["read"])
    url = f"/api/v1/sessions/{waiting.pk}/activities"
    every = client.get(url, **auth(raw)).json()["items"]
    assert len(every) == 2 and every[-1]["id"] == later.pk
    newer = client.get(url, {"after": every[0]["id"]}, **auth(raw)).json()["items"]
    assert [a["id"] for a in newer] == [later.pk]
    assert client.get(url, {"after": later.pk}, **auth(raw)).json()["items"] == []


def test_the_schema_is_openapi_31_and_the_docs_use_no_cdn(client):
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.1")
    docs = client.get("/api/v1/docs")
    html = docs.content.decode()
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "//unpkg" not in html


def test_the_token_pages_show_the_secret_once_and_revoke(client, cast):
    client.force_login(cast.member)
    page = client.post("/tokens/new", {"name": "laptop", "scopes": ["read", "launch"]})
    assert page.status_code == 200
    token = ApiToken.objects.get()
    raw = page.context["secret"]
    assert raw in page.content.decode() and token.digest == digest(raw)
    assert raw not in client.get("/tokens/").content.decode()
    assert client.get("/api/v1/teams", **auth(raw)).status_code == 200
    client.force_login(cast.admin)
    assert client.post(f"/tokens/{token.pk}/revoke").status_code == 404
    client.force_login(cast.member)
    assert client.post(f"/tokens/{token.pk}/revoke").status_code == 302
    assert client.get("/api/v1/teams", **auth(raw)).status_code == 401
    assert list(AuditEntry.objects.filter(action__startswith="token.").values_list("action")) == [
        ("token.revoke",),
        ("token.create",),
    ]


@pytest.mark.parametrize("role", ["admin", "approver", "member", "viewer", "outsider"])
def test_only_team_admins_make_and_revoke_service_tokens(client, cast, role):
    service, _ = token_create(user=cast.admin, name="ci", scopes=["read"], team=cast.team)
    client.force_login(cast.by_role()[role])
    made = client.post(
        f"/teams/{cast.team.slug}/tokens/new", {"name": "bot", "scopes": ["read"], "role": "member"}
    )
    revoked = client.post(f"/tokens/{service.pk}/revoke")
    expected = {"admin": (200, 302), "outsider": (404, 404)}.get(role, (403, 403))
    assert (made.status_code, revoked.status_code) == expected
    assert ApiToken.objects.filter(name="bot").exists() is (role == "admin")
    assert ApiToken.objects.get(pk=service.pk).is_live() is (role != "admin")


def test_the_sessions_list_costs_the_same_queries_on_every_page(client, cast):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    conn = ConnectionFactory(team=cast.team)
    start = timezone.now()
    for i in range(30):
        SessionFactory(connection=conn, create_time=start - dt.timedelta(minutes=i))
    _, raw = token_create(user=cast.viewer, name="ci", scopes=["read"])
    client.get("/api/v1/teams", **auth(raw))  # "Last used" is written once, here.
    counts, cursor = [], ""
    while True:
        with CaptureQueriesContext(db) as queries:
            page = client.get("/api/v1/sessions", {"limit": 5, "cursor": cursor}, **auth(raw))
        counts.append(len(queries))
        if not (cursor := page.json()["next_cursor"]):
            break
    assert len(counts) == 6 and len(set(counts)) == 1 and counts[0] <= 5, counts


def test_the_sessions_list_puts_sessions_without_a_creation_time_first(client, cast):
    connection = ConnectionFactory(team=cast.team)
    start = timezone.now()
    dated = [
        SessionFactory(connection=connection, create_time=start - dt.timedelta(minutes=i))
        for i in range(3)
    ]
    undated = [SessionFactory(connection=connection, create_time=None) for _ in range(3)]
    _, raw = token_create(user=cast.viewer, name="ci", scopes=["read"])
    seen = _every_session(client, raw)
    # The index's order on PostgreSQL (descending, nulls first), on every database.
    assert seen == [s.pk for s in reversed(undated)] + [s.pk for s in dated]
