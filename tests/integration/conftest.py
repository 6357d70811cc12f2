"""Integration tests: real PostgreSQL, real Redis and a real Celery worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

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


# --- a real Celery worker process -----------------------------------------------------


ROOT = Path(__file__).resolve().parents[2]


def _database_url_for_test_db() -> str:
    """The URL of the database pytest-django created, for the worker process to share."""
    from django.db import connection

    db = connection.settings_dict
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class WorkerPool:
    """Real `celery worker` processes sharing the test database and the real Redis."""

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.extra_env = extra_env or {}

    def start(
        self, name: str = "w1", queues: str = "sync,actions", concurrency: int = 2
    ) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url_for_test_db(),
            "CELERY_TASK_ALWAYS_EAGER": "0",
            # The simulators of the tests listen on ephemeral loopback ports.
            "JULES_ALLOWED_BASE_URLS": "http://127.0.0.1:*/v1alpha",
            **self.extra_env,
        }
        log = open(ROOT / "test-artifacts" / f"worker-{name}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "julesweb",
                "worker",
                "-Q",
                queues,
                "-c",
                str(concurrency),
                "-n",
                f"{name}@%h",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        self._wait_ready(f"{name}@")
        return process

    def _wait_ready(self, prefix: str, timeout: float = 60.0) -> None:
        from julesweb.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            replies = app.control.ping(timeout=1.0) or []
            if any(next(iter(r)).startswith(prefix) for r in replies):
                return
        raise AssertionError(f"worker {prefix} did not start; see test-artifacts/worker-*.log")

    def kill(self, process: subprocess.Popen[bytes], signum: int) -> None:
        os.killpg(process.pid, signum)
        process.wait(timeout=30)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def workers(transactional_db: Any) -> Iterator[WorkerPool]:
    from julesweb.celery import app

    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    app.control.purge()
    pool = WorkerPool()
    try:
        yield pool
    finally:
        pool.stop()
        app.control.purge()
        app.conf.task_always_eager = previous


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


# --- the outbox drills (test_drills_*.py) ---------------------------------------------


def align_simulator_clock(sim: Any) -> None:
    """Move a manual-clock simulator to the real time, so that Jules' timestamps and the
    portal's agree as they do live (matching an ambiguous launch or message compares them)."""
    now = sim.state.now_us() / 1_000_000
    sim.advance(max(0.0, time.time() - now))


def drive_outbox(timeout: float, interval: float = 1.0) -> list[Any]:
    """Play beat's part: run the outbox sweep every `interval` seconds until no action is
    open (pending or sending), and return the actions. Fails after `timeout` seconds with
    the open ones and their last errors."""
    from sessions_app.models import OutboxAction
    from sessions_app.outbox import delivery as actions

    deadline = time.monotonic() + timeout
    while True:
        open_actions = list(
            OutboxAction.objects.filter(status__in=["pending", "sending"]).values_list(
                "kind", "status", "attempts", "last_error"
            )
        )
        if not open_actions:
            return list(OutboxAction.objects.order_by("created_at"))
        if time.monotonic() > deadline:
            raise AssertionError(f"actions still open after {timeout}s: {open_actions}")
        actions.sweep()
        time.sleep(interval)
