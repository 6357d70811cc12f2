"""The users of the load test (`bench/load.py` runs this file; it can also run on its own).

Each simulated person signs in, then, between pauses, browses the sessions list (full page,
then later pages through htmx), filters it (by state, by repository, by a word of a title,
each as the htmx request the filter form sends), and opens sessions. While a page is open
the person dwells on it, and the page polls as htmx and `static/js/portal.js` make it poll:
the list page once every 5 s for all its live rows (each row's id and digest, read from its
`data-live`), the session page once every 3 s for its header, timeline and pending list
(the digests and last activity its hidden fields hold). An answer of 200 swaps in the
changed parts, whose new digests the next poll sends; a 204 (nothing changed) sends the
same again; a 286 (stop polling) ends the poll.

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
# The list's links, as `templates/sessions_app/session_rows.jinja` writes them.
SESSION_LINK = re.compile(
    r'<a href="/sessions/(\d+)/" id="session-link-\d+" title="[^"]*">([^<]*)</a>'
)
ROWS_POLLER = re.compile(r'<div id="(session-live-rows)"[^>]*?hx-get="([^"]+)"', re.S)
ROW = re.compile(r'<tr id="session-(\d+)"([^>]*)>')
LIVE = re.compile(r'data-live="(\w+)"')
SESSION_POLLER = re.compile(r'<div id="(session-\d+-live)"[^>]*?hx-get="([^"]+)"', re.S)
# The hidden fields the session page's poll sends (its hx-include).
SESSION_FIELD = re.compile(
    r'name="(v|after|p)" value="(\w+)" id="session-\d+-(?:header-digest|after|pending-digest)"'
)
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
    """A page's one poll: its htmx target id, its address, what it sends, when it fires."""

    name = ""

    def __init__(self, target: str, url: str, every: float) -> None:
        self.target = target
        self.url = html.unescape(url)
        self.every = every
        self.due = time.monotonic() + every
        self.stopped = False

    def params(self) -> dict[str, str]:
        raise NotImplementedError

    def absorb(self, text: str) -> None:
        """Take in what a 200 answer swapped into the page."""
        raise NotImplementedError


class RowsPoller(Poller):
    """The list page's poll: every live row's id and the digest it shows (portal.js)."""

    name = "poll live rows (htmx)"

    def __init__(self, target: str, url: str, every: float, page: str) -> None:
        super().__init__(target, url, every)
        self.rows: dict[str, str] = {}
        self.absorb(page)

    def params(self) -> dict[str, str]:
        return {"rows": ",".join(f"{pk}:{v}" for pk, v in list(self.rows.items())[:100])}

    def absorb(self, text: str) -> None:
        # A row that can no longer change comes without `data-live` and drops out.
        for pk, attributes in ROW.findall(text):
            if live := LIVE.search(attributes):
                self.rows[pk] = live.group(1)
            else:
                self.rows.pop(pk, None)
        if not self.rows:
            self.stopped = True


class SessionPoller(Poller):
    """The session page's poll: its header's digest, last activity and pending digest."""

    name = "poll session (htmx)"

    def __init__(self, target: str, url: str, every: float, page: str) -> None:
        super().__init__(target, url, every)
        self.fields: dict[str, str] = {}
        self.absorb(page)

    def params(self) -> dict[str, str]:
        return dict(self.fields)

    def absorb(self, text: str) -> None:
        self.fields.update(SESSION_FIELD.findall(text))


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

    def get(
        self,
        url: str,
        name: str,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """GET that counts a non-2xx answer (other than htmx's 286) as a failure, and so
        does the sign-in page where a page was asked for (then it signs in again).

        HTTP 0 is locust's word for no answer: a refused or reset connection, or no answer
        within `network_timeout` (a person would have given up by then too)."""
        signed_out = False
        with self.client.get(
            url, name=name, headers=headers, params=params, catch_response=True
        ) as response:
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
        """Keep what the list shows (ids, titles, repositories); return its one poller."""
        links = SESSION_LINK.findall(text)
        if links:
            self.session_ids = [int(pk) for pk, _ in links]
            self.titles = [html.unescape(title) for _, title in links]
        repos = REPO_OPTION.findall(text)
        if repos:
            self.repos = [html.unescape(r) for r in repos]
        return [
            RowsPoller(target, url, ROW_EVERY, text) for target, url in ROWS_POLLER.findall(text)
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
        response = self.get(
            poller.url,
            poller.name,
            headers=self.hx(poller.target, poller.target),
            params=poller.params(),
        )
        poller.due = time.monotonic() + poller.every
        if response.status_code == 200:
            # The changed parts were swapped in; the next poll sends their digests.
            poller.absorb(response.text or "")
        if response.status_code == 286 or response.status_code >= 400:
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
        pollers: list[Poller] = [
            SessionPoller(target, url, DETAIL_EVERY, text)
            for target, url in SESSION_POLLER.findall(text)
        ]
        self.dwell(pollers)
