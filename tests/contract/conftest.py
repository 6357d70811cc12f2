"""The simulator on loopback with a manual clock, and clients of its two accounts.

Contract tests speak real HTTP to the simulator through the production client, so a
drift on either side of the protocol shows here. They need no database.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sessions_app.jules.client import JulesClient
from sessions_app.jules.simulator import start_simulator

KEY = "contract-key-a"
OTHER_KEY = "contract-key-b"
SEEDED = 130  # sessions seeded into the first account
SOURCES = 8  # repositories every simulated account has connected


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[Any]:
    simulator = start_simulator(
        api_keys=[KEY, OTHER_KEY],
        manual_clock=True,
        seed=3,
        seed_sessions=SEEDED,
        activities_per_session=8,
    )
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def sim(shared_sim: Any) -> Any:
    """A fresh world for each test: the admin reset re-seeds it and clears every fault.

    One server for the whole run, because stopping one costs half a second of polling.
    """
    admin(shared_sim, "POST", "/reset")
    return shared_sim


class Waits:
    """Recorded instead of slept, so retry tests take no wall time."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def make_client(sim: Any, waits: Waits) -> Callable[..., JulesClient]:
    def make(key: str = KEY, **overrides: Any) -> JulesClient:
        options: dict[str, Any] = {"sleep": waits, "retry_budget": 30.0}
        options.update(overrides)
        return JulesClient(key, sim.base_url, **options)

    return make


@pytest.fixture
def client(make_client: Callable[..., JulesClient]) -> JulesClient:
    return make_client()


def admin(sim: Any, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the simulator's test-only admin API (never used by the production client)."""
    data = json.dumps(body or {}).encode() if method != "GET" else None
    request = urllib.request.Request(f"{sim.admin_url}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def wait_for_count(sim: Any, operation: str, expected: int, timeout: float = 5.0) -> int:
    """The simulator's count of an operation once it reaches `expected` (or the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        count = sim.request_counts().get(operation, 0)
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.02)
