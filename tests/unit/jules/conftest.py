"""A scripted HTTP server on loopback, and a fake clock, for the client's unit tests.

Each test queues the replies it wants (status, body, headers, a delay, a cut-off body or
a dropped connection) and reads back what the client sent. No new packages: the standard
library's `ThreadingHTTPServer` runs in a thread for the length of one test.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from jules.client import JulesClient

API_KEY = "AIzaSy-test-key-5f3c9e"


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict or list is sent as JSON; str and bytes as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_length: int | None = None  # more than the body: the answer is cut off
    drop: bool = False  # close the connection without any answer
    content_type: str = "application/json; charset=UTF-8"

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Seen:
    method: str
    path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes
    peer_port: int

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.raw_query, keep_blank_values=True)

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class ScriptedServer:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.handler: Callable[[Seen], Reply] | None = None
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.script = self
        self.root = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"{self.root}/v1alpha"
        # A short poll interval keeps shutdown (once per test) from costing half a second.
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def queue(self, *replies: Reply) -> None:
        with self.lock:
            self.replies.extend(replies)

    def answer(self, handler: Callable[[Seen], Reply]) -> None:
        """Answer every request not covered by a queued reply with `handler`."""
        self.handler = handler

    def next_reply(self, seen: Seen) -> Reply:
        with self.lock:
            self.seen.append(seen)
            if self.replies:
                return self.replies.popleft()
        if self.handler is not None:
            return self.handler(seen)
        return Reply(200, {})

    @property
    def last(self) -> Seen:
        return self.seen[-1]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    script: ScriptedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a read timeout) leaves a broken pipe behind; that is the
        # scenario under test, not a failure of the server.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        seen = Seen(
            method=self.command,
            path=parts.path,
            raw_query=parts.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            peer_port=self.client_address[1],
        )
        reply = self.server.script.next_reply(seen)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            self.close_connection = True
            return
        data = reply.payload()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(reply.content_length or len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        if reply.content_length:
            self.close_connection = True

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _any


class FakeTime:
    """A clock that moves only when the client sleeps, recording every wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    try:
        yield scripted
    finally:
        scripted.stop()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(server: ScriptedServer, fake_time: FakeTime) -> Callable[..., JulesClient]:
    """A client of the scripted server on the fake clock; keyword arguments override."""

    def make(**overrides: Any) -> JulesClient:
        options: dict[str, Any] = {
            "sleep": fake_time.sleep,
            "clock": fake_time.clock,
            "read_timeout": 5.0,
        }
        options.update(overrides)
        api_key = options.pop("api_key", API_KEY)
        base_url = options.pop("base_url", server.url)
        return JulesClient(api_key, base_url, **options)

    return make


@pytest.fixture
def client(make_client: Callable[..., JulesClient]) -> JulesClient:
    return make_client()
