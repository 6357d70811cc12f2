"""Soak test of the embedded setup: `make run` under steady use for a long time.

It starts `python manage.py run_portal` (SQLite, the embedded broker, the simulator, the
workers, beat and gunicorn) in a fresh DATA_DIR, signs in as the demo user, and until the
time is up repeats a round through the real pages: launch a session (the launch form, with
its CSRF token), approve a waiting plan from the inbox, send a message to a session it
launched, and read the list, a session page, the inbox and the audit log. The beat's syncs
run all along. At the end it stops the portal with SIGTERM and checks:

- no process crashed or was restarted (the supervisor's log lines), and none is left behind;
- no page answered 5xx and every POST was accepted;
- every action older than the delivery grace was delivered to the simulator (outbox `done`),
  and the demo connection kept syncing;

and prints (and writes with `--report`) the figures: requests, actions delivered, syncs,
restarts and the memory of the process tree at the start and at the end. docs/reliability.md
records a 30-minute run.

    python -m bench.soak --minutes 30     # `make soak`
    python -m bench.soak --minutes 1.5    # the short version of the integration tests
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import requests

from bench.common import free_port

ROOT = Path(__file__).resolve().parent.parent
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CONNECTION_OPTION = re.compile(r'<select name="connection".*?<option value="(\d+)"', re.S)
APPROVE_FORM = re.compile(r'action="/sessions/(\d+)/approve/"')
ACTION_STATUS = re.compile(r"/actions/([0-9a-f-]{36})/")
SESSION_LINK = re.compile(r'href="/sessions/(\d+)/"')
RESTART_LINE = re.compile(r"run_portal: (.+) exited with code (-?\d+)")
# An action enqueued this recently may still be on its way when the run ends.
DELIVERY_GRACE_SECONDS = 90


@dataclass
class Figures:
    minutes: float = 0.0
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    server_errors: int = 0
    rejected_posts: list[str] = field(default_factory=list)
    launches: int = 0
    approvals: int = 0
    messages: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    undelivered: int = 0
    syncs_seen: int = 0
    restarts: list[str] = field(default_factory=list)
    leftover_processes: int = 0
    rss_start_mb: float = 0.0
    # After the first tenth of the run (a minute at least): workers and caches warmed up.
    rss_warm_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_peak_mb: float = 0.0
    failures: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "30"))
    )
    parser.add_argument("--round-seconds", type=float, default=10.0, help="Pause between rounds.")
    parser.add_argument("--speed", type=float, default=10.0, help="The simulator's speed.")
    parser.add_argument("--data-dir", help="DATA_DIR of the run (default: a new temporary one).")
    parser.add_argument("--report", help="Write the figures as JSON to this file.")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.round_seconds <= 0 or args.speed <= 0:
        parser.error("--minutes, --round-seconds and --speed must be positive")
    return args


class Portal:
    """`run_portal` in a process of its own, with its log in DATA_DIR."""

    def __init__(self, data_dir: Path, speed: float) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.sim_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "run_portal.log"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.pop("JULES_API_KEY", None)
        env.pop("JULES_API_KEY_FILE", None)
        env.update(DATA_DIR=str(data_dir), LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
        env.setdefault("DJANGO_SETTINGS_MODULE", "julesweb.settings")
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - open for the whole run
        command = [
            sys.executable,
            "manage.py",
            "run_portal",
            "--port",
            str(self.port),
            "--sim-port",
            str(self.sim_port),
            "--sim-speed",
            str(speed),
        ]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        password_file = self.data_dir / "demo_login"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"run_portal exited early:\n{self.tail()}")
            with contextlib.suppress(requests.RequestException):
                if (
                    password_file.exists()
                    and requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
                ):
                    return password_file.read_text().strip()
            time.sleep(0.5)
        raise SystemExit(f"run_portal was not ready in {timeout:.0f} s:\n{self.tail()}")

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss_mb(self) -> float:
        total = 0
        for proc in self.tree():
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total / 2**20

    def restarts(self) -> list[str]:
        text = self.log_path.read_text(errors="replace")
        return [f"{m.group(1)} (code {m.group(2)})" for m in RESTART_LINE.finditer(text)]

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the number of processes left behind."""
        tree = self.tree()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        time.sleep(1)
        self.log.close()
        left = [p for p in tree[1:] if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        return len(left)

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Person:
    """The demo user in a browser: signs in, then uses the pages with their CSRF tokens."""

    def __init__(self, url: str, figures: Figures) -> None:
        self.url = url
        self.http = requests.Session()
        self.figures = figures
        self.launched: list[int] = []
        self.action_ids: list[str] = []

    def _count(self, response: requests.Response) -> requests.Response:
        self.figures.requests += 1
        key = str(response.status_code)
        self.figures.statuses[key] = self.figures.statuses.get(key, 0) + 1
        if response.status_code >= 500:
            self.figures.server_errors += 1
            self.figures.failures.append(f"{response.status_code} from {response.url}")
        return response

    def get(self, path: str) -> requests.Response:
        return self._count(self.http.get(self.url + path, timeout=30))

    def post(self, path: str, data: dict[str, Any], referer: str) -> requests.Response:
        page = self.get(referer)
        token = CSRF_FIELD.search(page.text)
        if token is None:
            raise RuntimeError(f"no CSRF token on {referer}")
        data = {"csrfmiddlewaretoken": token.group(1), **data}
        headers = {"Referer": self.url + referer}
        response = self._count(
            self.http.post(
                self.url + path, data=data, headers=headers, timeout=30, allow_redirects=False
            )
        )
        if response.status_code not in (200, 302, 303):
            self.figures.rejected_posts.append(f"{path}: {response.status_code}")
        return response

    def sign_in(self, password: str) -> None:
        response = self.post(
            "/accounts/login/", {"username": "demo", "password": password}, "/accounts/login/"
        )
        if response.status_code != 302:
            raise SystemExit(f"could not sign in as demo: HTTP {response.status_code}")

    def launch(self, number: int) -> None:
        form = self.get("/sessions/new")
        connection = CONNECTION_OPTION.search(form.text)
        if connection is None:
            raise RuntimeError("the launch form offers no connection")
        data = {
            "connection": connection.group(1),
            "prompt": f"Soak round {number}: tidy the logging setup",
            "require_plan_approval": "on",
        }
        response = self.post("/sessions/new", data, "/sessions/new")
        if response.status_code == 302 and (
            match := ACTION_STATUS.search(response.headers["Location"])
        ):
            self.action_ids.append(match.group(1))
            self.figures.launches += 1

    def approve_one(self) -> None:
        inbox = self.get("/approvals/")
        waiting = APPROVE_FORM.findall(inbox.text)
        if waiting:
            pk = int(waiting[0])
            self.post(f"/sessions/{pk}/approve/", {"next": "/approvals/"}, "/approvals/")
            self.figures.approvals += 1
            if pk not in self.launched:
                self.launched.append(pk)

    def message_one(self, number: int) -> None:
        if not self.launched:
            return
        pk = self.launched[number % len(self.launched)]
        page = f"/sessions/{pk}/"
        self.post(f"{page}message/", {"prompt": f"Soak note {number}: keep going"}, page)
        self.figures.messages += 1

    def browse(self) -> None:
        listing = self.get("/sessions/")
        ids = SESSION_LINK.findall(listing.text)
        if ids:
            self.get(f"/sessions/{ids[0]}/")
        self.get("/audit/")
        self.get("/teams/")


def outbox_census(db: Path) -> tuple[dict[str, int], int]:
    """Actions by status, and those past the grace that are still not delivered."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=20)) as conn:
        rows = conn.execute(
            "SELECT status, COUNT(*) FROM sessions_app_outboxaction GROUP BY status"
        ).fetchall()
        late = conn.execute(
            "SELECT COUNT(*) FROM sessions_app_outboxaction WHERE status != 'done' "
            "AND created_at < datetime('now', ?)",
            (f"-{DELIVERY_GRACE_SECONDS} seconds",),
        ).fetchone()[0]
    return dict(rows), int(late)


def sync_stamp(db: Path) -> str | None:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=20)) as conn:
        row = conn.execute(
            "SELECT MAX(last_sync_started_at) FROM sessions_app_julesconnection"
        ).fetchone()
    return row[0] if row else None


def soak(args: argparse.Namespace) -> Figures:
    figures = Figures(minutes=args.minutes)
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="jules-soak-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    portal = Portal(data_dir, args.speed)
    stamps: set[str] = set()
    try:
        password = portal.wait_ready()
        person = Person(portal.url, figures)
        person.sign_in(password)
        figures.rss_start_mb = portal.rss_mb()
        started = time.monotonic()
        deadline = started + args.minutes * 60
        warm_at = started + max(60.0, args.minutes * 6)
        number = 0
        while time.monotonic() < deadline:
            number += 1
            if portal.process.poll() is not None:
                figures.failures.append(f"run_portal exited with {portal.process.returncode}")
                break
            # One round: a launch every other round, an approval and a message every round.
            try:
                if number % 2 == 1:
                    person.launch(number)
                person.approve_one()
                person.message_one(number)
                person.browse()
            except requests.RequestException as exc:
                figures.failures.append(f"round {number}: {exc}")
            if stamp := sync_stamp(data_dir / "db.sqlite3"):
                stamps.add(stamp)
            rss = portal.rss_mb()
            figures.rss_peak_mb = max(figures.rss_peak_mb, rss)
            if not figures.rss_warm_mb and time.monotonic() >= warm_at:
                figures.rss_warm_mb = rss
            time.sleep(min(args.round_seconds, max(0.0, deadline - time.monotonic())))
        figures.rss_end_mb = portal.rss_mb()
        # Let the actions of the last rounds arrive before counting.
        time.sleep(min(30, DELIVERY_GRACE_SECONDS))
        figures.actions, figures.undelivered = outbox_census(data_dir / "db.sqlite3")
        figures.syncs_seen = len(stamps)
    finally:
        figures.restarts = portal.restarts()
        figures.leftover_processes = portal.stop()
    if figures.restarts:
        figures.failures.append(f"restarted: {', '.join(figures.restarts)}")
    if figures.leftover_processes:
        figures.failures.append(f"{figures.leftover_processes} process(es) left after SIGTERM")
    if figures.rejected_posts:
        figures.failures.append(f"rejected POSTs: {figures.rejected_posts[:5]}")
    if figures.undelivered:
        figures.failures.append(f"{figures.undelivered} action(s) not delivered")
    if figures.launches == 0 or figures.actions.get("done", 0) == 0:
        figures.failures.append("no action was delivered at all")
    # Beat asks for a sync every few seconds; a run of a minute or more must see several.
    if figures.syncs_seen < 2:
        figures.failures.append(f"the connection synced only {figures.syncs_seen} time(s)")
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = soak(args)
    summary = asdict(figures)
    summary["rss_growth_mb"] = round(figures.rss_end_mb - figures.rss_start_mb, 1)
    if figures.rss_warm_mb:
        summary["rss_growth_after_warmup_mb"] = round(figures.rss_end_mb - figures.rss_warm_mb, 1)
    for key in ("rss_start_mb", "rss_warm_mb", "rss_end_mb", "rss_peak_mb"):
        summary[key] = round(summary[key], 1)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.report:
        Path(args.report).write_text(text + "\n")
    if figures.failures:
        print("SOAK FAILED:", *figures.failures, sep="\n  ", file=sys.stderr)
        return 1
    print(
        f"Soak passed: {figures.requests} requests, {Counter(figures.actions)['done']} actions "
        f"delivered, {figures.syncs_seen} syncs seen, no restarts, memory "
        f"{figures.rss_start_mb:.0f} -> {figures.rss_end_mb:.0f} MB."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
