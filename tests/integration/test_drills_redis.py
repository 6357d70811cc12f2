"""Redis drill: the broker stops and comes back while people use the portal.

The drill runs its own `redis-server` on a free port (never the shared one), points the
portal's Celery app and a real worker at it, kills it with SIGKILL, uses the pages and
acts while it is down, restarts it empty (no persistence, as after a crash), and checks
that the outbox sweep delivers every action accepted meanwhile, once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from jules.client import JulesClient
from jules_simulator import start_simulator
from sessions_app import sync
from sessions_app.models import OutboxAction, Session
from tests.factories import ConnectionFactory, MembershipFactory, TeamFactory, UserFactory
from tests.integration.conftest import ROOT, align_simulator_clock, drive_outbox, wait_for
from tests.services import redis_server_problem, skip_or_fail

KEY = "redis-drill-key"
# A publish to a dead broker gives up after its retries (julesweb/celery.py); a request
# that enqueues must answer well within this.
MAX_REQUEST_SECONDS = 5.0
# A Redis that hangs (its process stopped: connections open, no answers) costs each
# request the socket timeouts (settings): about 6 s for a publish, 2 s per cache call.
MAX_HUNG_REQUEST_SECONDS = 15.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OwnRedis:
    """A throwaway redis-server on loopback, which this drill may kill and restart."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(ROOT / "test-artifacts" / "redis-drill.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_for(lambda: _pings(client), 15, 0.1)

    def pause(self, paused: bool) -> None:
        """Freeze (SIGSTOP) or thaw (SIGCONT) the server: the hung-broker case."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP if paused else signal.SIGCONT)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _use_broker(url: str) -> None:
    """Point this process's Celery app at `url`, dropping pooled connections to the old."""
    from julesweb.celery import app

    app.conf["broker_url"] = url
    # Not closed: kombu keeps one pool per address, and the shared broker's is used again.
    celery: Any = app
    celery._pool = None
    celery.amqp._producer_pool = None


@pytest.fixture
def own_redis(workers) -> Iterator[OwnRedis]:
    skip_or_fail(redis_server_problem(), "REQUIRE_SERVICES", "The Redis drill")
    from julesweb.celery import app

    previous = app.conf.broker_url
    server = OwnRedis()
    server.start()
    _use_broker(server.url)
    try:
        # The portal's cache goes to the drill's Redis too, so that a page relying on it
        # would show here.
        cache = {
            **settings.CACHES,
            "default": {**settings.CACHES["default"], "LOCATION": server.url},
        }
        with override_settings(CACHES=cache):
            yield server
    finally:
        # Workers first (they use this Redis), then the server; the shared broker last, so
        # that the `workers` fixture's purge goes to the shared one as before.
        workers.stop()
        server.kill()
        _use_broker(previous)


def _stage(sim: Any) -> dict[str, Any]:
    team = TeamFactory(slug="redis-drill")
    admin = UserFactory(username="redis-admin")
    MembershipFactory(team=team, user=admin, role="admin")
    connection: Any = ConnectionFactory(team=team, base_url=sim.base_url, api_key=KEY)
    client = JulesClient(KEY, sim.base_url)
    ids = [
        client.create_session(
            prompt=f"[sim:plan_approval] redis drill {i}",
            source="sources/github/acme/billing",
            starting_branch="main",
            require_plan_approval=True,
        ).id
        for i in range(5)
    ]
    sim.advance(90)
    align_simulator_clock(sim)
    sync.sync_connection(connection.pk, full=True)
    sessions = [Session.objects.get(remote_id=i) for i in ids]
    assert {s.state for s in sessions} == {"AWAITING_PLAN_APPROVAL"}
    return {"admin": admin, "connection": connection, "sessions": sessions}


def _counts(sim: Any) -> Counter[str]:
    return Counter(sim.request_counts())


