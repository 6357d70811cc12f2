"""The API's sessions list (`GET /api/v1/sessions`) at many sessions: latency and queries
per request for the first, a middle and the last page, which should all be the same.

    python -m bench.api_list [--sessions 100000] [--rounds 40] [--limit 50] [--no-seed]

It seeds that many cached sessions (`bench.seed`, no activities, one team, five users)
into PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/jules_bench;
the database is emptied first), makes a personal token for the team's admin, who sees
every session, walks the whole list once by cursor (checking that every unarchived session
comes exactly once) to learn the cursors of the middle and the last page, then requests
the three pages round after round, interleaved, through Django's test client in this
process (the whole middleware stack, token check included, without a server or network),
and prints p50, p95 and the queries of each. `--compare-order` also times the first
page's bare query in the order the API used before (create_time DESC NULLS LAST), which
the descending index cannot serve (docs/performance.md, "API sessions list").
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any

WARM_UP = 3


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def _walk(client: Any, headers: dict[str, str]) -> tuple[list[str], int]:
    """Every cursor of the list at pages of 200, and how many sessions it listed."""
    cursors, cursor = [""], ""
    seen: set[int] = set()
    while True:
        answer = client.get("/api/v1/sessions", {"limit": 200, "cursor": cursor}, headers=headers)
        if answer.status_code != 200:
            raise SystemExit(f"the walk answered {answer.status_code}: {answer.content[:200]!r}")
        page = answer.json()
        ids = [item["id"] for item in page["items"]]
        if seen.intersection(ids):
            raise SystemExit("a session came twice")
        seen.update(ids)
        if not (cursor := page["next_cursor"]):
            return cursors, len(seen)
        cursors.append(cursor)


def _last_page_cursor(client: Any, headers: dict[str, str], start: str, limit: int) -> str:
    cursor = start
    while True:
        page = client.get("/api/v1/sessions", {"limit": limit, "cursor": cursor}, headers=headers)
        following = page.json()["next_cursor"]
        if not following:
            return cursor
        cursor = following


def _bare_query_ms(order: Any, rounds: int) -> float:
    from sessions_app.models import Session

    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        list(Session.objects.filter(archived=False).order_by(*order).values_list("id")[:51])
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def run(sessions: int, rounds: int, limit: int, seed_first: bool, compare: bool) -> None:
    from django.conf import settings
    from django.db import connection
    from django.db.models import F
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.seed import USER_PREFIX, seed
    from sessions_app.api.tokens import token_create
    from sessions_app.api.views import SESSION_ORDER
    from sessions_app.models import Session

    settings.API_RATE_LIMIT = 0
    settings.ALLOWED_HOSTS = ["*"]
    if seed_first:
        started = time.perf_counter()
        seed(sessions, activities_per_session=0, teams=1, users=5)
        print(f"seeded {sessions} sessions in {time.perf_counter() - started:.1f} s")
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.get(username=f"{USER_PREFIX}0")
    _, raw = token_create(user=admin, name="bench", scopes=["read"])
    headers = {"Authorization": f"Bearer {raw}"}
    client = Client()
    client.get("/api/v1/teams", headers=headers)  # "Last used" is written once, here.
    cursors, listed = _walk(client, headers)
    expected = Session.objects.filter(archived=False).count()
    if listed != expected:
        raise SystemExit(f"the walk listed {listed} sessions of {expected}")
    pages = {
        "first": "",
        f"middle (after {len(cursors) // 2 * 200})": cursors[len(cursors) // 2],
        "last": _last_page_cursor(client, headers, cursors[-1], limit),
    }
    timings: dict[str, list[float]] = {name: [] for name in pages}
    queries: dict[str, set[int]] = {name: set() for name in pages}
    for number in range(WARM_UP + rounds):
        for name, cursor in pages.items():
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                query = {"limit": str(limit), "cursor": cursor}
                answer = client.get("/api/v1/sessions", query, headers=headers)
                elapsed = time.perf_counter() - started
            if answer.status_code != 200 or not answer.json()["items"]:
                raise SystemExit(f"{name} answered {answer.status_code}")
            if number >= WARM_UP:
                timings[name].append(elapsed * 1000)
                queries[name].add(len(captured))
    print(f"\n{listed} sessions listed, pages of {limit}, {rounds} rounds\n")
    print("| page | p50 ms | p95 ms | queries |")
    print("|---|---:|---:|---:|")
    for name, values in timings.items():
        counts = "/".join(str(c) for c in sorted(queries[name]))
        p50, p95 = statistics.median(values), _percentile(values, 0.95)
        print(f"| {name} | {p50:.1f} | {p95:.1f} | {counts} |")
    if compare:
        before = (F("create_time").desc(nulls_last=True), F("id").desc())
        print("\nthe first page's bare query (51 ids), median of", rounds)
        print(f"- index order, nulls first (now): {_bare_query_ms(SESSION_ORDER, rounds):.2f} ms")
        print(f"- nulls last (before): {_bare_query_ms(before, rounds):.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description="The API's sessions list at many sessions.")
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=40, help="measured requests per page")
    parser.add_argument("--limit", type=int, default=50, help="sessions per page")
    parser.add_argument("--no-seed", action="store_true", help="reuse the seeded database")
    parser.add_argument("--compare-order", action="store_true")
    args = parser.parse_args()
    from bench.common import setup_django

    setup_django()
    run(args.sessions, args.rounds, args.limit, not args.no_seed, args.compare_order)


if __name__ == "__main__":
    main()
