"""The 50-user load test: people browsing the portal while a large account syncs.

    python -m bench.load --users 50 --duration 60 --sessions 10000

One command does it all, and stops everything it started when it ends, fails or is
interrupted (Ctrl-C):

1. prepares PostgreSQL (`BENCH_LOAD_DATABASE_URL`, default the `jules_load` database on
   loopback): migrates, empties, and caches `--sessions` sessions of `--activities`
   activities for one team whose members are the simulated people (`bench.seed`);
2. starts a Jules simulator holding a large account (`--sync-sessions` sessions of
   `--sync-activities` activities) and gives the same team a connection to it;
3. starts the portal under gunicorn (as `run_portal` and the Docker image start it) and,
   as `run_portal` does, one Celery worker per queue (`sync`, then `actions`), all on Redis
   (`BENCH_LOAD_REDIS_URL`, default db 5 on loopback, emptied first); the workers may reach
   the simulator because its address is passed as `JULES_ALLOWED_BASE_URLS`;
4. queues a full sync of the large account and, at once, runs locust headless (a
   subprocess, `bench/locustfile.py`) with `--users` people for `--duration` seconds;
5. prints requests, error rate, p50/p95/p99 per kind of request and overall, the sync's
   progress during the run (and the sessions it wrote a second), and the CPU time each
   part of the system used.

With `--reuse-seed`, the seeded database is kept as a PostgreSQL template
(`<database>_seed_<sessions>x<activities>x<users>`) and later runs with the same figures
copy it instead of seeding again; drop that database to seed afresh.

Locust's CSV files are kept with `--csv PREFIX`; the logs of gunicorn and the worker with
`--keep-logs`. All traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil  # type: ignore[import-untyped]  # locust brings it

from bench.common import free_port
from sessions_app.runtime.processes import signal_group

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/jules_load"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"
SYNC_KEY = "load-sync-key"
SYNC_TASK = "sessions_app.tasks.sync_connection"
# The kinds of request, in the order the report lists them.
KIND_ORDER = (
    "login form",
    "sign in",
    "list page",
    "list next page (htmx)",
    "filter state (htmx)",
    "filter repository (htmx)",
    "search (htmx)",
    "session page",
    "poll live rows (htmx)",
    "poll session (htmx)",
)


class Stop(Exception):
    """A SIGTERM, turned into an exception so that the clean-up runs."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description="Load test: people browse the portal while a large account syncs.",
    )
    parser.add_argument("--users", type=int, default=50, help="simulated people (default 50)")
    parser.add_argument("--spawn-rate", type=float, default=10, help="people started a second")
    parser.add_argument("--duration", type=int, default=60, help="seconds of load (default 60)")
    parser.add_argument(
        "--sessions", type=int, default=10000, help="cached sessions the people browse"
    )
    parser.add_argument(
        "--activities", type=int, default=5, help="activities of each cached session"
    )
    parser.add_argument(
        "--sync-sessions", type=int, default=20000, help="sessions of the account that syncs"
    )
    parser.add_argument(
        "--sync-activities", type=int, default=10, help="activities of each of those sessions"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument(
        "--worker-concurrency", type=int, default=2, help="processes of the sync worker"
    )
    parser.add_argument(
        "--reuse-seed",
        action="store_true",
        help="copy the seeded database kept by an earlier run with the same figures",
    )
    parser.add_argument("--think", default="1,3", help="pause between pages, MIN,MAX seconds")
    parser.add_argument("--dwell", default="5,15", help="time on a polling page, MIN,MAX s")
    parser.add_argument("--no-sync", action="store_true", help="measure without the sync")
    parser.add_argument("--csv", help="keep locust's CSV files under this prefix")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    args = parser.parse_args()
    if args.spawn_rate <= 0:
        parser.error("--spawn-rate must be above 0")
    for name in ("users", "duration", "sessions", "web_workers", "web_threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("think", "dwell"):
        low, _, high = getattr(args, name).partition(",")
        try:
            if float(low) < 0 or float(high or low) < float(low):
                raise ValueError
        except ValueError:
            parser.error(f"--{name} takes MIN,MAX seconds, for example 1,3")
    return args


# --- the database ---------------------------------------------------------------------


@dataclass
class Prepared:
    usernames: list[str]
    password: str
    team_id: int
    sync_connection_id: int | None = None


def prepare_database(args: argparse.Namespace, database_url: str) -> Prepared:
    """Migrate and empty the load database, then cache the sessions people browse."""
    from bench.common import setup_django
    from bench.seed import seed

    started = time.monotonic()
    template = _seed_template_name(args, database_url)
    if args.reuse_seed and _copy_database(database_url, template):
        setup_django(database_url)
        prepared = _prepared_from_copy()
        print(f"Copied the seeded database {template} in {time.monotonic() - started:.0f} s.")
    else:
        setup_django(database_url)
        # `seed` empties the portal's tables first.
        seeded = seed(
            args.sessions, activities_per_session=args.activities, teams=1, users=args.users
        )
        # What `migrate` gives sessions cached before their derived tables: search
        # documents and analytics facts, so every run starts with them.
        from sessions_app.runtime.derived import fill_missing

        fill_missing()
        print(
            f"Cached {seeded.sessions} sessions ({seeded.activities} activities, "
            f"{seeded.outputs} outputs) for {len(seeded.usernames)} people in "
            f"{time.monotonic() - started:.0f} s."
        )
        prepared = Prepared(seeded.usernames, seeded.password, seeded.team_ids[0])
        if args.reuse_seed:
            _keep_database(database_url, template)
            print(f"Kept the seeded database as {template} for the next --reuse-seed run.")
    from django.db import connection

    # Sign-ins and lockouts of earlier runs go.
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE django_session, axes_accessattempt, axes_accesslog CASCADE")
    return prepared


def _seed_template_name(args: argparse.Namespace, database_url: str) -> str:
    name = urlsplit(database_url).path.lstrip("/")
    return f"{name}_seed_{args.sessions}x{args.activities}x{args.users}"


def _copy_database(database_url: str, template: str) -> bool:
    """Recreate the load database as a copy of `template`; False if there is none."""
    from bench.common import maintenance_connection

    name = urlsplit(database_url).path.lstrip("/")
    with maintenance_connection(database_url) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template,)).fetchone():
            return False
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return True


