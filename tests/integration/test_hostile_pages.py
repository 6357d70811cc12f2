"""The NUL and calendar-edge sweeps of tests/unit/test_properties_pages.py on PostgreSQL,
whose text refuses NUL and whose timestamps end where Python's dates do."""

from __future__ import annotations

import pytest

from tests.unit.test_properties_pages import (  # noqa: F401 (fixtures)
    NUL_VALUES,
    ZONES,
    ask,
    edges,
    signed_in,
    sweep,
    world,
)

pytestmark = pytest.mark.django_db


def test_it_never_answers_500_to_nul_on_postgresql(signed_in, world):  # noqa: F811
    assert sweep(signed_in, world, NUL_VALUES) > 100


@pytest.mark.parametrize("zone", ZONES)
def test_it_never_answers_500_at_the_calendar_edges_on_postgresql(
    signed_in,  # noqa: F811
    world,  # noqa: F811
    settings,
    zone,
):
    settings.TIME_ZONE = zone
    edges(signed_in)


def test_it_keeps_the_repository_search_working_after_a_nul_on_postgresql(
    signed_in,  # noqa: F811
    world,  # noqa: F811
):
    from django.urls import reverse

    url = reverse("sessions_app:session-launch")
    assert ask(signed_in, "GET", url, {"source_q": ["bill\x00"]}) == 200
    assert "billing" in signed_in.get(url, {"source_q": "bill"}).content.decode()
