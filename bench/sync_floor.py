"""Sync cost against the floor: the time to sync N sessions with M activities each into
PostgreSQL, divided by the time to merely download the same pages with a bare loop of HTTP
requests. Target: at most 1.5, with flat worker memory as N grows.

    python -m bench.sync_floor [--sizes 1000,5000] [--activities 10]

Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/jules_bench).
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

from bench.common import empty_tables, setup_django


def floor(base_url: str, key: str) -> tuple[float, int]:
    """Download every page a full sync reads, serially, doing nothing with the bodies."""
    import requests

    http = requests.Session()
    headers = {"X-Goog-Api-Key": key}
    started = time.perf_counter()
    requests_made = 0
    ids: list[str] = []
    token = None
    while True:
        params: dict[str, str | int] = {
            "pageSize": 100,
            "filter": "archived = true OR archived = false",
        }
        if token:
            params["pageToken"] = token
        body = http.get(f"{base_url}/sessions", params=params, headers=headers, timeout=30).json()
        requests_made += 1
        ids.extend(s["id"] for s in body.get("sessions", []))
        token = body.get("nextPageToken")
        if not token:
            break
    for session_id in ids:
        token = None
        while True:
            params = {"pageSize": 100}
            if token:
                params["pageToken"] = token
            body = http.get(
                f"{base_url}/sessions/{session_id}/activities",
                params=params,
                headers=headers,
                timeout=30,
            ).json()
            requests_made += 1
            token = body.get("nextPageToken")
            if not token:
                break
    return time.perf_counter() - started, requests_made


def run_sync(base_url: str, key: str, workers: int) -> tuple[float, float, int, int]:
    from sessions_app import sync
    from sessions_app.jules.client import JulesClient
    from sessions_app.models import Activity, JulesConnection, Session, Team

    empty_tables()
    team = Team.objects.create(name="Bench", slug="bench")
    connection = JulesConnection(team=team, label="bench", base_url=base_url)
    connection.set_api_key(key)
    connection.save()
    client = JulesClient(key, base_url)
    tracemalloc.start()
    started = time.perf_counter()
    report = sync.sync_connection(connection.pk, full=True, client=client, workers=workers)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert not report.errors, report.errors
    return elapsed, peak / 2**20, Session.objects.count(), Activity.objects.count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--activities", type=int, default=10)
    args = parser.parse_args()
    setup_django()
    from sessions_app.jules.simulator import start_simulator

    print(
        f"{'N':>7} {'M':>3} {'floor s':>8} {'sync s':>8} {'ratio':>6} {'sync x4 s':>9} {'ratio x4':>8} {'peak MiB':>9} {'rows':>9}"
    )
    for size in [int(s) for s in args.sizes.split(",")]:
        sim = start_simulator(
            api_keys=["bench-key"],
            manual_clock=True,
            seed=1,
            seed_sessions=size,
            activities_per_session=args.activities,
        )
        try:
            floor_s, _ = floor(sim.base_url, "bench-key")
            sync_s, peak, sessions, activities = run_sync(sim.base_url, "bench-key", workers=1)
            sync4_s, _, _, _ = run_sync(sim.base_url, "bench-key", workers=4)
        finally:
            sim.stop()
        print(
            f"{size:>7} {args.activities:>3} {floor_s:>8.2f} {sync_s:>8.2f} {sync_s / floor_s:>6.2f} "
            f"{sync4_s:>9.2f} {sync4_s / floor_s:>8.2f} {peak:>9.1f} {sessions + activities:>9}"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS of the whole run: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
