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

from jules.client import JulesClient
from jules_simulator import start_simulator

KEY = "contract-key-a"
OTHER_KEY = "contract-key-b"
SEEDED = 130  # sessions seeded into the first account
SOURCES = 8  # repositories every simulated account has connected


class Sim:
    """The simulator as these tests use it: the interface agreed with its author
    (`base_url`, `admin_url`, `state.advance`) plus its documented admin API under
    `/_sim/` (faults, request counts, reset, accounts), so a change of its Python helpers
    touches only this class."""

    def __init__(self, running: Any) -> None:
        self.running = running
        self.base_url: str = running.base_url
        self.admin_url: str = running.admin_url

    def advance(self, seconds: float) -> None:
        self.running.state.advance(seconds)

    def add_fault(self, spec: str) -> None:
        """A fault rule, `key=value` pairs as in the simulator's fault grammar."""
        rule = dict(part.split("=", 1) for part in spec.split(","))
        admin(self, "POST", "/faults", rule)

    def counts(self) -> dict[str, int]:
        """Requests served per operation (`sessions.create`, `fault.status`, ...)."""
        return dict(admin(self, "GET", "/requests")["counts"])

    def reset(self) -> None:
        admin(self, "POST", "/reset")

    def revoke(self, key: str) -> None:
        admin(self, "POST", "/accounts", {"keys": [key], "revoke": True})

    def add_account(self, account_id: str, key: str, **caps: Any) -> None:
        """Another account, e.g. with `daily_cap=N` (docs/jules-api.md#quotas-and-rate-limits)."""
        admin(self, "POST", "/accounts", {"id": account_id, "keys": [key], **caps})


@pytest.fixture(scope="session")
def shared_sim() -> Iterator[Sim]:
    running = start_simulator(
        api_keys=[KEY, OTHER_KEY],
        manual_clock=True,
        seed=3,
        seed_sessions=SEEDED,
        activities_per_session=8,
    )
    try:
        yield Sim(running)
    finally:
        running.stop()


@pytest.fixture
def sim(shared_sim: Sim) -> Sim:
    """A fresh world for each test: the admin reset re-seeds it and clears every fault.

    One server for the whole run, because stopping one costs half a second of polling.
    """
    shared_sim.reset()
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
def make_client(sim: Sim, waits: Waits) -> Callable[..., JulesClient]:
    def make(key: str = KEY, **overrides: Any) -> JulesClient:
        options: dict[str, Any] = {"sleep": waits, "retry_budget": 30.0}
        options.update(overrides)
        return JulesClient(key, sim.base_url, **options)

    return make


@pytest.fixture
def client(make_client: Callable[..., JulesClient]) -> JulesClient:
    return make_client()


def admin(sim: Sim, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the simulator's test-only admin API (never used by the production client)."""
    data = json.dumps(body or {}).encode() if method != "GET" else None
    request = urllib.request.Request(f"{sim.admin_url}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def wait_for_count(sim: Sim, operation: str, expected: int, timeout: float = 5.0) -> int:
    """The simulator's count of an operation once it reaches `expected` (or the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        count = sim.counts().get(operation, 0)
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.02)
