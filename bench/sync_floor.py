"""Sync cost against the floor: the time to sync N sessions with M activities each into
PostgreSQL, divided by the time to merely download the same pages with a bare loop of HTTP
requests. Target: at most 1.5, with flat worker memory as N grows.

    python -m bench.sync_floor [--sizes 1000,10000] [--activities 10] [--repeat 3]
                               [--simulator thread|process] [--latency-ms 0]

Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/jules_bench).

Per size, the floor and the syncs alternate (floor, sync, sync x4, floor, ...) `--repeat`
times and the medians are reported; a warm-up floor pass comes first. The timed runs are
not traced: `RSS+` is the largest growth of the process's resident set during a timed
sync (sampled every 20 ms), and `heap` the Python heap's peak in one more sync of its
own under tracemalloc, which slows what it traces (`--no-heap` skips it).
`--simulator process` serves the simulator from a child process, so the worker's RSS and
CPU are its own and not the simulator's; `thread` (the default) serves it from a thread
of the benchmark's process, sharing its GIL. `--latency-ms` adds, as extra columns, a
floor and a sync x4 with that delay on every request (the headline ratio has none).
`CPU ratio` is the CPU time of this process during the sync (one request in flight) over
that during the floor: with the simulator in a thread, both include the simulator's
work; it is steadier than the wall-clock ratio on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import empty_tables, free_port, setup_django

KEY = "bench-key"
ROOT = Path(__file__).resolve().parent.parent


def floor(base_url: str, key: str) -> tuple[float, int]:
    """Download every page a full sync reads, serially, doing nothing with the bodies."""
    return _floor(base_url, key)[:2]


def _floor(base_url: str, key: str) -> tuple[float, int, float]:
    """(seconds, requests, CPU seconds of this process)."""
    import requests

    http = requests.Session()
    headers = {"X-Goog-Api-Key": key}
    cpu = time.process_time()
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
    return time.perf_counter() - started, requests_made, time.process_time() - cpu


def _rss() -> int:
    """The process's resident set, in bytes (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


