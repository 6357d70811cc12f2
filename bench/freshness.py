"""Freshness in steady state (issue 19): how soon a change in Jules reaches the portal's
cache, and how many requests a minute the sync spends on the live sessions meanwhile.

    python -m bench.freshness [--live 9] [--history 200] [--minutes 3] [--warmup 40]
                              [--change-every 3] [--new-every 45] [--seed 1]

Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/jules_bench).

The simulator serves from a thread on the wall clock, with one account: `--history` resting
sessions and `--live` sessions waiting for plan approval (live: they can still move). The
scheduler runs as under `make run`: a beat thread calls `due_connections` on the beat's
`schedule-syncs` cadence (julesweb/celery.py) and a worker thread runs each enqueued
`sync_connection`. After `--warmup` seconds, the benchmark changes the simulator's world at
random times (about one change every `--change-every` seconds: a new activity on a random
live session, one in five with a state change; and about every `--new-every` seconds a new
session, as if created in the Jules web app) and a watcher polls the portal's tables every
50 ms: the lag of a change is from its making until its activity row (and state) is in the
cache, that of a new session until its row is. Requests are the simulator's own counts,
by operation, over the measured minutes.
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench.common import setup_django
from bench.sync_floor import KEY, _prepare

WAITING = "AWAITING_PLAN_APPROVAL"
OTHER = "AWAITING_USER_FEEDBACK"


@dataclass
class Pending:
    kind: str  # "change" or "new"
    session_id: str
    made: float
    activity_id: str = ""
    state: str = ""


@dataclass
class Results:
    change_lags: list[float] = field(default_factory=list)
    new_lags: list[float] = field(default_factory=list)
    unseen: int = 0


def _percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def _create_live(sim: Any, account: Any, prompt: str) -> str:
    from jules_simulator.scenarios import parse_scenario

    session = sim.state.create_session(
        account,
        {"prompt": prompt, "require_plan_approval": True},
        parse_scenario("plan_approval"),
    )
    return str(session.id)


def _change(sim: Any, account: Any, session_id: str, rng: random.Random) -> Pending:
    """A new activity on a live session, one in five with a state change, made now."""
    world = sim.state
    with world.lock:
        world.tick(account)
        session = account.sessions[session_id]
        now = world.clock.now_us()
        activity = world.add_activity(
            session,
            "progressUpdated",
            {"title": "Bench progress", "description": f"step {rng.random():.6f}"},
            at=now,
            rng=rng,
        )
        state = ""
        if rng.random() < 0.2:
            state = OTHER if session.state == WAITING else WAITING
            world.set_state(account, session, state)
        world.touch(session, now)
    return Pending("change", session_id, time.monotonic(), activity.id, state)


def _finish(sim: Any, account: Any, session_id: str) -> None:
    """A new session, once seen, rests, so the live set stays the same size."""
    world = sim.state
    with world.lock:
        world.tick(account)
        session = account.sessions[session_id]
        session.next_us = None
        world.set_state(account, session, "COMPLETED")
        session.phase = "done"
        world.touch(session, world.clock.now_us())


def _scheduler(stop: threading.Event, errors: list[str]) -> list[Any]:
    """The beat and one sync worker, as `make run` runs them (threads of this process)."""
    from django.db import connection as db

    from julesweb.celery import app
    from sessions_app import sync

    beat = float(app.conf.beat_schedule["schedule-syncs"]["schedule"])
    jobs: queue.Queue[int | None] = queue.Queue()

    def beat_loop() -> None:
        while not stop.is_set():
            for pk in sync.due_connections():
                jobs.put(pk)
            stop.wait(beat)
        jobs.put(None)
        db.close()

    def worker_loop() -> None:
        while True:
            pk = jobs.get()
            if pk is None:
                break
            report = sync.sync_connection(pk)
            errors.extend(report.errors)
        db.close()

    threads = [
        threading.Thread(target=beat_loop, daemon=True),
        threading.Thread(target=worker_loop, daemon=True),
    ]
    for thread in threads:
        thread.start()
    return threads


def _seen(pending: Pending, connection_id: int) -> bool:
    from sessions_app.models import Activity, Session

    row = (
        Session.objects.filter(connection_id=connection_id, remote_id=pending.session_id)
        .only("id", "state")
        .first()
    )
    if row is None:
        return False
    if pending.kind == "new":
        return True
    if pending.state and row.state != pending.state:
        return False
    return Activity.objects.filter(session=row, remote_id=pending.activity_id).exists()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from django.db import connection as db

    from jules_simulator import start_simulator

    rng = random.Random(args.seed)
    sim = start_simulator(
        api_keys=[KEY],
        speed=args.speed,
        seed=args.seed,
        seed_sessions=args.history,
        activities_per_session=5,
    )
    account = sim.state.account(KEY)
    stop = threading.Event()
    results = Results()
    errors: list[str] = []
    threads: list[Any] = []
    try:
        live = [_create_live(sim, account, f"Live session {i}") for i in range(args.live)]
        connection_id = _prepare(sim.base_url)
        threads = _scheduler(stop, errors)
        time.sleep(args.warmup)
        pending: list[Pending] = []
        made = 0
        before = sim.request_counts()
        started = time.monotonic()
        end = started + args.minutes * 60
        next_change = started + rng.expovariate(1 / args.change_every)
        next_new = started + rng.expovariate(1 / args.new_every)
        after: dict[str, int] | None = None
        while pending or after is None:
            now = time.monotonic()
            if after is None and now >= end:
                # The measured window ends; the changes still pending get a minute more.
                after = sim.request_counts()
            if after is None and now >= next_change:
                pending.append(_change(sim, account, rng.choice(live), rng))
                next_change = now + rng.expovariate(1 / args.change_every)
            if after is None and now >= next_new:
                made += 1
                new_id = _create_live(sim, account, f"Web app session {made}")
                pending.append(Pending("new", new_id, time.monotonic()))
                next_new = now + rng.expovariate(1 / args.new_every)
            for item in list(pending):
                if _seen(item, connection_id):
                    lag = time.monotonic() - item.made
                    if item.kind == "new":
                        results.new_lags.append(lag)
                        _finish(sim, account, item.session_id)
                    else:
                        results.change_lags.append(lag)
                    pending.remove(item)
            if now > end + 60:
                break
            time.sleep(0.05)
        results.unseen = len(pending)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        sim.stop()
        db.close()
    assert after is not None
    counts = {
        op: after.get(op, 0) - before.get(op, 0)
        for op in sorted(set(after) | set(before))
        if not op.startswith(("status.", "failed.", "fault."))
    }
    return {"counts": counts, "results": results, "errors": errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", type=int, default=9)
    parser.add_argument("--history", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=40.0)
    parser.add_argument("--change-every", type=float, default=3.0)
    parser.add_argument("--new-every", type=float, default=45.0)
    parser.add_argument("--speed", type=float, default=60.0, help="the simulator's speed")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    # The connection points at the simulator on loopback, as under `make run`.
    os.environ.setdefault("JULES_ALLOWED_BASE_URLS", "http://127.0.0.1:*/v1alpha")
    setup_django()
    from django.conf import settings

    from julesweb.celery import app, apply_worker_settings

    apply_worker_settings()
    outcome = run(args)
    r: Results = outcome["results"]
    counts: dict[str, int] = outcome["counts"]
    total = sum(counts.values())
    per_minute = total / args.minutes
    beat = app.conf.beat_schedule["schedule-syncs"]["schedule"]
    cadences = ", ".join(
        f"{name}={getattr(settings, name)}"
        for name in (
            "SYNC_CHANGES_SECONDS",
            "SYNC_ACTIVE_SECONDS",
            "SYNC_LIST_SECONDS",
        )
        if hasattr(settings, name)
    )
    print(f"beat {beat} s; {cadences}; {args.live} live, {args.history} resting sessions")
    print(f"{args.minutes:g} min measured; requests a minute by operation:")
    for op, n in counts.items():
        if n:
            print(f"  {op:<22} {n / args.minutes:7.1f}")
    print(f"  {'total':<22} {per_minute:7.1f}  ({per_minute / args.live:.2f} per live session)")
    print(
        f"change-to-cache lag over {len(r.change_lags)} changes: "
        f"p50 {_percentile(r.change_lags, 50):.2f} s, p95 {_percentile(r.change_lags, 95):.2f} s, "
        f"max {max(r.change_lags, default=float('nan')):.2f} s"
    )
    print(
        f"new-session lag over {len(r.new_lags)} sessions: "
        f"p50 {_percentile(r.new_lags, 50):.2f} s, max {max(r.new_lags, default=float('nan')):.2f} s"
    )
    print(f"unseen after a minute: {r.unseen}; sync errors: {len(outcome['errors'])}")
    print(
        "load average (1, 5, 15 min) at the end: " + ", ".join(f"{v:.1f}" for v in os.getloadavg())
    )
    return 0 if not r.unseen and not outcome["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
