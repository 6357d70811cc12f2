"""The analytics page's latency at scale, and what the rollup costs the sync.

    python -m bench.analytics [--sessions 100000] [--activities 10] [--rounds 30]
                              [--sync-sessions 2000] [--repeat 3] [--keep]

Needs PostgreSQL: BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/jules_bench_analytics,
a database of its own that is created, filled and, unless `--keep`, dropped at the end.

1. Seeds `--sessions` cached sessions with `--activities` activities each (`bench.seed`:
   created over the last year, so a 90-day range holds about a quarter of them), then
   fills the rollup with the `analytics_backfill` command and reports its time.
2. Requests the team's analytics page (Django's test client in this process: the whole
   middleware stack, no server; signed in as an admin who sees every session) `--rounds`
   times for the default 90-day range, a 365-day range (every session), and the 90-day
   range with a repository filter, each cold (the process' cache of figures emptied
   first: what the first look after a rollup change costs) and warm (the same page
   again); the first two rounds warm up and are not counted. Prints p50 and p95 in ms.
3. Syncs `--sync-sessions` sessions from the simulator into empty tables, with the rollup
   hook and with it replaced by a no-op, alternating, `--repeat` times each; prints the
   medians of wall-clock and CPU time (this process', the simulator's thread included)
   and their ratios. Then times `refresh_facts` for all of them with their rows
   deleted first: the path of a session that changed, whose rows are read back.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import statistics
import time
from unittest import mock

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/jules_bench_analytics"
WARM_UP = 2


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def page_latency(sessions: int, activities: int, rounds: int) -> None:
    from django.core.cache import caches
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from bench.seed import seed
    from sessions_app.analytics.selectors import LOCAL_CACHE
    from sessions_app.models import Session, SessionFacts, Team

    started = time.perf_counter()
    seeded = seed(sessions, activities_per_session=activities, teams=1, users=5)
    print(f"seeded {Session.objects.count()} sessions in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    call_command("analytics_backfill", verbosity=0)
    elapsed = time.perf_counter() - started
    print(f"backfill: {SessionFacts.objects.count()} rollup rows in {elapsed:.1f} s")
    team = Team.objects.get()
    client = Client(HTTP_HOST="localhost")
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username=seeded.usernames[0]))
    url = reverse("sessions_app:team-analytics", args=[team.slug])
    repo = SessionFacts.objects.values_list("repo", flat=True).first() or ""
    year_ago = timezone.localdate() - dt.timedelta(days=364)
    cases: dict[str, dict[str, str]] = {
        "90 days": {},
        "365 days": {"created_after": year_ago.isoformat()},
        "90 days, one repository": {"repo": repo},
    }
    local = caches[LOCAL_CACHE]
    timings: dict[str, list[float]] = {}
    for i in range(rounds + WARM_UP):
        for name, params in cases.items():
            # Cold: the figures computed afresh, as for the first look after a sync
            # changed a rollup row; warm: the same page again, from the cached figures.
            for kind in ("cold", "warm"):
                if kind == "cold":
                    local.clear()
                started = time.perf_counter()
                response = client.get(url, params)
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, response.status_code
                if i >= WARM_UP:
                    timings.setdefault(f"{name}, {kind}", []).append(elapsed)
    print(f"analytics page, {sessions} sessions x {activities} activities, {rounds} rounds:")
    for name, values in timings.items():
        print(
            f"  {name:<32} p50 {_percentile(values, 0.5):7.1f} ms  "
            f"p95 {_percentile(values, 0.95):7.1f} ms"
        )


def sync_cost(size: int, activities: int, repeat: int) -> None:
    from bench.sync_floor import _Simulator, run_sync
    from sessions_app.analytics.rollup import refresh_facts
    from sessions_app.models import Session, SessionFacts

    sim = _Simulator("thread", size, activities)
    try:
        run_sync(sim.base_url, 4)  # warm-up
        with_hook: list[tuple[float, float]] = []
        without: list[tuple[float, float]] = []
        for _ in range(repeat):
            run = run_sync(sim.base_url, 4)
            with_hook.append((run[0], run[3]))
            with (
                mock.patch("sessions_app.analytics.rollup.refresh_facts", lambda ids: 0),
                mock.patch("sessions_app.analytics.rollup.facts_for_new", lambda rows: 0),
            ):
                run = run_sync(sim.base_url, 4)
            without.append((run[0], run[3]))
        # The read-back path (a changed session: its rows are read from the tables) for
        # every session of the last sync, timed on its own.
        run_sync(sim.base_url, 4)
        ids = list(Session.objects.values_list("pk", flat=True))
        SessionFacts.objects.all().delete()
        started = time.perf_counter()
        refresh_facts(ids)
        refresh = time.perf_counter() - started
    finally:
        sim.stop()
    a = statistics.median(t for t, _ in with_hook)
    b = statistics.median(t for t, _ in without)
    cpu_a = statistics.median(c for _, c in with_hook)
    cpu_b = statistics.median(c for _, c in without)
    print(
        f"sync of {size} sessions x {activities} activities (median of {repeat}): "
        f"with the rollup {a:.2f} s, without {b:.2f} s, ratio {a / b:.3f}; "
        f"CPU {cpu_a:.2f} s vs {cpu_b:.2f} s, ratio {cpu_a / cpu_b:.3f}"
    )
    print(
        f"refresh_facts read back from the tables for {len(ids)} sessions: {refresh:.2f} s "
        f"({refresh / b:.1%} of the sync without the rollup)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--sync-sessions", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    from bench.common import drop_database, setup_django

    setup_django(url)
    try:
        if args.sessions:
            page_latency(args.sessions, args.activities, args.rounds)
        if args.sync_sessions:
            sync_cost(args.sync_sessions, args.activities, args.repeat)
    finally:
        if not args.keep:
            drop_database(url)


if __name__ == "__main__":
    main()