@contextmanager
def _rss_peak() -> Iterator[list[int]]:
    """Sample the RSS every 20 ms; yields [before, peak] (the peak filled in at the end)."""
    result = [_rss(), 0]
    peak = result[0]
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.02):
            peak = max(peak, _rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        stop.set()
        sampler.join()
        result[1] = max(peak, _rss())


def _prepare(base_url: str) -> int:
    from sessions_app.models import JulesConnection, Team

    empty_tables()
    team = Team.objects.create(name="Bench", slug="bench")
    connection = JulesConnection(team=team, label="bench", base_url=base_url)
    connection.set_api_key(KEY)
    connection.save()
    return connection.pk


def run_sync(base_url: str, workers: int) -> tuple[float, int, int, float, float]:
    """One full sync into empty tables: (seconds, sessions, activities, CPU seconds, RSS
    growth MiB). The RSS is sampled every 20 ms, which costs the sync next to nothing."""
    from jules.client import JulesClient
    from sessions_app import sync
    from sessions_app.models import Activity, Session

    connection_id = _prepare(base_url)
    client = JulesClient(
        KEY, base_url, environment_once=True
    )  # as connections.client.sync_client does
    with _rss_peak() as rss:
        cpu = time.process_time()
        started = time.perf_counter()
        report = sync.sync_connection(connection_id, full=True, client=client, workers=workers)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    client.close()
    assert not report.errors, report.errors
    growth = (rss[1] - rss[0]) / 2**20
    return elapsed, Session.objects.count(), Activity.objects.count(), cpu, growth


def measure_heap(base_url: str, workers: int) -> float:
    """One more sync, traced by tracemalloc (which slows it): the heap's peak in MiB."""
    from jules.client import JulesClient
    from sessions_app import sync

    connection_id = _prepare(base_url)
    client = JulesClient(
        KEY, base_url, environment_once=True
    )  # as connections.client.sync_client does
    tracemalloc.start()
    sync.sync_connection(connection_id, full=True, client=client, workers=workers)
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    client.close()
    return heap_peak / 2**20


class _Simulator:
    """The simulator, in a thread of this process or in a child process."""

    def __init__(self, mode: str, size: int, activities: int) -> None:
        self.mode = mode
        self._thread_sim: Any = None
        self._process: subprocess.Popen[bytes] | None = None
        if mode == "thread":
            from jules_simulator import start_simulator

            self._thread_sim = start_simulator(
                api_keys=[KEY],
                manual_clock=True,
                seed=1,
                seed_sessions=size,
                activities_per_session=activities,
            )
            self.base_url = self._thread_sim.base_url
            return
        port = free_port()
        self._process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "jules_simulator",
                f"--port={port}",
                f"--api-key={KEY}",
                "--manual-clock",
                "--seed=1",
                f"--seed-sessions={size}",
                f"--activities-per-session={activities}",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        self.base_url = f"http://127.0.0.1:{port}/v1alpha"
        self._wait_ready(f"http://127.0.0.1:{port}/_sim/clock")

    def _wait_ready(self, url: str) -> None:
        import requests

        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError("The simulator process ended before it served.")
            try:
                if requests.get(url, timeout=5).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("The simulator did not start within ten minutes.")

    def add_latency(self, seconds: float) -> None:
        self.add_fault(f"kind=latency,seconds={seconds}")

    def add_fault(self, spec: str) -> None:
        import requests

        if self._thread_sim is not None:
            self._thread_sim.add_fault(spec)
        else:
            admin = self.base_url.removesuffix("/v1alpha") + "/_sim/faults"
            requests.post(admin, json={"spec": spec}, timeout=10).raise_for_status()

    def clear_faults(self) -> None:
        import requests

        if self._thread_sim is not None:
            self._thread_sim.clear_faults()
        else:
            admin = self.base_url.removesuffix("/v1alpha") + "/_sim/faults"
            requests.delete(admin, timeout=10).raise_for_status()

    def stop(self) -> None:
        if self._thread_sim is not None:
            self._thread_sim.stop()
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def bench_size(
    size: int,
    activities: int,
    repeat: int,
    simulator: str,
    latency_ms: float,
    *,
    x4: bool = True,
    heap: bool = True,
) -> dict[str, Any]:
    sim = _Simulator(simulator, size, activities)
    nan = float("nan")
    try:
        floor(sim.base_url, KEY)  # warm-up: the simulator caches its JSON on first read
        floors: list[float] = []
        syncs: list[float] = []
        syncs4: list[float] = []
        cpu_ratios: list[float] = []
        growths: list[float] = []
        rows = 0
        for _ in range(repeat):
            floor_s, _, floor_cpu = _floor(sim.base_url, KEY)
            floors.append(floor_s)
            seconds, sessions, acts, cpu, growth = run_sync(sim.base_url, workers=1)
            syncs.append(seconds)
            cpu_ratios.append(cpu / floor_cpu)
            growths.append(growth)
            if x4:
                syncs4.append(run_sync(sim.base_url, workers=4)[0])
            rows = sessions + acts
        result: dict[str, Any] = {
            "floor": _median(floors),
            "sync": _median(syncs),
            "sync4": _median(syncs4) if x4 else nan,
            "ratio": _median([s / f for s, f in zip(syncs, floors, strict=True)]),
            "ratio4": _median([s / f for s, f in zip(syncs4, floors, strict=True)]) if x4 else nan,
            "cpu_ratio": _median(cpu_ratios),
            "heap": measure_heap(sim.base_url, workers=4) if heap else nan,
            "rss": max(growths),
            "rows": rows,
        }
        if latency_ms:
            sim.add_latency(latency_ms / 1000)
            slow_floor = floor(sim.base_url, KEY)[0]
            slow_sync = run_sync(sim.base_url, workers=4)[0]
            sim.clear_faults()
            result["latency_ratio4"] = slow_sync / slow_floor
        return result
    finally:
        sim.stop()


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--activities", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--simulator", choices=["thread", "process"], default="thread")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="Also measure with this delay added to every request (an extra column).",
    )
    parser.add_argument("--no-x4", action="store_true", help="Skip the syncs with four in flight.")
    parser.add_argument("--no-heap", action="store_true", help="Skip the traced heap run.")
    args = parser.parse_args(argv)
    setup_django()
    from julesweb.celery import apply_worker_settings

    # The sync runs here as in a worker, with the worker's interpreter settings.
    apply_worker_settings()
    header = (
        f"{'N':>7} {'M':>3} {'floor s':>8} {'sync s':>8} {'ratio':>6} {'sync x4 s':>9} "
        f"{'ratio x4':>8} {'CPU ratio':>9} {'heap MiB':>8} {'RSS+ MiB':>8} {'rows':>9}"
    )
    if args.latency_ms:
        header += f" {'x4 @' + format(args.latency_ms, 'g') + 'ms':>11}"
    out(f"simulator: {args.simulator}; medians of {args.repeat} alternating runs")
    out(header)
    for size in [int(s) for s in args.sizes.split(",")]:
        r = bench_size(
            size,
            args.activities,
            args.repeat,
            args.simulator,
            args.latency_ms,
            x4=not args.no_x4,
            heap=not args.no_heap,
        )
        line = (
            f"{size:>7} {args.activities:>3} {r['floor']:>8.2f} {r['sync']:>8.2f} "
            f"{r['ratio']:>6.2f} {r['sync4']:>9.2f} {r['ratio4']:>8.2f} {r['cpu_ratio']:>9.2f} "
            f"{r['heap']:>8.1f} "
            f"{r['rss']:>8.1f} {r['rows']:>9}"
        )
        if args.latency_ms:
            line += f" {r['latency_ratio4']:>11.2f}"
        out(line)
    # Other work on the machine slows the sync (two processes: this one and PostgreSQL)
    # more than the floor (one), so the load goes with the figures.
    out("load average (1, 5, 15 min) at the end: " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main(sys.argv[1:])
