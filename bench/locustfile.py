"""The users of the load test (`bench/load.py` runs this file; it can also run on its own).

Each simulated person signs in, then, between pauses, browses the sessions list (full page,
then later pages through htmx), filters it (by state, by repository, by a word of a title,
each as the htmx request the filter form sends), and opens sessions. While a page is open
the person dwells on it, and the page's live parts poll as htmx makes them poll: every row
that can still change every 5 s, the session page's header and timeline every 3 s, with
the `?v=` / `?after=` addresses that the previous answer carried, until an answer is a
286 (stop polling). A 204 (nothing changed) keeps the same address.

Configuration, from the environment:

- `LOAD_USERS_FILE`: a JSON file `{"usernames": [...], "password": "..."}` (required);
- `LOAD_THINK`: the pause between two page views, `MIN,MAX` seconds (default `1,3`);
- `LOAD_DWELL`: how long a person stays on a page while it polls, `MIN,MAX` (default `5,15`);
- `LOAD_REQUEST_LOG`: a CSV file to which every request is appended (finish time, kind,
  milliseconds, failed), from which `bench/load.py` computes exact percentiles over any
  window of the run.

Request names (the rows of the report) group requests by kind, not by address.
"""

from __future__ import annotations

import csv
import html
import itertools
import json
import os
import random
import re
import time
from typing import Any

from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SESSION_LINK = re.compile(r'<a href="/sessions/(\d+)/" id="session-link-\d+">([^<]*)</a>')
ROW_POLL = re.compile(r'<tr id="(session-\d+)"[^>]*?hx-get="([^"]+)" hx-trigger="every 5s"')
HEADER_POLL = re.compile(r'<header id="(session-\d+-header)"[^>]*?hx-get="([^"]+)"', re.S)
TIMELINE_POLL = re.compile(r'<li id="(timeline-poll-\d+)"[^>]*?hx-get="([^"]+)"', re.S)
REPO_OPTION = re.compile(r'<option value="([^"]+/[^"]+)"')
NEXT_PAGE = re.compile(r'hx-get="([^"]*page=\d+)"[^>]*rel="next"')
STATES = (
    "QUEUED",
    "PLANNING",
    "AWAITING_PLAN_APPROVAL",
    "AWAITING_USER_FEEDBACK",
    "IN_PROGRESS",
    "PAUSED",
    "FAILED",
    "COMPLETED",
)
WORD = re.compile(r"[A-Za-z]{5,}")

ROW_EVERY = 5.0
DETAIL_EVERY = 3.0


def _pair(name: str, default: str) -> tuple[float, float]:
    low, _, high = os.environ.get(name, default).partition(",")
    return float(low), float(high or low)


def _load_users() -> tuple[list[str], str]:
    path = os.environ.get("LOAD_USERS_FILE")
    if not path:
        raise SystemExit("Set LOAD_USERS_FILE to a JSON file of usernames and a password.")
    with open(path) as handle:
        data = json.load(handle)
    return list(data["usernames"]), str(data["password"])


USERNAMES, PASSWORD = _load_users()
NEXT_USERNAME = itertools.cycle(USERNAMES)
THINK = _pair("LOAD_THINK", "1,3")
DWELL = _pair("LOAD_DWELL", "5,15")


if REQUEST_LOG := os.environ.get("LOAD_REQUEST_LOG"):
    _log_file = open(REQUEST_LOG, "a", newline="", buffering=1)  # noqa: SIM115 - for the run
    _log = csv.writer(_log_file)

    @events.request.add_listener
    def _record(name: str, response_time: float, exception: Any, **_: Any) -> None:
        _log.writerow((f"{time.time():.3f}", name, f"{response_time:.1f}", int(bool(exception))))


class Poller:
    """One polled element: its htmx target id, its current address, when it fires next."""

    def __init__(self, target: str, url: str, every: float, name: str) -> None:
        self.target = target
        self.url = html.unescape(url)
        self.every = every
        self.name = name
        self.due = time.monotonic() + every
        self.stopped = False