def _keep_database(database_url: str, template: str) -> None:
    """Copy the freshly seeded load database to `template` for later runs."""
    from django.db import connections

    from bench.common import maintenance_connection

    connections.close_all()
    name = urlsplit(database_url).path.lstrip("/")
    with maintenance_connection(database_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{template}"')
        conn.execute(f'CREATE DATABASE "{template}" TEMPLATE "{name}"')


def _prepared_from_copy() -> Prepared:
    """Who signs in to a copied database: `bench.seed`'s people and team."""
    from django.contrib.auth import get_user_model

    from bench.seed import PASSWORD, USER_PREFIX
    from sessions_app.models import Team

    usernames = list(
        get_user_model()
        .objects.filter(username__startswith=USER_PREFIX)
        .order_by("id")
        .values_list("username", flat=True)
    )
    team = Team.objects.filter(slug__startswith="bench-").order_by("id").first()
    if not usernames or team is None:
        raise RuntimeError("the kept seeded database holds no bench people or team")
    return Prepared(usernames, PASSWORD, team.pk)


def add_sync_connection(prepared: Prepared, base_url: str) -> int:
    from sessions_app.models import JulesConnection, Team

    connection = JulesConnection(
        team=Team.objects.get(pk=prepared.team_id), label="large account", base_url=base_url
    )
    connection.set_api_key(SYNC_KEY)
    connection.save()
    return connection.pk


# --- processes ------------------------------------------------------------------------


class Children:
    """The processes this run started, each leading its own process group."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        log = (self.log_dir / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def check(self) -> None:
        for name, proc in self.procs.items():
            if name != "locust" and proc.poll() is not None:
                raise RuntimeError(f"{name} stopped unexpectedly:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, name: str, timeout: float = 15) -> None:
        proc = self.procs.get(name)
        if proc is None:
            return
        signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            signal_group(proc, signal.SIGKILL)
            proc.wait()
        # A pool process that outlived its parent is still in the group.
        signal_group(proc, signal.SIGKILL, only_if_running=False)

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)


def child_env(database_url: str, redis_url: str, sim_url: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="julesweb.settings",
        LOG_LEVEL="WARNING",
        DEBUG="0",
    )
    if sim_url:
        # The portal connects only where the operator allows (docs/reliability.md#jules-address).
        env["JULES_ALLOWED_BASE_URLS"] = sim_url
    env.setdefault("SECRET_KEY_FILE", str(ROOT / "var" / "secret_key"))
    env.setdefault("FIELD_ENCRYPTION_KEY_FILE", str(ROOT / "var" / "field_encryption_key"))
    return env


def wait_for_web(url: str, children: Children, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children.check()
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"gunicorn did not answer /healthz in {timeout:.0f} s")


def wait_for_worker(
    celery_app: Any, children: Children, timeout: float = 60, names: tuple[str, ...] = ()
) -> None:
    """Wait until a worker answers a ping, or each worker of `names` (`-n NAME@%h`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children.check()
        answered = [name for reply in celery_app.control.ping(timeout=1.0) for name in reply]
        if answered and all(any(a.startswith(f"{n}@") for a in answered) for n in names):
            return
    raise RuntimeError(f"the Celery worker(s) did not answer a ping in {timeout:.0f} s")


# --- measuring ------------------------------------------------------------------------


@dataclass
class SyncSample:
    at: float
    phase: str
    status: str
    done: int
    total: int
    sessions: int
    activities: int
    finished_after: float | None


def sample_sync(connection_id: int, started: float, queued_at: datetime.datetime) -> SyncSample:
    from django.db import connection as db

    from sessions_app.models import JulesConnection

    row = JulesConnection.objects.values(
        "sync_phase", "sync_status", "sync_done", "sync_total", "last_success_at"
    ).get(pk=connection_id)
    success = row["last_success_at"]
    # The sessions' own activity counts, written with their activities: counting the
    # activity rows instead cost PostgreSQL 0.3 to 0.6 s a sample once a few hundred
    # thousand were in, load that the pages measured beside it would pay for.
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(activity_count), 0) FROM sessions_app_session "
            "WHERE connection_id = %s",
            [connection_id],
        )
        counted = cursor.fetchone()
        sessions, activities = int(counted[0]), int(counted[1])
    return SyncSample(
        time.monotonic() - started,
        row["sync_phase"],
        row["sync_status"],
        row["sync_done"],
        row["sync_total"],
        sessions,
        activities,
        (success - queued_at).total_seconds() if success and success > queued_at else None,
    )


