"""The simulator's HTTP surface: routing, validation, pagination and the error bodies."""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import json
import random
import re
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sessions_app.jules.simulator.faults import FaultRule
from sessions_app.jules.simulator.world import (
    OPTION,
    SCENARIOS,
    TAG,
    Account,
    Scenario,
    SimError,
    SimSession,
    World,
    invalid,
    not_found,
)

MISSING_KEY_BODY = {
    "error": {
        "code": 401,
        "message": (
            "Request is missing required authentication credential. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential."
        ),
        "status": "UNAUTHENTICATED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "CREDENTIALS_MISSING",
                "domain": "googleapis.com",
            }
        ],
    }
}
BAD_KEY = SimError(
    401,
    "UNAUTHENTICATED",
    "API keys are not supported by this API. Expected OAuth2 access token or other "
    "authentication credentials that assert a principal.",
    [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
        }
    ],
)
CREATE_FIELDS = {"prompt", "sourceContext", "title", "requirePlanApproval", "automationMode"}
OUTPUT_FIELDS = {"name", "id", "createTime", "updateTime", "state", "url", "outputs", "archived"}
CONTEXT_FIELDS = {"source", "githubRepoContext", "workingBranch", "environmentVariablesEnabled"}
SESSION_ROUTE = re.compile(r"^/sessions/(\d+)(?::(\w+))?$")
ACTIVITIES_ROUTE = re.compile(r"^/sessions/(\d+)/activities$")
ACTIVITY_ROUTE = re.compile(r"^/sessions/(\d+)/activities/([0-9a-f]+)$")
ARCHIVED_FILTER = re.compile(
    r"^\s*archived\s*=\s*(true|false)\s*(?:OR\s+archived\s*=\s*(true|false)\s*)?$"
)
CREATE_TIME_FILTER = re.compile(r'^\s*create_time\s*>\s*"([^"]+)"\s*$')


