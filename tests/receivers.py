"""Real peers on loopback for the notification tests: a webhook receiver that verifies
every delivery with the `standardwebhooks` package, and an aiosmtpd SMTP server."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    webhook_id: str
    payload: dict[str, Any]
    verified: bool
    # When it arrived (the benchmark's latencies end here).
    at: float = field(default_factory=time.time)


@dataclass
class WebhookReceiver:
    """Answers `status` after `delay` seconds; records what verified and what did not."""

    secret: str = ""
    status: int = 204
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    # 0 picks a free port; a receiver started again after `stop` keeps its port.
    port: int = 0

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.attempts += 1
                    status, delay = receiver.status, receiver.delay
                if delay:
                    time.sleep(delay)
                if 200 <= status < 300:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    try:
                        Webhook(receiver.secret).verify(body, headers)
                        verified = True
                    except WebhookVerificationError:
                        verified = False
                    with receiver.lock:
                        receiver.received.append(
                            Received(headers.get("webhook-id", ""), json.loads(body), verified)
                        )
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # The sender gave up waiting.

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = int(self.server.server_address[1])
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class SmtpSink:
    """An aiosmtpd server on loopback; `messages` are the parsed messages it accepted."""

    def __init__(self, port: int | None = None) -> None:
        from aiosmtpd.controller import Controller

        sink = self
        self.messages: list[EmailMessage] = []
        self.envelopes: list[list[str]] = []
        self.arrivals: list[float] = []

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
                sink.arrivals.append(time.time())
                sink.messages.append(parsed)
                sink.envelopes.append(list(envelope.rcpt_tos))
                return "250 OK"

        # aiosmtpd checks its socket by connecting to the port, so it needs a real one.
        if port is None:
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
            probe.close()
        self.port = port
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
