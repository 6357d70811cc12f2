"""The API's permission matrix: every operation, every role and an outsider, with tokens.

Team roles bind a token exactly as they bind its owner on the pages; the outsider gets 404
for the team's objects; a token without the scope gets 403.
"""

from __future__ import annotations

import pytest

from sessions_app.api.tokens import token_create
from sessions_app.models import ActivityKind, ApiToken, OutboxAction, Scope
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory

pytestmark = pytest.mark.django_db

ROLES = ("admin", "approver", "member", "viewer", "outsider")
ALL = list(Scope.values)


@pytest.fixture
def world(cast):
    connection = ConnectionFactory(team=cast.team, label="Team account")
    waiting = SessionFactory(
        connection=connection, state="AWAITING_PLAN_APPROVAL", launched_by=cast.member
    )
    ActivityFactory(session=waiting, kind=ActivityKind.PLAN_GENERATED, plan_id="a" * 32)
    own = SessionFactory(
        connection=connection, state="AWAITING_USER_FEEDBACK", launched_by=cast.member
    )
    return {"connection": connection, "waiting": waiting, "own": own}


def bearer(user, scopes=ALL):
    _, raw = token_create(user=user, name="test", scopes=scopes)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _reads(cast, world):
    """name -> (url, status for a team role, status for the outsider)."""
    waiting = world["waiting"].pk
    return {
        "session-list": ("/api/v1/sessions", 200, 200),
        "session-detail": (f"/api/v1/sessions/{waiting}", 200, 404),
        "session-activities": (f"/api/v1/sessions/{waiting}/activities", 200, 404),
        "approvals": ("/api/v1/approvals", 200, 200),
        "teams": ("/api/v1/teams", 200, 200),
        "members": (f"/api/v1/teams/{cast.team.slug}/members", 200, 404),
        "audit": ("/api/v1/audit", 200, 200),
        "audit-export": ("/api/v1/audit/export?format=csv", 200, 200),
        "events": ("/api/v1/events", 200, 200),
    }


# A team's service tokens over the API: its admins only (the outsider gets 404).
TOKEN_ADMIN = {"admin": 200, "approver": 403, "member": 403, "viewer": 403, "outsider": 404}


def _service_token(cast):
    token, _ = token_create(
        user=cast.admin, name="deploy", scopes=["read"], team=cast.team, role="member"
    )
    return token


# What each role gets for each write (the outsider always gets 404).
WRITES = {
    "launch": {"admin": 202, "approver": 202, "member": 202, "viewer": 403},
    "approve": {"admin": 202, "approver": 202, "member": 403, "viewer": 403},
    "message": {"admin": 202, "approver": 202, "member": 202, "viewer": 403},
    # The sessions were launched by the member: an approver may not archive them.
    "archive": {"admin": 202, "approver": 403, "member": 202, "viewer": 403},
    "unarchive": {"admin": 202, "approver": 403, "member": 202, "viewer": 403},
}


def _writes(world):
    waiting, own = world["waiting"].pk, world["own"].pk
    return {
        "launch": ("/api/v1/sessions", {"connection": world["connection"].pk, "prompt": "Go"}),
        "approve": (f"/api/v1/sessions/{waiting}/approve", None),
        "message": (f"/api/v1/sessions/{own}/messages", {"prompt": "And the tests"}),
        "archive": (f"/api/v1/sessions/{own}/archive", None),
        "unarchive": (f"/api/v1/sessions/{own}/unarchive", None),
    }


def test_the_matrix_names_every_operation(cast, world):
    from sessions_app.api.views import api

    paths = {
        (method, path)
        for path, item in api.get_openapi_schema()["paths"].items()
        for method in item
    }
    # Every operation but the action status (whose rule is "your own", tested below).
    assert len(paths) == len(_reads(cast, world)) + len(WRITES) + 2 + 1


