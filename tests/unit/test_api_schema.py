"""Schemathesis against the schema the portal serves: generated and hostile inputs for
every operation, as a signed-in team admin with a token of every scope. No answer is a
500, and every answer (status, content type, body) is one the schema declares.

Bounded (few examples, derandomised) so that it runs within the unit group's time.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sessions_app.api.tokens import token_create
from sessions_app.models import Scope
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
