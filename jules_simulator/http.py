"""The simulator's HTTP surface: routing, auth, fault playback and the `/_sim/` admin API."""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from jules_simulator import validation
from jules_simulator.api import Api
from jules_simulator.errors import (
    MISSING_KEY_BODY,
    SimError,
    for_status,
    invalid,
    not_found,
)
from jules_simulator.faults import FaultRule
from jules_simulator.model import Account, dumps
from jules_simulator.world import World

JSON = "application/json; charset=UTF-8"
PREFIX = "/v1alpha"
VERBS = {"approvePlan", "sendMessage", "archive", "unarchive"}
SESSION = re.compile(r"^/sessions/([^/:]+)$")
SESSION_VERB = re.compile(r"^/sessions/([^/:]+):([A-Za-z]+)$")
ACTIVITIES = re.compile(r"^/sessions/([^/:]+)/activities$")
ACTIVITY = re.compile(r"^/sessions/([^/:]+)/activities/([^/:]+)$")
SOURCE = re.compile(r"^/(sources/[^:]+)$")
# Google front ends' headers; no rate-limit headers: docs/jules-api.md#retry-after
STANDARD_HEADERS = (
    ("Vary", "Origin"),
    ("Vary", "X-Origin"),
    ("Vary", "Referer"),
    ("X-XSS-Protection", "0"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("X-Content-Type-Options", "nosniff"),
)
GOOGLE_404_HTML = (
    b"<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1"
    b"</title>\n  <p><b>404.</b> <ins>That\xe2\x80\x99s an error.</ins>\n  <p>The requested URL "
    b"was not found on this server.  <ins>That\xe2\x80\x99s all we know.</ins>\n"
)
BAD_GATEWAY_HTML = (
    b"<!DOCTYPE html>\n<html lang=en>\n  <title>Error 502 (Server Error)!!1</title>\n"
    b"  <p><b>502.</b> <ins>That\xe2\x80\x99s an error.</ins>\n  <p>The server encountered a "
    b"temporary error and could not complete your request.<p>Please try again in 30 seconds."
    b"  <ins>That\xe2\x80\x99s all we know.</ins>\n"
)


@dataclass(frozen=True)
class Route:
    operation: str
    params: tuple[str, ...] = ()


def match_route(method: str, path: str) -> Route | None:
    """The operation a method and path (after `/v1alpha`) name; None means 404."""
    if path == "/sessions":
        if method == "GET":
            return Route("sessions.list")
        return Route("sessions.create") if method == "POST" else None
    if path == "/sources":
        return Route("sources.list") if method == "GET" else None
    if match := SESSION.match(path):
        if method == "GET":
            return Route("sessions.get", match.groups())
        return Route("sessions.delete", match.groups()) if method == "DELETE" else None
    if match := SESSION_VERB.match(path):
        verb = match.group(2)
        if method == "POST" and verb in VERBS:
            return Route(f"sessions.{verb}", (match.group(1),))
        return None
    if match := ACTIVITIES.match(path):
        return Route("sessions.activities.list", match.groups()) if method == "GET" else None
    if match := ACTIVITY.match(path):
        return Route("sessions.activities.get", match.groups()) if method == "GET" else None
    if (match := SOURCE.match(path)) and method == "GET" and not path.endswith("/"):
        return Route("sources.get", match.groups())
    return None


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


def error_answer(error: SimError) -> Answer:
    return Answer(error.code, dumps(error.body()), headers=tuple(error.headers.items()))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ESF"
    sys_version = ""
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm
    # and the client's delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server: SimServer
    answered = False

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        return  # Quiet: tests and benchmarks read `/_sim/requests` instead.

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    def do_PATCH(self) -> None:
        self.dispatch("PATCH")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_HEAD(self) -> None:
        self.dispatch("HEAD")

    def do_OPTIONS(self) -> None:
        self.dispatch("OPTIONS")

    # --- plumbing -----------------------------------------------------------------------

    @property
    def world(self) -> World:
        return self.server.world

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send(
        self, answer: Answer, *, declared: int | None = None, write: int | None = None
    ) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        for name, value in STANDARD_HEADERS:
            self.send_header(name, value)
        for name, value in answer.headers:
            self.send_header(name, value)
        length = len(answer.body) if declared is None else declared
        self.send_header("Content-Length", str(length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.answered = True
        if self.command != "HEAD":
            self.wfile.write(answer.body if write is None else answer.body[:write])

    def send_json(self, status: int, data: Any) -> None:
        self.send(Answer(status, dumps(data)))

    def dispatch(self, method: str) -> None:
        self.answered = False
        try:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            query = parse_qs(parts.query, keep_blank_values=True)
            try:
                body = self.read_body()
            except ValueError:
                self.close_connection = True  # The stream position is unknown now.
                self.send(error_answer(invalid("Invalid Content-Length or chunked body.")))
                return
            if path == "/_sim" or path.startswith("/_sim/"):
                self.admin(method, path[len("/_sim") :], body)
            elif path.startswith(PREFIX + "/"):
                self.api(method, path[len(PREFIX) :], query, body)
            else:
                self.send(Answer(404, GOOGLE_404_HTML, "text/html; charset=UTF-8"))
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            # A simulator bug: log it loudly, and answer 500 rather than hang the client.
            traceback.print_exc()
            self.close_connection = True
            if not self.answered:
                with contextlib.suppress(OSError):
                    self.send(error_answer(for_status(500)))

    # --- the API ------------------------------------------------------------------------

    def api(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
        route = match_route(method, path)
        key = (self.headers.get("X-Goog-Api-Key") or "").strip() or None
        pending: FaultRule | None = None
        for rule in self.world.pick_faults(method, path, key, route.operation if route else None):
            self.world.count(f"fault.{rule.kind}")
            if rule.kind == "latency":
                # Interruptible, so stopping the simulator never waits for a long sleep.
                self.world.stopping.wait(rule.seconds)
            elif rule.stage == "before":
                self.play(rule, None)
                return
            else:
                pending = rule
        answer = self.answer(route, key, query, body)
        if pending is not None:
            self.play(pending, answer)
        else:
            self.send(answer)

    def answer(
        self, route: Route | None, key: str | None, query: dict[str, list[str]], body: bytes
    ) -> Answer:
        world = self.world
        if route is None:
            world.count("unrouted")
            return error_answer(not_found())
        if key is None:
            world.count("unauthenticated")
            return Answer(401, dumps(MISSING_KEY_BODY))
        try:
            account = world.authenticate(key)
        except SimError as error:
            world.count("unauthenticated")
            return error_answer(error)
        operation = route.operation
        gated = operation in ("sessions.create", "sources.get")
        if gated and account.parallel_create_limit is not None:
            return self.gated(account, route, query, body)
        return self.run(account, route, query, body)

    def gated(
        self, account: Account, route: Route, query: dict[str, list[str]], body: bytes
    ) -> Answer:
        """Beyond N in flight, creates and source lookups 404: docs/jules-api.md#parallel-creates"""
        world = self.world
        with world.lock:
            account.inflight_creates += 1
            in_flight = account.inflight_creates
            if route.operation == "sessions.create":
                account.peak_inflight_creates = max(account.peak_inflight_creates, in_flight)
        try:
            world.stopping.wait(world.config.parallel_create_seconds)
            if in_flight > (account.parallel_create_limit or 0):
                world.count("status.404", account)
                world.count(f"failed.{route.operation}", account)
                world.count(f"parallel_failed.{route.operation}", account)
                return error_answer(not_found("Could not get source."))
            return self.run(account, route, query, body)
        finally:
            with world.lock:
                account.inflight_creates -= 1

    def run(
        self, account: Account, route: Route, query: dict[str, list[str]], body: bytes
    ) -> Answer:
        world, api = self.world, self.server.api
        operation, params = route.operation, route.params
        handlers: dict[str, Callable[[], bytes]] = {
            "sessions.create": lambda: api.create(
                account, body, self.headers.get("X-Sim-Scenario")
            ),
            "sessions.get": lambda: api.get(account, params[0]),
            "sessions.list": lambda: api.list_sessions(account, query),
            "sessions.delete": lambda: api.delete(account, params[0]),
            "sessions.sendMessage": lambda: api.send_message(account, params[0], body),
            "sessions.approvePlan": lambda: api.approve_plan(account, params[0], body),
            "sessions.archive": lambda: api.set_archived(account, params[0], body, True),
            "sessions.unarchive": lambda: api.set_archived(account, params[0], body, False),
            "sessions.activities.list": lambda: api.list_activities(account, params[0], query),
            "sessions.activities.get": lambda: api.get_activity(account, *params),
            "sources.list": lambda: api.list_sources(account, query),
            "sources.get": lambda: api.get_source(account, params[0]),
        }
        try:
            if not operation.endswith(".list"):
                # Only lists have query fields: docs/jules-api.md#query-parameters
                validation.check_query(query, {})
            with world.lock:
                world.tick(account)
                body = handlers[operation]()
                # Only operations that took effect count under their name, so a test can
                # tell "refused" (a 400, a fault) from "done".
                world.count(operation, account)
                return Answer(200, body)
        except SimError as error:
            world.count(f"status.{error.code}", account)
            world.count(f"failed.{operation}", account)
            return error_answer(error)

    def play(self, rule: FaultRule, answer: Answer | None) -> None:
        """Answer (or fail to answer) as the rule says; `answer` is the real one, if run."""
        if rule.kind == "status":
            headers: tuple[tuple[str, str], ...] = ()
            if rule.retry_after is not None:
                seconds = max(0, round(rule.retry_after))
                value = (
                    formatdate(time.time() + seconds, usegmt=True)
                    if rule.retry_format == "date"
                    else str(seconds)
                )
                headers = (("Retry-After", value),)
            if rule.status == 502:
                self.send(Answer(502, BAD_GATEWAY_HTML, "text/html; charset=UTF-8", headers))
            else:
                error = for_status(rule.status)
                self.send(Answer(rule.status, dumps(error.body()), headers=headers))
        elif rule.kind == "activities404":
            self.send(error_answer(not_found()))
        elif rule.kind == "malformed":
            text = answer.body if answer is not None else b'{"sessions":[{"name":"sessions/1"}]}'
            self.send(Answer(200, text[: max(1, len(text) // 2)] + b"<!-- cut -->"))
        elif rule.kind == "empty":
            self.send(Answer(200, b""))
        elif rule.kind == "truncate":
            whole = answer or Answer(200, b'{"sessions":[{"name":"sessions/1"}]}')
            self.close_connection = True
            self.send(whole, write=max(1, len(whole.body) // 2))
            self.wfile.flush()
        elif rule.kind == "reset":
            self.reset_connection()

    def reset_connection(self) -> None:
        """Close with a TCP RST: SO_LINGER with a zero timeout, then close the socket.

        The reader holds a reference to the socket, so it is closed first; the writer does
        not, and stays open for the request loop's final flush."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()

    # --- the admin API ------------------------------------------------------------------

    def admin(self, method: str, path: str, body: bytes) -> None:
        from jules_simulator.admin import handle_admin

        status, data = handle_admin(self.server, method, path.rstrip("/") or "/", body)
        self.send_json(status, data)


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Never wait for handler threads at close: a latency fault may be sleeping in one.
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], world: World) -> None:
        self.world = world
        self.api = Api(world)
        super().__init__(address, Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-answer (timeouts, resets) are expected here; anything
        # else is a simulator bug worth a traceback.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)