class Tokens:
    """Opaque keyset page tokens, signed so a foreign or edited token is a 400."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def make(self, scope: str, key: list[Any]) -> str:
        payload = json.dumps([scope, key], separators=(",", ":")).encode()
        sig = hmac.new(self.secret, payload, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(sig + payload).decode().rstrip("=")

    def read(self, scope: str, token: str) -> list[Any]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            sig, payload = raw[:12], raw[12:]
            if not hmac.compare_digest(
                sig, hmac.new(self.secret, payload, hashlib.sha256).digest()[:12]
            ):
                raise ValueError
            got_scope, key = json.loads(payload)
        except (ValueError, TypeError):
            raise invalid("Invalid page token.") from None
        if got_scope != scope:
            raise invalid("Invalid page token.")
        return list(key)


def page_size(query: dict[str, list[str]], default: int) -> int:
    raw = query.get("pageSize", [""])[0]
    if not raw:
        return default
    try:
        size = int(raw)
    except ValueError:
        raise invalid("Invalid value for pageSize.") from None
    if size < 0:
        raise invalid("pageSize must not be negative.")
    return default if size == 0 else min(size, 100)


def parse_scenario(session_prompt: str, header: str | None, default: str) -> Scenario:
    text = header or ""
    match = TAG.search(session_prompt) if not text else None
    name, options = default, ""
    if text:
        name, _, options = text.partition(" ")
    elif match:
        name, options = match.group(1), match.group(2)
    if name not in SCENARIOS:
        name = "happy"
    sc = Scenario(name=name)
    for key, value, quoted in OPTION.findall(options):
        value = quoted if value.startswith('"') else value
        if key == "step":
            sc.step = int(value)
        elif key == "reason":
            sc.reason = value
        elif key in {"mode", "wait"}:
            sc.wait = value not in {"timeout", "complete", "false", "0"}
        elif key == "pr":
            sc.pr = value
        elif key == "delay":
            sc.delay = float(value)
        elif key in {"bash", "media", "unknown", "empty_titles"}:
            setattr(sc, key, value not in {"0", "false", "off"})
    return sc


class Api:
    """The 12 operations. Each method takes parsed input and returns a JSON object."""

    def __init__(self, world: World, default_scenario: str = "happy") -> None:
        self.world = world
        self.tokens = Tokens(hashlib.sha256(f"sim-{world.seed}".encode()).digest())
        self.default_scenario = default_scenario

    def session(self, account: Account, session_id: str) -> SimSession:
        s = account.sessions.get(session_id)
        if s is None:
            raise not_found()
        return s

    def create(self, account: Account, body: Any, scenario_header: str | None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid("Invalid JSON payload received.")
        unknown = set(body) - CREATE_FIELDS - OUTPUT_FIELDS
        if unknown:
            name = sorted(unknown)[0]
            raise invalid(
                f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
            )
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise invalid("prompt is required.")
        mode = body.get("automationMode")
        if mode is not None and mode not in {"AUTOMATION_MODE_UNSPECIFIED", "AUTO_CREATE_PR"}:
            raise invalid(f"Invalid value at 'session.automation_mode': \"{mode}\"")
        if "requirePlanApproval" in body and not isinstance(body["requirePlanApproval"], bool):
            raise invalid("Invalid value at 'session.require_plan_approval'.")
        context = body.get("sourceContext")
        if context is not None:
            if not isinstance(context, dict) or set(context) - CONTEXT_FIELDS:
                raise invalid("Invalid sourceContext.")
            repo = context.get("githubRepoContext")
            if (
                not isinstance(repo, dict)
                or not isinstance(repo.get("startingBranch"), str)
                or not repo["startingBranch"]
            ):
                raise invalid("sourceContext.githubRepoContext.startingBranch is required.")
            if context.get("source") not in account.sources:
                raise SimError(404, "NOT_FOUND", "Could not get source.")
        clean = {k: v for k, v in body.items() if k in CREATE_FIELDS}
        scenario = parse_scenario(prompt, scenario_header, self.default_scenario)
        s = self.world.create(account, clean, scenario)
        return s.to_json()

    def list_sessions(self, account: Account, query: dict[str, list[str]]) -> dict[str, Any]:
        size = page_size(query, 30)
        raw_filter = query.get("filter", [""])[0]
        want: set[bool]
        if not raw_filter.strip():
            want = {False}
        else:
            match = ARCHIVED_FILTER.match(raw_filter)
            if not match:
                raise invalid("Invalid filter.")
            want = {value == "true" for value in match.groups() if value}
        start = 0
        token = query.get("pageToken", [""])[0]
        if token:
            key = self.tokens.read("sessions", token)
            start = bisect.bisect_right(account.order, (float(key[0]), str(key[1])))
        items: list[dict[str, Any]] = []
        order = account.order
        index = start
        last: tuple[float, str] | None = None
        while index < len(order) and len(items) < size:
            s = account.sessions[order[index][1]]
            if s.archived in want:
                items.append(s.to_json())
                last = order[index]
            index += 1
        # Look ahead so that the last page never carries a token (and no page is empty
        # while carrying one).
        more = any(account.sessions[order[i][1]].archived in want for i in range(index, len(order)))
        result: dict[str, Any] = {"sessions": items} if items else {}
        if more and last is not None:
            result["nextPageToken"] = self.tokens.make("sessions", [last[0], last[1]])
        return result

    def list_activities(
        self, account: Account, s: SimSession, query: dict[str, list[str]]
    ) -> dict[str, Any]:
        if "createTime" in query or "create_time" in query:
            raise invalid(
                'Invalid JSON payload received. Unknown name "createTime": '
                "Cannot bind query parameter."
            )
        size = page_size(query, 50)
        keys = s.activity_keys
        start = 0
        raw_filter = query.get("filter", [""])[0]
        if raw_filter.strip():
            match = CREATE_TIME_FILTER.match(raw_filter)
            if not match:
                raise invalid("Invalid filter.")
            from sessions_app.jules.resources import parse_time

            pivot = parse_time(match.group(1))
            if pivot is None:
                raise invalid("Invalid timestamp in filter.")
            pivot_ts = pivot.timestamp()
            # Exclusive: strictly newer than the pivot, compared as times, not strings.
            start = bisect.bisect_right(keys, (pivot_ts + 0.0000005, "\uffff"))
        token = query.get("pageToken", [""])[0]
        if token:
            key = self.tokens.read(f"activities/{s.id}", token)
            start = max(start, bisect.bisect_right(keys, (float(key[0]), str(key[1]))))
        end = min(len(keys), start + size)
        items = s.activities[start:end]
        result: dict[str, Any] = {"activities": items} if items else {}
        if end < len(keys):
            result["nextPageToken"] = self.tokens.make(f"activities/{s.id}", list(keys[end - 1]))
        return result

    def list_sources(self, account: Account, query: dict[str, list[str]]) -> dict[str, Any]:
        size = page_size(query, 30)
        names = sorted(account.sources)
        raw_filter = query.get("filter", [""])[0]
        if raw_filter.strip():
            wanted = set()
            for part in re.split(r"\s+OR\s+", raw_filter.strip()):
                match = re.fullmatch(r"name\s*=\s*\"?(sources/[^\"\s]+)\"?", part.strip())
                if not match:
                    raise invalid("Invalid filter.")
                wanted.add(match.group(1))
            names = [n for n in names if n in wanted]
        start = 0
        token = query.get("pageToken", [""])[0]
        if token:
            key = self.tokens.read("sources", token)
            start = bisect.bisect_right(names, str(key[0]))
        chunk = names[start : start + size]
        result: dict[str, Any] = {"sources": [account.sources[n] for n in chunk]} if chunk else {}
        if start + size < len(names):
            result["nextPageToken"] = self.tokens.make("sources", [chunk[-1]])
        return result


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm
    # and the client's delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server: SimServer

    def log_message(self, format: str, *args: Any) -> None:
        return  # Quiet: tests and benchmarks read the introspection endpoint instead.

    def do_GET(self) -> None:
        self.handle_any("GET")

    def do_POST(self) -> None:
        self.handle_any("POST")

    def do_DELETE(self) -> None:
        self.handle_any("DELETE")

    def do_PATCH(self) -> None:
        self.handle_any("PATCH")

    def do_PUT(self) -> None:
        self.handle_any("PUT")

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_bytes(status, data, headers=headers)

    def send_bytes(
        self,
        status: int,
        data: bytes,
        *,
        content_type: str = "application/json; charset=UTF-8",
        headers: dict[str, str] | None = None,
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def handle_any(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        body = self.read_body()
        world = self.server.world
        if path.startswith("/_sim/"):
            self.admin(method, path[len("/_sim") :], body)
            return
        if not path.startswith("/v1alpha/"):
            self.send_json(404, not_found().body())
            return
        path = path[len("/v1alpha") :]
        key = self.headers.get("X-Goog-Api-Key")
        fault = self.server.pick_fault(method, path, key)
        if fault is not None and self.apply_fault(fault):
            return
        if not key:
            self.count("unauthenticated")
            self.send_json(401, MISSING_KEY_BODY)
            return
        account = world.account(key)
        if account is None or account.revoked:
            self.count("unauthenticated")
            self.send_json(401, BAD_KEY.body())
            return
        try:
            with world.lock:
                world.tick(account)
                operation, result = self.route(method, path, query, body, account)
            self.count(operation)
            self.send_json(200, result)
        except SimError as error:
            self.count("error")
            self.send_json(error.code, error.body())

    def count(self, operation: str) -> None:
        with self.server.world.lock:
            self.server.world.counts[operation] += 1

    def route(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, account: Account
    ) -> tuple[str, dict[str, Any]]:
        api = self.server.api
        world = self.server.world

        def json_body() -> Any:
            if not body.strip():
                return {}
            try:
                return json.loads(body)
            except ValueError:
                raise invalid("Invalid JSON payload received.") from None

        if path == "/sessions":
            if method == "POST":
                return "sessions.create", api.create(
                    account, json_body(), self.headers.get("X-Sim-Scenario")
                )
            if method == "GET":
                return "sessions.list", api.list_sessions(account, query)
            raise not_found()
        if path == "/sources" and method == "GET":
            return "sources.list", api.list_sources(account, query)
        if path.startswith("/sources/") and method == "GET":
            name = path[1:]
            if name not in account.sources:
                raise not_found()
            return "sources.get", account.sources[name]
        match = SESSION_ROUTE.match(path)
        if match:
            s = api.session(account, match.group(1))
            verb = match.group(2)
            if verb is None and method == "GET":
                return "sessions.get", s.to_json()
            if verb is None and method == "DELETE":
                world.remove(account, s)
                return "sessions.delete", {}
            if method != "POST" or verb is None:
                raise not_found()
            data = json_body()
            if not isinstance(data, dict):
                raise invalid("Invalid JSON payload received.")
            if verb == "approvePlan":
                world.approve(account, s)
                return "sessions.approvePlan", {}
            if verb == "sendMessage":
                prompt = data.get("prompt")
                if not isinstance(prompt, str) or not prompt.strip():
                    raise invalid("prompt is required.")
                world.message(account, s, prompt)
                return "sessions.sendMessage", {}
            if verb in {"archive", "unarchive"}:
                s.archived = verb == "archive"
                return f"sessions.{verb}", s.to_json() if world.archive_returns_session else {}
            raise not_found()
        match = ACTIVITIES_ROUTE.match(path)
        if match and method == "GET":
            s = api.session(account, match.group(1))
            young = world.now() - s.create_ts < world.activities_404_seconds
            if not s.activities and young:
                raise not_found()
            return "sessions.activities.list", api.list_activities(account, s, query)
        match = ACTIVITY_ROUTE.match(path)
        if match and method == "GET":
            s = api.session(account, match.group(1))
            for activity in s.activities:
                if activity["id"] == match.group(2):
                    return "sessions.activities.get", activity
            raise not_found()
        raise not_found()

    def apply_fault(self, rule: FaultRule) -> bool:
        """Play a fault; True when it answered the request itself."""
        self.count(f"fault.{rule.kind}")
        if rule.kind == "latency":
            time.sleep(rule.seconds)
            return False
        if rule.kind == "status":
            headers = {}
            if rule.retry_after is not None:
                headers["Retry-After"] = (
                    formatdate(time.time() + rule.retry_after, usegmt=True)
                    if rule.retry_after_date
                    else str(int(rule.retry_after))
                )
            if rule.status == 502:
                self.send_bytes(
                    502,
                    b"<html><body>502 Bad Gateway</body></html>",
                    content_type="text/html; charset=UTF-8",
                )
                return True
            names = {
                429: "RESOURCE_EXHAUSTED",
                500: "INTERNAL",
                503: "UNAVAILABLE",
                504: "DEADLINE_EXCEEDED",
            }
            error = SimError(rule.status, names.get(rule.status, "UNKNOWN"), "Simulated fault.")
            self.send_json(rule.status, error.body(), headers)
            return True
        if rule.kind == "malformed":
            self.send_bytes(200, b'{"sessions": [ {"name": ')
            return True
        if rule.kind == "truncate":
            self.send_bytes(200, b'{"sessions": [', length=4096)
            self.close_connection = True
            return True
        if rule.kind == "reset":
            self.close_connection = True
            return True
        if rule.kind == "empty":
            self.send_bytes(200, b"")
            return True
        if rule.kind == "activities404":
            self.send_json(404, not_found().body())
            return True
        return False

    def admin(self, method: str, path: str, body: bytes) -> None:
        world = self.server.world
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            self.send_json(400, invalid("Invalid JSON.").body())
            return
        if path == "/clock/advance" and method == "POST":
            world.advance(float(data.get("seconds", 0)))
            self.send_json(200, {"now": world.now()})
        elif path == "/requests" and method == "GET":
            with world.lock:
                self.send_json(200, {"counts": dict(world.counts)})
        elif path.startswith("/sessions/") and method == "GET":
            session_id = path.rsplit("/", 1)[-1]
            for account in world.accounts.values():
                s = account.sessions.get(session_id)
                if s is not None:
                    self.send_json(
                        200,
                        {
                            "account": account.id,
                            "state": s.state,
                            "phase": s.phase,
                            "scenario": s.scenario.name,
                            "activities": len(s.activities),
                            "next_at": s.next_at,
                        },
                    )
                    return
            self.send_json(404, not_found().body())
        elif path == "/reset" and method == "POST":
            self.server.reset()
            self.send_json(200, {})
        elif path == "/faults" and method == "POST":
            try:
                rule = FaultRule.parse(data) if isinstance(data, str) else FaultRule.from_dict(data)
            except (ValueError, TypeError) as exc:
                self.send_json(400, invalid(str(exc)).body())
                return
            self.server.add_fault(rule)
            self.send_json(200, {"faults": len(self.server.faults)})
        elif path == "/faults" and method == "DELETE":
            self.server.clear_faults()
            self.send_json(200, {})
        elif path == "/accounts" and method == "POST":
            keys = [str(k) for k in data.get("keys", [])][:3]
            if data.get("revoke"):
                for key in keys:
                    existing = world.account(key)
                    if existing is not None:
                        existing.revoked = True
                self.send_json(200, {})
                return
            account = world.add_account(
                str(data.get("id") or f"account-{len(world.accounts) + 1}"), keys
            )
            self.send_json(200, {"account": account.id})
        else:
            self.send_json(404, not_found().body())


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], world: World, api: Api, factory: Any) -> None:
        super().__init__(address, Handler)
        self.world = world
        self.api = api
        self.factory = factory
        self.faults: list[FaultRule] = []
        self.fault_rng = random.Random(world.seed + 1)

    def add_fault(self, rule: FaultRule) -> None:
        with self.world.lock:
            self.faults.append(rule)

    def clear_faults(self) -> None:
        with self.world.lock:
            self.faults.clear()

    def pick_fault(self, method: str, path: str, key: str | None) -> FaultRule | None:
        with self.world.lock:
            for rule in self.faults:
                if rule.matches(method, path, key, self.fault_rng):
                    return rule
        return None

    def reset(self) -> None:
        world, api = self.factory()
        self.world, self.api = world, api
        self.clear_faults()
