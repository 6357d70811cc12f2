"""Simulators on ephemeral loopback ports with manual clocks; none of these tests needs a DB."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jules_simulator import start_simulator


@pytest.fixture
def sim() -> Iterator[Any]:
    """Two accounts (keys `k` and `other`); `k` has 60 seeded sessions of 6 activities."""
    with start_simulator(
        api_keys=["k", "other"],
        manual_clock=True,
        seed=9,
        seed_sessions=60,
        activities_per_session=6,
    ) as simulator:
        yield simulator


@pytest.fixture
def empty_sim() -> Iterator[Any]:
    """One account `k` with nothing seeded."""
    with start_simulator(api_keys=["k", "other"], manual_clock=True, seed=1) as simulator:
        yield simulator
