"""Schemathesis against the schema the portal serves: generated and hostile inputs for
every operation, as a signed-in team admin with a token of every scope. No answer is a
500, and every answer (status, content type, body) is one the schema declares.

Bounded (few examples, derandomised) so that it runs within the unit group's time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sessions_app.api.tokens import token_create
from sessions_app.models import Event, EventKind, Scope
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def token(cast, settings):
    settings.API_RATE_LIMIT = 0
    connection = ConnectionFactory(team=cast.team)
    session = SessionFactory(connection=connection, state="AWAITING_PLAN_APPROVAL")
    ActivityFactory(session=session, kind="planGenerated", plan_id="a" * 32)
    _, raw = token_create(user=cast.admin, name="fuzz", scopes=list(Scope.values))
    return raw


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=5,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_its_schema_says(case, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)


@pytest.mark.django_db
def test_the_exports_events_and_token_operations_answer_as_declared_on_real_objects(cast, token):
    """Generated inputs rarely name a real team or token: these cases do, so that the
    successful answers of the newer operations are checked against the schema too."""
    bot, _ = token_create(
        user=cast.admin, name="deploy", scopes=["read"], team=cast.team, role="member"
    )
    Event.objects.create(
        key="schema:1",
        kind=EventKind.COMPLETED,
        team=cast.team,
        title="Done",
        created_at=timezone.now() - dt.timedelta(minutes=5),
    )
    tokens = "/api/v1/teams/{slug}/tokens"
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("/api/v1/audit/export", "GET", {"query": {"format": "csv"}}),
        ("/api/v1/audit/export", "GET", {"query": {"format": "jsonl", "action": "token.*"}}),
        ("/api/v1/events", "GET", {"query": {"after": 0, "kind": ["session.completed"]}}),
        (tokens, "GET", {"path_parameters": {"slug": "acme"}}),
        (
            tokens + "/{token_id}/revoke",
            "POST",
            {"path_parameters": {"slug": "acme", "token_id": str(bot.pk)}},
        ),
    ]
    for path, method, given in cases:
        case = schema[path][method].Case(**given)
        response = case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"}, checks=CHECKS
        )
        assert response.status_code == 200, (path, response.text[:300])
        assert response.text.strip(), path
