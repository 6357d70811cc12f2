"""A first sync against the official Jules TypeScript SDK's, on the same simulator account,
at several latencies a request (issue 19, "Requests in flight adapt").

    python -m bench.sdk_compare [--sessions 500] [--activities 10] [--latencies 0,50,100]
                                [--repeat 1] [--sdk-concurrency N] [--storm]

Needs PostgreSQL (BENCH_DATABASE_URL, as bench/sync_floor.py) and Node.js 20 with npm.

The simulator runs in a child process, so the portal, the floor and the SDK all talk to
the same server over loopback. A floor pass and a portal sync warm up first, since a
worker syncs from a process that has run before (the first sync in a process pays its
imports and cold caches; the SDK, a process of its own per run, gets no such help). Per
latency (a `kind=latency` fault on every request), `--repeat` rounds of, in turn:

- **floor**: bench/sync_floor.py's bare serial loop over every page a full sync reads;
- **portal**: `sync_connection(full=True)` into empty tables with the client a worker
  uses (`connections.client.sync_client`: requests in flight adapt, jules/inflight.py);
- **SDK**: bench/sdk_sync.mjs, the SDK's own `jules.sync({depth: "activities"})` with its
  default concurrency (or `--sdk-concurrency`), into an empty cache of its own.

The SDK (pinned below) is installed with `npm install --no-save` into var/sdk-bench,
outside the tracked files, on the first run; it is not a dependency of the portal. Its
sync lists the default listing (archived sessions left out), the portal's full sync reads
archived ones too, so each run's sessions and activities are printed beside its time.

`--storm` instead runs one portal sync at `--storm-latency-ms` with a 429 storm
(`Retry-After`) in the middle, and prints the curve of requests in flight: the limit at
every change and the requests actually in flight, sampled every 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import setup_django
from bench.sync_floor import KEY, ROOT, _floor, _prepare, _Simulator

SDK_PACKAGE = "@google/jules-sdk@0.2.0"
SDK_DIR = ROOT / "var" / "sdk-bench"
SDK_SCRIPT = Path(__file__).resolve().parent / "sdk_sync.mjs"


def install_sdk(directory: Path = SDK_DIR) -> Path:
    """The SDK in `directory` (installed on first use, not saved to any manifest)."""
    if (directory / "node_modules" / "@google" / "jules-sdk").is_dir():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    manifest = directory / "package.json"
    if not manifest.exists():
        manifest.write_text('{"private": true, "type": "module"}\n')
    subprocess.run(
        ["npm", "install", "--no-save", "--no-audit", "--no-fund", SDK_PACKAGE],
        cwd=directory,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return directory


def run_sdk(base_url: str, concurrency: int | None) -> dict[str, Any]:
    """One SDK first sync into an empty cache: its seconds, sessions and activities."""
    home = tempfile.mkdtemp(prefix="sdk-cache-")
    try:
        command = ["node", str(SDK_SCRIPT), str(SDK_DIR), base_url, KEY]
        if concurrency:
            command.append(str(concurrency))
        done = subprocess.run(
            command,
            env={**os.environ, "JULES_HOME": home},
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["complete"], result
        return result
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_portal(base_url: str) -> tuple[dict[str, Any], Any]:
    """One portal first sync into empty tables: (figures, the client's InFlight)."""
    from sessions_app import sync
    from sessions_app.connections.client import sync_client
    from sessions_app.models import Activity, JulesConnection, Session

    connection_id = _prepare(base_url)
    client = sync_client(JulesConnection.objects.get(pk=connection_id))
    started = time.perf_counter()
    report = sync.sync_connection(connection_id, full=True, client=client)
    seconds = time.perf_counter() - started
    client.close()
    assert not report.errors, report.errors
    assert client.inflight is not None
    figures = {
        "seconds": seconds,
        "sessions": Session.objects.count(),
        "activities": Activity.objects.count(),
        "peak": client.inflight.peak,
    }
    return figures, client.inflight


def bench_latency(
    sim: _Simulator, latency_ms: float, repeat: int, sdk_concurrency: int | None
) -> dict[str, Any]:
    sim.clear_faults()
    if latency_ms:
        sim.add_latency(latency_ms / 1000)
    floors, portals, sdks = [], [], []
    for _ in range(repeat):
        floors.append(_floor(sim.base_url, KEY)[0])
        portals.append(run_portal(sim.base_url)[0])
        sdks.append(run_sdk(sim.base_url, sdk_concurrency))
    sim.clear_faults()
    floor_s = statistics.median(floors)
    portal_s = statistics.median(p["seconds"] for p in portals)
    sdk_s = statistics.median(s["seconds"] for s in sdks)
    return {
        "floor": floor_s,
        "portal": portal_s,
        "sdk": sdk_s,
        "vs_sdk": statistics.median(
            p["seconds"] / s["seconds"] for p, s in zip(portals, sdks, strict=True)
        ),
        "vs_floor": statistics.median(
            p["seconds"] / f for p, f in zip(portals, floors, strict=True)
        ),
        "peak": max(p["peak"] for p in portals),
        "portal_rows": f"{portals[-1]['sessions']}/{portals[-1]['activities']}",
        "sdk_rows": f"{sdks[-1]['sessions']}/{sdks[-1]['activities']}",
    }


def storm(
    sim: _Simulator, latency_ms: float, at: float, seconds: float, out: Callable[[str], None]
) -> None:
    """One portal sync with a 429 storm from `at` to `at + seconds` after it starts."""
    from sessions_app import sync
    from sessions_app.connections.client import sync_client
    from sessions_app.models import JulesConnection

    sim.clear_faults()
    sim.add_latency(latency_ms / 1000)
    connection_id = _prepare(sim.base_url)
    client = sync_client(JulesConnection.objects.get(pk=connection_id))
    inflight = client.inflight
    assert inflight is not None
    samples: list[tuple[float, int, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            samples.append((time.monotonic(), inflight.active, inflight.limit))

    # Half the requests in the window answer 429 with Retry-After: 1; the window counts
    # from when the rule is added, just before the sync starts.
    sim.add_fault(f"status=429,retry_after=1,prob=0.5,window={at}-{at + seconds}")
    sampler = threading.Thread(target=sample, daemon=True)
    start = time.monotonic()
    sampler.start()
    report = sync.sync_connection(connection_id, full=True, client=client)
    stop.set()
    sampler.join()
    elapsed = time.monotonic() - start
    client.close()
    sim.clear_faults()
    assert not report.errors, report.errors
    out(
        f"429 storm from {at:g} s to {at + seconds:g} s (half the requests, Retry-After: 1) "
        f"at {latency_ms:g} ms a request; sync took {elapsed:.2f} s, "
        f"peak {inflight.peak}, ceiling {inflight.ceiling}"
    )
    out(
        "limit changes (s: limit): "
        + ", ".join(f"{t - start:.2f}: {n}" for t, n in inflight.history)
    )
    out(f"{'t s':>5} {'limit':>5} {'in flight':>9}")
    for when, active, limit in samples[::2]:
        bar = "#" * active + "." * max(0, limit - active)
        out(f"{when - start:>5.2f} {limit:>5} {active:>9}  {bar}")


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--activities", type=int, default=10)
    parser.add_argument("--latencies", default="0,50,100", help="Milliseconds a request.")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--sdk-concurrency", type=int, default=None)
    parser.add_argument("--storm", action="store_true", help="Only the 429-storm curve.")
    parser.add_argument("--storm-latency-ms", type=float, default=50.0)
    parser.add_argument("--storm-at", type=float, default=0.8)
    parser.add_argument("--storm-seconds", type=float, default=0.6)
    args = parser.parse_args(argv)
    # The portal's sync client talks only to allowed addresses: the simulator's, here.
    os.environ.setdefault("JULES_ALLOWED_BASE_URLS", "http://127.0.0.1:*/v1alpha")
    setup_django()
    from julesweb.celery import apply_worker_settings

    # The sync runs here as in a worker, with the worker's interpreter settings.
    apply_worker_settings()
    sim = _Simulator("process", args.sessions, args.activities)
    try:
        _floor(sim.base_url, KEY)  # warm-up: the simulator caches its JSON on first read
        # and one portal sync, as a worker that has run before: the first one in a process
        # pays its imports (the URL configuration, the search indexer's) and cold caches.
        run_portal(sim.base_url)
        if args.storm:
            storm(sim, args.storm_latency_ms, args.storm_at, args.storm_seconds, out)
            return
        install_sdk()
        out(f"{args.sessions} sessions x {args.activities} activities; medians of {args.repeat}")
        out(
            f"{'ms':>4} {'floor s':>8} {'portal s':>8} {'SDK s':>7} {'portal/SDK':>10} "
            f"{'portal/floor':>12} {'peak':>4} {'portal rows':>12} {'SDK rows':>10}"
        )
        for latency in [float(v) for v in args.latencies.split(",")]:
            r = bench_latency(sim, latency, args.repeat, args.sdk_concurrency)
            out(
                f"{latency:>4g} {r['floor']:>8.2f} {r['portal']:>8.2f} {r['sdk']:>7.2f} "
                f"{r['vs_sdk']:>10.2f} {r['vs_floor']:>12.2f} {r['peak']:>4} "
                f"{r['portal_rows']:>12} {r['sdk_rows']:>10}"
            )
    finally:
        sim.stop()
    out("load average (1, 5, 15 min) at the end: " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main(sys.argv[1:])
