"""How fast the simulator seeds 10,000 sessions of 10 activities and serves them.

    python -m bench.simulator_seed [--sessions 10000] [--max-seed 5] [--max-serve 10]

Exits 1 when seeding or serving every page (and 300 sessions' activities) takes longer
than its target, measured on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from urllib.parse import quote

from jules_simulator import start_simulator

ALL = "archived = true OR archived = false"


def _get(base: str, path: str) -> dict:
    request = urllib.request.Request(base + path, headers={"X-Goog-Api-Key": "k"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--max-seed", type=float, default=5.0)
    parser.add_argument("--max-serve", type=float, default=10.0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sim = start_simulator(
        api_keys=["k"],
        manual_clock=True,
        seed=1,
        seed_sessions=args.sessions,
        activities_per_session=10,
    )
    seeded = time.perf_counter() - started
    try:
        started = time.perf_counter()
        ids: list[str] = []
        token = ""
        while True:
            page = _get(
                sim.base_url,
                f"/sessions?pageSize=100&filter={quote(ALL)}"
                + (f"&pageToken={quote(token)}" if token else ""),
            )
            ids += [s["id"] for s in page.get("sessions", [])]
            token = page.get("nextPageToken", "")
            if not token:
                break
        for sid in ids[:300]:
            _get(sim.base_url, f"/sessions/{sid}/activities")
        served = time.perf_counter() - started
    finally:
        sim.stop()
    print(f"seeded {args.sessions} sessions in {seeded:.2f} s (target {args.max_seed} s)")
    print(f"listed {len(ids)} and read 300 timelines in {served:.2f} s (target {args.max_serve} s)")
    return 0 if seeded <= args.max_seed and served <= args.max_serve else 1


if __name__ == "__main__":
    sys.exit(main())