class CpuMeter:
    """CPU seconds used by each part: our children's process trees and PostgreSQL's
    backends serving the load database (psutil, which locust brings)."""

    def __init__(self, children: Children, database: str) -> None:
        self.children = children
        self.database = database
        self.seen: dict[str, dict[int, float]] = {}

    def _trees(self) -> dict[str, list[Any]]:
        trees: dict[str, list[Any]] = {}
        for name, proc in self.children.procs.items():
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(proc.pid)
                trees[name] = [parent, *parent.children(recursive=True)]
        trees["this process (simulator)"] = [psutil.Process()]
        from django.db import connection as db

        with db.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [self.database],
            )
            pids = [int(r[0]) for r in cursor.fetchall()]
        backends = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                backends.append(psutil.Process(pid))
        trees["postgres (load db)"] = backends
        return trees

    def sample(self) -> None:
        for name, procs in self._trees().items():
            seen = self.seen.setdefault(name, {})
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    seen[proc.pid] = times.user + times.system

    def start(self) -> None:
        self.sample()
        self.baseline = {name: dict(pids) for name, pids in self.seen.items()}
        self.machine_start = _busy_seconds()

    def used(self) -> dict[str, float]:
        self.sample()
        used = {
            name: sum(cpu - self.baseline.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items())
            for name, pids in self.seen.items()
        }
        # What the rest of the machine took: other people's work, the rest of PostgreSQL.
        used["anything else"] = max(0.0, _busy_seconds() - self.machine_start - sum(used.values()))
        return used


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since it started."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq)


