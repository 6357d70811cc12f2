"""Integration tests: real PostgreSQL, real Redis and a real Celery worker process."""

from __future__ import annotations

from functools import cache

import pytest

from tests.services import services_problem, skip_or_fail


@cache
def _problem() -> str | None:
    return services_problem()


@pytest.fixture(autouse=True)
def _require_services() -> None:
    skip_or_fail(_problem(), "REQUIRE_SERVICES", "Integration")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)