def _timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_pages_serve_and_actions_wait_while_redis_is_down(own_redis, workers, client):
    sim = start_simulator(api_keys=[KEY], manual_clock=True, seed=13)
    try:
        stage = _stage(sim)
        workers.extra_env = {"REDIS_URL": own_redis.url, "OUTBOX_BACKOFF_SECONDS": "1"}
        workers.start("r1", queues="actions")
        admin, sessions = stage["admin"], stage["sessions"]
        client.force_login(admin)
        detail = [reverse("sessions_app:session-detail", args=[s.pk]) for s in sessions]
        listing = reverse("sessions_app:session-list")

        # With Redis up: an archive goes through at once.
        response = client.post(reverse("sessions_app:session-archive", args=[sessions[0].pk]))
        assert response.status_code == 302
        wait_for(lambda: OutboxAction.objects.filter(status="done").count() == 1, 30)
        before = _counts(sim)

        # Redis hangs: pages still answer, an action is accepted, both within seconds.
        own_redis.pause(True)
        try:
            response, seconds = _timed(lambda: client.get(listing))
            assert response.status_code == 200 and seconds < MAX_HUNG_REQUEST_SECONDS, seconds
            url = reverse("sessions_app:session-archive", args=[sessions[4].pk])
            response, hung = _timed(lambda: client.post(url))
            assert response.status_code == 302 and hung < MAX_HUNG_REQUEST_SECONDS, hung
            assert OutboxAction.objects.get(session=sessions[4]).status == "pending"
        finally:
            own_redis.pause(False)
        # Once Redis answers again the action goes through, once: the publish that timed
        # out may still land after the thaw (even twice), and the claim makes that harmless.
        drive_outbox(timeout=60)
        thawed = _counts(sim)
        assert thawed["sessions.archive"] - before["sessions.archive"] == 1
        assert sim.state.session(sessions[4].remote_id).archived is True
        before = thawed

        own_redis.kill()
        # Pages keep serving what the database holds.
        for url in (listing, *detail):
            response, seconds = _timed(lambda url=url: client.get(url))
            assert response.status_code == 200, url
            assert seconds < MAX_REQUEST_SECONDS
        assert sessions[1].display_title in client.get(listing).content.decode()
        # Actions are accepted, quickly, and wait as pending.
        posts = [
            (reverse("sessions_app:session-approve", args=[sessions[1].pk]), {}),
            (
                reverse("sessions_app:session-message", args=[sessions[2].pk]),
                {"prompt": "Redis is down"},
            ),
            (reverse("sessions_app:session-archive", args=[sessions[3].pk]), {}),
            (reverse("sessions_app:session-archive", args=[sessions[0].pk]), {"undo": "1"}),
            (
                reverse("sessions_app:session-launch"),
                {
                    "connection": stage["connection"].pk,
                    "source": "",
                    "branch": "",
                    "prompt": "Launched while Redis was down",
                    "title": "",
                    "require_plan_approval": "on",
                },
            ),
        ]
        slowest = 0.0
        for url, data in posts:
            response, seconds = _timed(lambda url=url, data=data: client.post(url, data))
            assert response.status_code == 302, (url, response.content[:300])
            slowest = max(slowest, seconds)
        assert slowest < MAX_REQUEST_SECONDS, slowest
        waiting = OutboxAction.objects.exclude(status="done")
        assert waiting.count() == 5
        assert set(waiting.values_list("status", "attempts")) == {("pending", 0)}
        # The pages show them as accepted: the launch page waits, the message is pending.
        launch = waiting.get(kind="launch")
        page = client.get(reverse("sessions_app:action-status", args=[launch.pk]))
        assert page.status_code == 200 and "Waiting to send it to Jules" in page.content.decode()
        assert "Redis is down" in client.get(detail[2]).content.decode()
        time.sleep(1)
        assert _counts(sim) == before, "nothing reaches Jules while the broker is down"

        # Redis comes back empty; the sweep (played here by the test, as beat would)
        # enqueues what waited, and the worker reconnects and delivers it.
        own_redis.start()
        started = time.monotonic()
        done = drive_outbox(timeout=90)
        recovered = time.monotonic() - started
        assert {a.status for a in done} == {"done"}
        after = _counts(sim)
        for op in (
            "sessions.approvePlan",
            "sessions.sendMessage",
            "sessions.archive",
            "sessions.unarchive",
            "sessions.create",
        ):
            assert after[op] - before[op] == 1, op
        remote = sim.state.session(sessions[2].remote_id)
        said = [a for a in remote.activities if a.kind == "userMessaged"]
        assert [a.payload.get("userMessage") for a in said] == ["Redis is down"]
        assert sim.state.session(sessions[3].remote_id).archived is True
        assert sim.state.session(sessions[4].remote_id).archived is True
        assert sim.state.session(sessions[0].remote_id).archived is False
        for url in (listing, *detail):
            assert client.get(url).status_code == 200
        print(
            f"redis drill: an action posted while Redis hung took {hung:.1f} s; the slowest "
            f"request while it was down {slowest:.2f} s; delivered {recovered:.1f} s after "
            "the restart"
        )
    finally:
        sim.stop()
