"""A remote that misbehaves on purpose, on loopback: it drips its answer a byte at a time
(in the headers or the body) or sends far more than anyone asked for."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DRIP_SECONDS = 0.05
JSON = b'{"sources": []}'


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen += 1
        # The client giving up is the point.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            getattr(self, "_" + self.server.mode.replace("-", "_"))()

    def _drip(self, data: bytes) -> None:
        for index in range(len(data)):
            if self.server.stopping.is_set():
                return
            self.wfile.write(data[index : index + 1])
            self.wfile.flush()
            time.sleep(DRIP_SECONDS)

    def _ok(self) -> None:
        self._head(200, len(JSON))
        self.wfile.write(JSON)

    def _head(self, status: int, length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _drip_body(self) -> None:
        body = b'{"sources": [], "padding": "' + b"x" * 10_000 + b'"}'
        self._head(200, len(body))
        self._drip(body)

    def _drip_headers(self) -> None:
        self._drip(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"y" * 10_000 + b"\r\n\r\n{}")

    def _huge(self) -> None:
        # Says how big it is, and would send it.
        size = 200 * 1024 * 1024
        self._head(200, size)
        self._flood(size)

    def _huge_chunked(self) -> None:
        # Says nothing of its size and never ends.
        self._head(200, None)
        chunk = b"x" * 65536
        while not self.server.stopping.is_set():
            self.wfile.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))

    def _huge_error(self) -> None:
        self._head(500, None)
        chunk = b"<html>" + b"x" * 65536
        while not self.server.stopping.is_set():
            self.wfile.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))

    def _flood(self, size: int) -> None:
        chunk = b"x" * 65536
        sent = 0
        while sent < size and not self.server.stopping.is_set():
            self.wfile.write(chunk)
            sent += len(chunk)

    def _echo_error(self) -> None:
        # An internal service's error page, which must never be shown back to anyone.
        body = b"internal-secret-token=hunter2 refused"
        self.send_response(418)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.seen = 0
        self.stopping = threading.Event()


class Hostile:
    def __init__(self, server: _Server) -> None:
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}/v1alpha"

    @property
    def seen(self) -> int:
        return self._server.seen

    @property
    def mode(self) -> str:
        return self._server.mode

    @mode.setter
    def mode(self, value: str) -> None:
        self._server.mode = value


@contextmanager
def hostile_server(mode: str) -> Iterator[Hostile]:
    """`mode`: ok, drip-body, drip-headers, huge, huge-chunked, huge-error, echo-error."""
    server = _Server(mode)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Hostile(server)
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
