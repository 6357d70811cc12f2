"""Search figures on PostgreSQL (docs/search.md, docs/performance.md "Search"):

    python -m bench.search [--sessions 100000] [--activities 10] [--repeat 5]
                           [--sync-sessions 1000] [--sync-repeat 3] [--reuse] [--explain]

Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/jules_bench),
which it **empties**. It seeds `--sessions` sessions with `--activities` activities each
(bench/seed.py; `--reuse` keeps what an earlier run seeded), builds the index with
`rebuild_search_index` (time and size), then times `search_sessions` as the page calls it
(match, facets, ranking, highlighted snippets of the first page) for a person who sees
every session, `--repeat` times per query, after one warm-up each:

- common: words in every document (the seeded activities all say them);
- rare: a ticket number from one prompt, different each time;
- phrase: quoted phrases, from one in twelve documents to all of them;
- path: path prefixes, one in four sessions' patch, and one that no session touched.

Last, the sync's cost with the index and without (`SEARCH_INDEX_ON_SYNC`): full syncs of
`--sync-sessions` simulator sessions into empty tables, on and off alternating
`--sync-repeat` times, four requests in flight as in a worker (bench/sync_floor.py).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.common import setup_django

COMMON = ["tests", "code", "running", "looking now", "step"]
PHRASES = [
    '"invoice rounding"',
    '"the billing export"',
    '"keep the change small"',
    '"flaky retries"',
]
PATHS = ["app/bill", "app/", "lib/nothing/here/"]


def _percentile(samples: Sequence[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _size(relation: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s::regclass)", [relation])
        return int(cursor.fetchone()[0])


def build_index() -> tuple[float, dict[str, int]]:
    from django.core.management import call_command
    from django.db import connection

    from sessions_app.models import SessionSearchDocument

    with connection.cursor() as cursor:
        cursor.execute(f'TRUNCATE "{SessionSearchDocument._meta.db_table}"')
    started = time.perf_counter()
    call_command("rebuild_search_index", stdout=open("/dev/null", "w"))  # noqa: SIM115
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE sessions_app_sessionsearchdocument")
    table = SessionSearchDocument._meta.db_table
    sizes = {
        "documents (table, TOAST, all indexes)": _size(table),
        "GIN of search_vector": _size("search_doc_vector"),
        "trigram GIN of paths": _size("search_doc_paths_trgm"),
    }
    return seconds, sizes


def time_queries(user: Any, queries: list[str], repeat: int) -> tuple[list[float], int]:
    from sessions_app.search.query import parse
    from sessions_app.search.selectors import search_sessions

    samples: list[float] = []
    matched = 0
    for text in queries:
        search_sessions(user, parse(text))  # warm-up
        for _ in range(repeat):
            started = time.perf_counter()
            results = search_sessions(user, parse(text))
            samples.append((time.perf_counter() - started) * 1000)
        matched = max(matched, results.matched)
    return samples, matched


def explain(user: Any, text: str, out: Callable[[str], None]) -> None:
    from django.db import connection

    from sessions_app.search.backends import backend
    from sessions_app.search.query import parse
    from sessions_app.search.selectors import WINDOW, scoped_documents

    # The window as `search_sessions` reads it with the list's default filters.
    documents = scoped_documents(user, {})
    assert documents is not None
    window = (
        backend()
        .match(documents, parse(text))
        .order_by("-create_time", "-session_id")
        .values_list("session_id", flat=True)[: WINDOW + 1]
    )
    sql, params = window.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        out(f"EXPLAIN ANALYZE of the window for {text!r}:")
        for (line,) in cursor.fetchall():
            out("    " + line)


def sync_cost(size: int, activities: int, repeat: int, latency_ms: float) -> dict[str, float]:
    from django.conf import settings

    from bench.sync_floor import _Simulator, run_sync

    sim = _Simulator("thread", size, activities)
    if latency_ms:
        sim.add_latency(latency_ms / 1000)
    on: list[float] = []
    off: list[float] = []
    try:
        run_sync(sim.base_url, workers=4)  # warm-up: the simulator caches its JSON
        for _ in range(repeat):
            for enabled, samples in ((True, on), (False, off)):
                settings.SEARCH_INDEX_ON_SYNC = enabled
                samples.append(run_sync(sim.base_url, workers=4)[0])
    finally:
        settings.SEARCH_INDEX_ON_SYNC = True
        sim.stop()
    return {
        "on": statistics.median(on),
        "off": statistics.median(off),
        "ratio": statistics.median([a / b for a, b in zip(on, off, strict=True)]),
    }


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rare", type=int, default=20, help="How many rare words to try.")
    parser.add_argument("--sync-sessions", type=int, default=1000)
    parser.add_argument("--sync-activities", type=int, default=10)
    parser.add_argument("--sync-repeat", type=int, default=3)
    parser.add_argument(
        "--latency-ms",
        default="0",
        help="Comma-separated delays added to every simulator request, one sync figure each.",
    )
    parser.add_argument("--reuse", action="store_true", help="Keep the seeded sessions.")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="Print the plans of a common word, a phrase, a rare one.",
    )
    parser.add_argument("--no-sync", action="store_true", help="Skip the sync's cost.")
    args = parser.parse_args(argv)
    setup_django()
    from django.contrib.auth import get_user_model

    from bench.seed import USER_PREFIX, seed
    from sessions_app.models import Session

    if not args.reuse:
        started = time.perf_counter()
        seed(args.sessions, activities_per_session=args.activities)
        out(
            f"seeded {args.sessions} sessions x {args.activities} activities in "
            f"{time.perf_counter() - started:.0f} s"
        )
    seconds, sizes = build_index()
    total = Session.objects.count()
    out(f"index build (rebuild_search_index, {total} sessions): {seconds:.1f} s")
    for name, size in sizes.items():
        out(f"  {name}: {size / 2**20:.1f} MiB")
    user = get_user_model().objects.get(username=f"{USER_PREFIX}0")
    rng = random.Random(7)
    prompts = list(Session.objects.values_list("prompt", flat=True).order_by("?")[: args.rare])
    rare = [p.rsplit("ticket ", 1)[-1].rstrip(".") for p in prompts if "ticket " in p]
    rng.shuffle(rare)
    out(f"{'query':>8} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'matches':>8}")
    for name, queries, repeat in (
        ("common", COMMON, args.repeat),
        ("rare", rare, max(1, args.repeat // 2)),
        ("phrase", PHRASES, args.repeat),
        ("path", [f"path:{p}" for p in PATHS], args.repeat),
    ):
        samples, matched = time_queries(user, queries, repeat)
        out(
            f"{name:>8} {len(samples):>4} {_percentile(samples, 0.5):>8.1f} "
            f"{_percentile(samples, 0.95):>8.1f} {max(samples):>8.1f} {matched:>8}"
        )
    if args.explain:
        explain(user, COMMON[0], out)
        explain(user, PHRASES[0], out)
        explain(user, rare[0] if rare else "zzzz", out)
    if not args.no_sync:
        for latency in [float(v) for v in args.latency_ms.split(",")]:
            cost = sync_cost(args.sync_sessions, args.sync_activities, args.sync_repeat, latency)
            out(
                f"sync of {args.sync_sessions} x {args.sync_activities} at {latency:g} ms a "
                f"request (x4 in flight, medians of {args.sync_repeat}): index on "
                f"{cost['on']:.2f} s, off {cost['off']:.2f} s, ratio {cost['ratio']:.3f}"
            )
        out("load average (1, 5, 15 min): " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main(sys.argv[1:])