# --- the report -----------------------------------------------------------------------


@dataclass
class Request:
    at: float  # wall-clock time the answer was complete
    kind: str
    ms: float
    failed: bool


def read_requests(path: Path) -> list[Request]:
    """The locustfile's log of every request (see `LOAD_REQUEST_LOG` there)."""
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [
            Request(float(at), kind, float(ms), failed == "1")
            for at, kind, ms, failed in csv.reader(handle)
        ]


def percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def print_table(title: str, requests: list[Request], seconds: float) -> list[dict[str, Any]]:
    """Print one table of figures by kind of request; return its rows."""
    print(f"\n{title}")
    print(
        f"{'request kind':<26} {'requests':>8} {'errors':>6} {'error %':>7} {'req/s':>6} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}"
    )
    order = {name: i for i, name in enumerate(KIND_ORDER)}
    kinds = sorted({r.kind for r in requests}, key=lambda k: (order.get(k, len(order)), k))
    groups = [(kind, [r for r in requests if r.kind == kind]) for kind in kinds]
    rows = []
    for kind, group in [*groups, ("overall", requests)]:
        times = sorted(r.ms for r in group)
        errors = sum(r.failed for r in group)
        row = {
            "kind": kind,
            "requests": len(group),
            "errors": errors,
            "error_pct": 100 * errors / max(len(group), 1),
            "per_second": len(group) / seconds,
            "p50": percentile(times, 0.50),
            "p95": percentile(times, 0.95),
            "p99": percentile(times, 0.99),
            "max": times[-1] if times else 0.0,
        }
        rows.append(row)
        print(
            f"{kind:<26} {row['requests']:>8} {errors:>6} {row['error_pct']:>7.2f} "
            f"{row['per_second']:>6.1f} {row['p50']:>7.0f} {row['p95']:>7.0f} "
            f"{row['p99']:>7.0f} {row['max']:>7.0f}"
        )
    return rows


