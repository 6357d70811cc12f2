"""The sessions list's latency against a trivial view on the same server. Target: ratio <= 3.

    python -m bench.list_page [--sizes 1000,10000,100000] [--rounds 60]

For each size it seeds that many cached sessions (`bench.seed`, three activities each, two
teams, five users) into PostgreSQL (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/jules_bench), starts the portal under gunicorn with
`bench.settings` (the portal's settings plus `/bench/trivial/`, a view that answers a few
bytes through the same middleware stack, sign-in included), signs in as an admin who sees
every session, and requests, round after round and interleaved,

- the trivial view,
- the list's first page, a deep page (the last one), a filtered page (two states and a
  repository) and a search (a word in titles and prompts), the same address each round
  ("warm": what a team reloading or paging the list gets from the list's caches);
- the first and the last page right after a sync wrote a session (the bench updates one
  row's title and `synced_at` as a pass that brought new activities would), so that the
  rows are read afresh, and the first page right after a change of state (the same, plus
  its transition), so that the counts are too: what the first person to look after each
  change waits;
- the first page and the search with a filter no request used before (a "created from"
  date before every session, a day later each round), so that the counts, the rows and
  the filter column are all computed afresh: the worst case,

then prints the p50 and p95 of each, and each one's p50 and p95 divided by the trivial
view's (the requests after a sync write are a second phase, with its own trivial ones). The first few rounds warm the server up and are not counted. The list's caches
are in each process' memory either way; BENCH_REDIS_URL puts the shared cache (the
per-team stamps, one round trip a request) in Redis, as in production.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import free_port

ROOT = Path(__file__).resolve().parent.parent
WARM_UP = 5
AFTER_SYNC = ", after a sync write"
AFTER_STATE = ", after a change of state"
# A "created from" date before every seeded session, a day later each round: a filter
# no request used before, that keeps every session.
COLD_FROM = dt.date(1990, 1, 1)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def _start_server(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "LOG_LEVEL": "ERROR",
    }
    env.pop("REDIS_URL", None)
    if os.environ.get("BENCH_REDIS_URL"):
        env["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
    gunicorn = Path(sys.executable).with_name("gunicorn")
    return subprocess.Popen(
        [
            str(gunicorn),
            "julesweb.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )


def _wait_until_up(base: str, server: subprocess.Popen[bytes]) -> None:
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("gunicorn exited before answering")
        try:
            requests.get(f"{base}/healthz", timeout=10)
            return
        except requests.RequestException:
            # Not listening yet, or a first answer slowed by a busy machine.
            time.sleep(0.2)
    raise SystemExit("gunicorn did not answer within 60 s")


def _sign_in(base: str, username: str, password: str) -> object:
    import requests

    http = requests.Session()
    http.get(f"{base}/accounts/login/", timeout=30).raise_for_status()
    answer = http.post(
        f"{base}/accounts/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": http.cookies["csrftoken"],
        },
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=30,
    )
    answer.raise_for_status()
    if "sessionid" not in http.cookies:
        raise SystemExit(f"could not sign in as {username}")
    return http


def _sync_writes_a_session(round_number: int, *, state_changed: bool) -> None:
    """Change one session as a sync pass does: new data and a fresh `synced_at`, and for a
    change of state also its transition."""
    from django.db import transaction
    from django.utils import timezone

    from sessions_app.models import Session, SessionTransition

    now = timezone.now()
    with transaction.atomic():
        session = Session.objects.order_by("-id").first()
        assert session is not None
        Session.objects.filter(pk=session.pk).update(
            synced_at=now, title=f"Changed by the sync, round {round_number}"
        )
        if state_changed:
            SessionTransition.objects.create(
                team_id=session.team_id,
                session=session,
                kind=SessionTransition.Kind.STATE_CHANGED,
                observed_at=now,
            )


def _measure(
    http: object, base: str, targets: dict[str, str], rounds: int
) -> dict[str, list[float]]:
    import requests

    assert isinstance(http, requests.Session)
    timings: dict[str, list[float]] = {name: [] for name in targets}
    for round_number in range(WARM_UP + rounds):
        for index, (name, path) in enumerate(targets.items()):
            if "{day}" in path:
                # Each cold address its own dates, so that none warms another's cache.
                day = COLD_FROM + dt.timedelta(days=round_number + 1000 * index)
                path = path.format(day=day)
            if name.endswith((AFTER_SYNC, AFTER_STATE)):
                _sync_writes_a_session(round_number, state_changed=name.endswith(AFTER_STATE))
            started = time.perf_counter()
            answer = http.get(base + path, timeout=60, allow_redirects=False)
            elapsed = time.perf_counter() - started
            if answer.status_code != 200:
                raise SystemExit(f"{path} answered {answer.status_code}")
            if round_number >= WARM_UP:
                timings[name].append(elapsed)
    return timings


def run(
    size: int, rounds: int, workers: int, url: str
) -> list[tuple[str, float, float, float, float]]:
    from bench.seed import seed
    from sessions_app.models import Session

    seeded = seed(size, activities_per_session=3, teams=2, users=5)
    visible = Session.objects.filter(archived=False).count()
    last_page = max(1, math.ceil(visible / 50))
    repo = seeded.repos[0]
    trivial = {"trivial": "/bench/trivial/"}
    # Two phases, each interleaved with the trivial view: the sync writes of the second
    # would leave no request of the first warm.
    phases = [
        {
            **trivial,
            "first page": "/sessions/",
            f"page {last_page} (last)": f"/sessions/?page={last_page}",
            "filtered": f"/sessions/?state=COMPLETED&state=FAILED&repo={repo}",
            "search": "/sessions/?q=rounding",
            "first page, new filter": "/sessions/?created_after={day}",
            "search, new filter": "/sessions/?q=rounding&created_after={day}",
        },
        {
            **trivial,
            "first page" + AFTER_SYNC: "/sessions/",
            f"page {last_page}" + AFTER_SYNC: f"/sessions/?page={last_page}",
            "first page" + AFTER_STATE: "/sessions/",
        },
    ]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start_server(url, port, workers)
    rows = []
    try:
        _wait_until_up(base, server)
        http = _sign_in(base, seeded.usernames[0], seeded.password)
        for number, targets in enumerate(phases):
            timings = _measure(http, base, targets, rounds)
            floor50 = statistics.median(timings["trivial"])
            floor95 = _percentile(timings["trivial"], 0.95)
            for name, values in timings.items():
                if name == "trivial" and number:
                    name = "trivial (second phase)"
                p50, p95 = statistics.median(values), _percentile(values, 0.95)
                rows.append((name, p50 * 1000, p95 * 1000, p50 / floor50, p95 / floor95))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="List page latency against a trivial view.")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=60, help="measured requests per URL")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers")
    args = parser.parse_args()
    from bench.common import setup_django

    url = setup_django()
    print("| sessions | request | p50 ms | p95 ms | p50 ratio | p95 ratio |")
    print("|---:|---|---:|---:|---:|---:|")
    for size in [int(s) for s in args.sizes.split(",")]:
        for name, p50, p95, r50, r95 in run(size, args.rounds, args.workers, url):
            print(f"| {size} | {name} | {p50:.1f} | {p95:.1f} | {r50:.2f} | {r95:.2f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