class PortalUser(FastHttpUser):
    """A person of the team, using the portal in a browser with htmx."""

    wait_time = between(*THINK)
    # A browser keeps a handful of connections to one host; one is enough for one person's
    # serial requests and keeps gunicorn's thread count the limit that is measured.
    concurrency = 1
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self.username = next(NEXT_USERNAME)
        self.session_ids: list[int] = []
        self.titles: list[str] = []
        self.repos: list[str] = []
        self.current_url = "/sessions/"
        self.sign_in()

    # --- helpers ---------------------------------------------------------------------

    def hx(self, target: str, trigger: str | None = None) -> dict[str, str]:
        headers = {
            "HX-Request": "true",
            "HX-Target": target,
            "HX-Current-URL": (self.host or "") + self.current_url,
        }
        if trigger:
            headers["HX-Trigger"] = trigger
        return headers

    def get(self, url: str, name: str, headers: dict[str, str] | None = None) -> Any:
        """GET that counts a non-2xx answer (other than htmx's 286) as a failure, and so
        does the sign-in page where a page was asked for (then it signs in again).

        HTTP 0 is locust's word for no answer: a refused or reset connection, or no answer
        within `network_timeout` (a person would have given up by then too)."""
        signed_out = False
        with self.client.get(url, name=name, headers=headers, catch_response=True) as response:
            if response.status_code not in (200, 204, 286):
                response.failure(f"HTTP {response.status_code}")
            elif response.status_code == 200 and not response.text:
                response.failure("empty body")
            elif name != "login form" and 'id="id_password"' in (response.text or ""):
                response.failure("signed out: answered with the sign-in page")
                signed_out = True
        if signed_out:
            self.sign_in()
        return response

    def sign_in(self) -> None:
        """Sign in, trying again after a pause as a person would, until it works."""
        while not self.login():
            time.sleep(random.uniform(*THINK))

    def login(self) -> bool:
        page = self.get("/accounts/login/", "login form")
        match = CSRF_FIELD.search(page.text or "")
        if not match:
            return False
        with self.client.post(
            "/accounts/login/",
            data={
                "csrfmiddlewaretoken": match.group(1),
                "username": self.username,
                "password": PASSWORD,
                "next": "/sessions/",
            },
            name="sign in",
            catch_response=True,
        ) as response:
            # The client follows the redirect; signed in means we land on the list.
            if response.status_code != 200 or 'id="session-results"' not in (response.text or ""):
                response.failure(f"sign-in failed (HTTP {response.status_code})")
                return False
            self.remember_list(response.text)
            return True

    def remember_list(self, text: str) -> list[Poller]:
        """Keep what the list shows (ids, titles, repositories); return its row pollers."""
        links = SESSION_LINK.findall(text)
        if links:
            self.session_ids = [int(pk) for pk, _ in links]
            self.titles = [html.unescape(title) for _, title in links]
        repos = REPO_OPTION.findall(text)
        if repos:
            self.repos = [html.unescape(r) for r in repos]
        return [
            Poller(target, url, ROW_EVERY, "poll row (htmx)")
            for target, url in ROW_POLL.findall(text)
        ]

    def dwell(self, pollers: list[Poller]) -> None:
        """Stay on the page for a while, firing each live poller when it is due."""
        leave = time.monotonic() + random.uniform(*DWELL)
        while True:
            live = [p for p in pollers if not p.stopped]
            due = min((p.due for p in live), default=leave)
            if due >= leave:
                self.wait_until(leave)
                return
            self.wait_until(due)
            for poller in live:
                if poller.due <= time.monotonic():
                    self.fire(poller)

    def wait_until(self, moment: float) -> None:
        delay = moment - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # gevent-patched: yields to the other users

    def fire(self, poller: Poller) -> None:
        response = self.get(poller.url, poller.name, headers=self.hx(poller.target, poller.target))
        poller.due = time.monotonic() + poller.every
        if response.status_code == 286 or response.status_code >= 400:
            poller.stopped = True
            return
        if response.status_code == 204:
            return
        # 200: the element was swapped for a new one, whose own address polls next.
        pattern = {"poll row (htmx)": ROW_POLL, "poll header (htmx)": HEADER_POLL}.get(
            poller.name, TIMELINE_POLL
        )
        for target, url in pattern.findall(response.text or ""):
            if target == poller.target:
                poller.url = html.unescape(url)
                return
        poller.stopped = True

    def results(self, query: str, name: str, trigger: str = "filters") -> None:
        """An htmx request of the filter form or the pager, then dwell on the rows."""
        response = self.get(
            "/sessions/?" + query, name, headers=self.hx("session-results", trigger)
        )
        if response.status_code == 200:
            self.current_url = "/sessions/?" + query
            self.dwell(self.remember_list(response.text or ""))

    # --- what people do ----------------------------------------------------------------

    @task(3)
    def browse_list(self) -> None:
        response = self.get("/sessions/", "list page")
        self.current_url = "/sessions/"
        if response.status_code != 200:
            return
        text = response.text or ""
        self.dwell(self.remember_list(text))
        nxt = NEXT_PAGE.search(text)
        if nxt and random.random() < 0.5:
            query = html.unescape(nxt.group(1)).lstrip("?")
            self.results(query, "list next page (htmx)", trigger="")

    @task(2)
    def filter_by_state(self) -> None:
        states = random.sample(STATES, random.choice((1, 1, 2)))
        self.results("&".join(f"state={s}" for s in states), "filter state (htmx)")

    @task(1)
    def filter_by_repo(self) -> None:
        if not self.repos:
            return
        self.results(f"repo={random.choice(self.repos)}", "filter repository (htmx)")

    @task(1)
    def search(self) -> None:
        words = [w for title in self.titles for w in WORD.findall(title)]
        if not words:
            return
        self.results(f"q={random.choice(words).lower()}", "search (htmx)")

    @task(4)
    def open_session(self) -> None:
        if not self.session_ids:
            return
        pk = random.choice(self.session_ids)
        response = self.get(f"/sessions/{pk}/", "session page")
        if response.status_code != 200:
            return
        self.current_url = f"/sessions/{pk}/"
        text = response.text or ""
        pollers = [
            Poller(target, url, DETAIL_EVERY, "poll header (htmx)")
            for target, url in HEADER_POLL.findall(text)
        ] + [
            Poller(target, url, DETAIL_EVERY, "poll timeline (htmx)")
            for target, url in TIMELINE_POLL.findall(text)
        ]
        self.dwell(pollers)