def print_report(
    requests: list[Request],
    begun: float,
    ended: float,
    sync_done: float | None,
    *,
    syncing: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """The whole run; then the steady part, from the moment the last person signed in,
    split where the sync finished (if it finished then) to show what the sync costs."""
    tables = {
        "whole run": print_table(f"Whole run ({ended - begun:.0f} s):", requests, ended - begun)
    }
    sign_ins = [r.at for r in requests if r.kind == "sign in"]
    settled = max(sign_ins, default=begun)
    windows = [("After the last sign-in", settled, ended)]
    if sync_done is not None and settled < sync_done < ended:
        windows = [
            ("After the last sign-in, while the sync ran", settled, sync_done),
            ("After the sync finished", sync_done, ended),
        ]
    elif syncing and sync_done is None:
        windows = [("After the last sign-in, the sync running throughout", settled, ended)]
    for title, start, end in windows:
        part = [r for r in requests if start < r.at <= end]
        if part and end - start >= 5:
            tables[title] = print_table(
                f"{title} ({end - start:.0f} s, t = {start - begun:.0f} to {end - begun:.0f} s):",
                part,
                end - start,
            )
    return tables


def print_failures(prefix: str) -> None:
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return
    with path.open(newline="") as handle:
        failures = list(csv.DictReader(handle))
    if failures:
        print("\nFailures:")
        for row in failures[:10]:
            print(f"  {row['Occurrences']:>6} x {row['Name']}: {row['Error'][:150]}")
    path = Path(f"{prefix}_exceptions.csv")
    if path.exists():
        with path.open(newline="") as handle:
            exceptions = list(csv.DictReader(handle))
        for row in exceptions[:5]:
            print(f"  exception in the locustfile, {row['Count']} x: {row['Message'][:150]}")


def sync_rate(samples: list[SyncSample]) -> float | None:
    """Sessions the sync wrote a second between the first and the last sample."""
    if len(samples) < 2 or samples[-1].at <= samples[0].at:
        return None
    return (samples[-1].sessions - samples[0].sessions) / (samples[-1].at - samples[0].at)


def print_sync(samples: list[SyncSample], args: argparse.Namespace) -> None:
    if not samples:
        return
    print(
        f"\nSync of the large account ({args.sync_sessions} sessions x "
        f"{args.sync_activities} activities), during the load:"
    )
    print(
        f"{'t s':>5} {'phase':<12} {'status':<8} {'done/total':>13} {'sessions':>9} {'activities':>10}"
    )
    step = max(1, len(samples) // 12)
    shown = samples[::step]
    if shown[-1] is not samples[-1]:
        shown.append(samples[-1])
    for s in shown:
        print(
            f"{s.at:>5.0f} {s.phase or '-':<12} {s.status:<8} {f'{s.done}/{s.total}':>13} "
            f"{s.sessions:>9} {s.activities:>10}"
        )
    last = samples[-1]
    rate = sync_rate(samples)
    if rate is not None:
        print(f"During the load the sync wrote {rate:.0f} sessions/s.")
    if last.finished_after is not None:
        print(
            f"The sync finished {last.finished_after:.1f} s after it was queued: {last.sessions} "
            f"sessions and {last.activities} activities "
            f"({last.sessions / max(last.finished_after, 0.001):.0f} sessions/s)."
        )
    else:
        print(
            f"The sync was still running when the load ended, in its {last.phase or '-'} phase "
            f"({last.done}/{last.total}): {last.sessions} sessions and {last.activities} "
            f"activities written in {last.at:.0f} s."
        )


# --- the run --------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Stop()


def main() -> int:
    args = parse_args()
    database_url = os.environ.get("BENCH_LOAD_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("BENCH_LOAD_REDIS_URL", DEFAULT_REDIS_URL)
    os.chdir(ROOT)
    # A SIGTERM stops the run as Ctrl-C does: through the clean-up below.
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Ctrl-C too, even when started from a shell that had SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    work = Path(tempfile.mkdtemp(prefix="julesweb-load-"))
    children = Children(work)
    sim = None
    try:
        prepared = prepare_database(args, database_url)
        import redis
        from celery import Celery

        from jules_simulator import start_simulator

        redis.Redis.from_url(redis_url).flushdb()
        if not args.no_sync:
            started = time.monotonic()
            sim = start_simulator(
                api_keys=[SYNC_KEY],
                manual_clock=True,
                seed=11,
                seed_sessions=args.sync_sessions,
                activities_per_session=args.sync_activities,
            )
            prepared.sync_connection_id = add_sync_connection(prepared, sim.base_url)
            print(
                f"Simulator holds {args.sync_sessions} sessions to sync "
                f"({time.monotonic() - started:.0f} s to seed)."
            )

        env = child_env(database_url, redis_url, sim.base_url if sim is not None else None)
        port = free_port()
        host = f"http://127.0.0.1:{port}"
        python = sys.executable
        children.start(
            "gunicorn",
            [
                python,
                "-m",
                "gunicorn",
                "julesweb.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.web_workers),
                "--threads",
                str(args.web_threads),
                "--graceful-timeout",
                "5",
            ],
            env,
        )
        # One worker per queue, as `run_portal` and docker-compose.yml run them.
        for queue, concurrency in (("sync", args.worker_concurrency), ("actions", 1)):
            children.start(
                f"{queue} worker",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "julesweb",
                    "worker",
                    "-Q",
                    queue,
                    "-c",
                    str(concurrency),
                    "--loglevel",
                    "WARNING",
                    "-n",
                    f"{queue}@%h",
                ],
                env,
            )
        celery_app = Celery("load", broker=redis_url)
        wait_for_web(host, children)
        wait_for_worker(celery_app, children, names=("sync", "actions"))

        users_file = work / "users.json"
        users_file.write_text(
            json.dumps({"usernames": prepared.usernames, "password": prepared.password})
        )
        users_file.chmod(0o600)
        prefix = args.csv or str(work / "locust")
        request_log = work / "requests.csv"
        locust_env = dict(
            env,
            LOAD_USERS_FILE=str(users_file),
            LOAD_THINK=args.think,
            LOAD_DWELL=args.dwell,
            LOAD_REQUEST_LOG=str(request_log),
        )
        meter = CpuMeter(children, database_url.rsplit("/", 1)[-1])
        meter.start()
        queued_at = datetime.datetime.now(datetime.UTC)
        if prepared.sync_connection_id is not None:
            celery_app.send_task(
                SYNC_TASK, args=[prepared.sync_connection_id], kwargs={"full": True}, queue="sync"
            )
        started, begun = time.monotonic(), time.time()
        print(
            f"Load: {args.users} people for {args.duration} s on gunicorn "
            f"({args.web_workers} workers x {args.web_threads} threads) at {host}."
        )
        children.start(
            "locust",
            [
                python,
                "-m",
                "locust",
                "-f",
                str(ROOT / "bench" / "locustfile.py"),
                "--headless",
                "-u",
                str(args.users),
                "-r",
                str(args.spawn_rate),
                "-t",
                f"{args.duration}s",
                "--host",
                host,
                "--csv",
                prefix,
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            locust_env,
        )
        samples: list[SyncSample] = []
        locust = children.procs["locust"]
        while locust.poll() is None:
            children.check()
            if prepared.sync_connection_id is not None:
                samples.append(sample_sync(prepared.sync_connection_id, started, queued_at))
            meter.sample()
            with contextlib.suppress(subprocess.TimeoutExpired):
                locust.wait(timeout=5)
        elapsed = time.monotonic() - started
        cpu = meter.used()
        if prepared.sync_connection_id is not None:
            samples.append(sample_sync(prepared.sync_connection_id, started, queued_at))
        requests = read_requests(request_log)
        if not requests:
            print(children.tail("locust", 40))
            raise RuntimeError("locust made no request")
        last = samples[-1] if samples else None
        sync_done = (
            queued_at.timestamp() + last.finished_after
            if last is not None and last.finished_after is not None
            else None
        )
        tables = print_report(
            requests,
            begun,
            time.time(),
            sync_done,
            syncing=prepared.sync_connection_id is not None,
        )
        print_failures(prefix)
        print_sync(samples, args)
        print(
            f"\nCPU seconds used during the {elapsed:.0f} s of load (2 cores = {2 * elapsed:.0f}):"
        )
        for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<26} {seconds:>7.1f}")
        if args.json:
            summary = {
                "args": vars(args),
                "tables": tables,
                "sync": [vars(sample) for sample in samples],
                "sync_sessions_per_second": sync_rate(samples),
                "cpu_seconds": cpu,
                "seconds": elapsed,
            }
            Path(args.json).write_text(json.dumps(summary, indent=1, default=str))
        return 0
    except (KeyboardInterrupt, Stop):
        print("\nInterrupted; stopping everything.", file=sys.stderr)
        return 130
    except Exception:
        for name in children.procs:
            print(f"--- last lines of {name} ---\n{children.tail(name)}", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        children.stop_all()
        if sim is not None:
            sim.stop()
        if args.keep_logs:
            print(f"Logs kept in {work}")
        else:
            for path in work.iterdir():
                if not (args.csv and str(path).startswith(args.csv)):
                    path.unlink()
            with contextlib.suppress(OSError):
                work.rmdir()


if __name__ == "__main__":
    sys.exit(main())