@pytest.mark.parametrize("role", ROLES)
def test_it_lets_each_role_read_what_it_may(client, cast, world, role):
    headers = bearer(cast.by_role()[role])
    for name, (url, ok, outsider) in _reads(cast, world).items():
        response = client.get(url, **headers)
        assert response.status_code == (outsider if role == "outsider" else ok), (name, role)
    listed = client.get("/api/v1/sessions", **headers).json()["items"]
    assert len(listed) == (0 if role == "outsider" else 2)
    waiting = client.get("/api/v1/approvals", **headers).json()["items"]
    assert len(waiting) == (1 if role in {"admin", "approver"} else 0)


@pytest.mark.parametrize("role", ROLES)
def test_only_team_admins_list_and_revoke_service_tokens(client, cast, role):
    token = _service_token(cast)
    headers = bearer(cast.by_role()[role])
    listed = client.get(f"/api/v1/teams/{cast.team.slug}/tokens", **headers)
    assert listed.status_code == TOKEN_ADMIN[role]
    url = f"/api/v1/teams/{cast.team.slug}/tokens/{token.pk}/revoke"
    revoked = client.post(url, **headers)
    assert revoked.status_code == TOKEN_ADMIN[role]
    token.refresh_from_db()
    assert (token.revoked_at is not None) is (role == "admin")


@pytest.mark.parametrize("role", ROLES)
def test_it_lets_each_role_write_what_it_may(client, cast, world, role):
    headers = bearer(cast.by_role()[role])
    for name, (url, body) in _writes(world).items():
        response = client.post(url, body or {}, content_type="application/json", **headers)
        expected = 404 if role == "outsider" else WRITES[name][role]
        assert response.status_code == expected, (name, role, response.content)
        body = response.json()
        assert ("error" in body) is (expected >= 400) and ("id" in body) is (expected < 400)
    allowed = 0 if role == "outsider" else sum(WRITES[n][role] == 202 for n in WRITES)
    assert OutboxAction.objects.count() == allowed


@pytest.mark.parametrize("scope", ALL)
def test_it_refuses_a_token_without_the_scope(client, cast, world, scope):
    headers = bearer(cast.admin, scopes=[s for s in ALL if s != scope])
    needs = {
        "read": [("get", "/api/v1/sessions")],
        "launch": [("post", _writes(world)["launch"][0]), ("post", _writes(world)["archive"][0])],
        "approve": [("post", _writes(world)["approve"][0])],
        "message": [("post", _writes(world)["message"][0])],
        "admin": [
            ("get", f"/api/v1/teams/{cast.team.slug}/tokens"),
            ("post", f"/api/v1/teams/{cast.team.slug}/tokens/{_service_token(cast).pk}/revoke"),
        ],
    }
    for method, url in needs[scope]:
        body = _writes(world)["launch"][1] if url == "/api/v1/sessions" else {"prompt": "x"}
        if method == "get":
            response = client.get(url, **headers)
        else:
            response = client.post(url, body, content_type="application/json", **headers)
        assert response.status_code == 403, (scope, url)
        assert response.json()["error"]["code"] == "forbidden"
    assert not OutboxAction.objects.exists()
    assert not ApiToken.objects.filter(revoked_at__isnull=False).exists()


def test_it_hides_other_teams_sessions_and_actions(client, cast, world):
    foreign = SessionFactory(connection=ConnectionFactory(team=cast.other_team))
    headers = bearer(cast.admin)
    assert client.get(f"/api/v1/sessions/{foreign.pk}", **headers).status_code == 404
    body = client.post(f"/api/v1/sessions/{foreign.pk}/archive", **headers).json()
    assert body == {"error": {"code": "not_found", "message": "No such object.", "fields": {}}}
    mine = client.post(_writes(world)["approve"][0], **headers).json()["id"]
    assert client.get(f"/api/v1/actions/{mine}", **headers).status_code == 200
    assert client.get(f"/api/v1/actions/{mine}", **bearer(cast.approver)).status_code == 404
