"""The twelve operations (docs/jules-api.md#operations) as JSON bytes. Callers hold the lock.

Lists use signed keyset cursors, so inserts and deletes between pages never shift or skip
an item (docs/jules-api.md#pagination). A page joins each record's cached JSON bytes.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import json
from typing import Any

from jules_simulator import validation
from jules_simulator.errors import invalid, not_found
from jules_simulator.model import Account, SimActivity, SimSession, dumps
from jules_simulator.scenarios import Scenario, find_tag, parse_scenario
from jules_simulator.world import World

EMPTY = b"{}"


class Tokens:
    """Opaque page tokens: a keyset position bound to its list and filter, HMAC-signed."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, payload, hashlib.sha256).digest()[:12]

    def make(self, scope: str, position: list[Any]) -> str:
        payload = json.dumps([scope, position], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(self._sign(payload) + payload).decode().rstrip("=")

    def read(self, scope: str, token: str) -> list[Any]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            signature, payload = raw[:12], raw[12:]
            if not hmac.compare_digest(signature, self._sign(payload)):
                raise ValueError
            got_scope, position = json.loads(payload)
        except (ValueError, TypeError):
            raise invalid("Invalid page token.", "page_token") from None
        if got_scope != scope or not isinstance(position, list):
            # A token of another list, filter, session or account (AIP-158).
            raise invalid("Invalid page token.", "page_token")
        return position


def page(list_key: str, items: list[bytes], token: str | None) -> bytes:
    """`{list_key: [...], nextPageToken}` with proto3 omissions: no empty list, no token."""
    parts: list[bytes] = []
    if items:
        parts.append(b'"' + list_key.encode() + b'":[' + b",".join(items) + b"]")
    if token:
        parts.append(b'"nextPageToken":' + json.dumps(token).encode())
    return b"{" + b",".join(parts) + b"}"


class Api:
    def __init__(self, world: World) -> None:
        self.world = world
        secret = hashlib.sha256(f"jules-simulator/{world.seed}".encode()).digest()
        self.tokens = Tokens(secret)

    def session(self, account: Account, session_id: str) -> SimSession:
        session = account.sessions.get(session_id)
        if session is None:
            raise not_found()
        return session

    # --- sessions -----------------------------------------------------------------------

    def create(self, account: Account, body: bytes, scenario_header: str | None) -> bytes:
        fields = validation.create_fields(validation.parse_json(body))
        scenario = self.scenario_for(account, fields["prompt"], scenario_header)
        if "source" in fields and fields["source"] not in account.sources:
            raise not_found("Could not get source.")
        self.world.check_quota(account)
        session = self.world.create_session(account, fields, scenario)
        if self.world.config.partial_create_response:
            return dumps(session.partial_dict())
        return session.json_bytes()

    def scenario_for(self, account: Account, prompt: str, header: str | None) -> Scenario:
        """Header, then prompt tag, then the queue, then the configured default."""
        try:
            if header and header.strip():
                return parse_scenario(header, origin="header")
            tag = find_tag(prompt)
            if tag is not None:
                return parse_scenario(tag, origin="tag")
            queued = self.world.next_queued_scenario(account)
            if queued is not None:
                return queued
            return parse_scenario(self.world.config.default_scenario, origin="default")
        except ValueError as exc:
            raise invalid(f"Invalid simulator scenario: {exc}.") from None

    def get(self, account: Account, session_id: str) -> bytes:
        return self.session(account, session_id).json_bytes()

    def delete(self, account: Account, session_id: str) -> bytes:
        self.world.delete_session(account, self.session(account, session_id))
        return EMPTY

    def list_sessions(self, account: Account, query: dict[str, list[str]]) -> bytes:
        params = validation.check_query(query, validation.LIST_PARAMETERS)
        size = validation.page_size(params.get("pageSize"), 30)
        raw_filter = params.get("filter", "")
        want = validation.sessions_filter(raw_filter)
        scope = f"sessions|{account.id}|{sorted(want)}"
        order, sessions = account.order, account.sessions
        index = 0
        if params.get("pageToken"):
            position = self.tokens.read(scope, params["pageToken"])
            index = bisect.bisect_right(order, (int(position[0]), str(position[1])))
        items: list[bytes] = []
        last: tuple[int, str] | None = None
        while index < len(order) and len(items) < size:
            session = sessions[order[index][1]]
            if session.archived in want:
                items.append(session.json_bytes())
                last = order[index]
            index += 1
        # Look ahead, so the last page carries no token and no page is empty with one.
        more = any(sessions[order[i][1]].archived in want for i in range(index, len(order)))
        token = self.tokens.make(scope, [last[0], last[1]]) if more and last else None
        return page("sessions", items, token)

    def send_message(self, account: Account, session_id: str, body: bytes) -> bytes:
        session = self.session(account, session_id)
        prompt = validation.message_prompt(validation.parse_json(body))
        self.world.machine.message(account, session, prompt)
        return EMPTY

    def approve_plan(self, account: Account, session_id: str, body: bytes) -> bytes:
        session = self.session(account, session_id)
        validation.empty_request(validation.parse_json(body))
        self.world.machine.approve(account, session)
        return EMPTY

    def set_archived(self, account: Account, session_id: str, body: bytes, archived: bool) -> bytes:
        session = self.session(account, session_id)
        validation.empty_request(validation.parse_json(body))
        self.world.set_archived(session, archived)
        return session.json_bytes() if self.world.config.archive_returns_session else EMPTY

    # --- activities ---------------------------------------------------------------------

    def list_activities(
        self, account: Account, session_id: str, query: dict[str, list[str]]
    ) -> bytes:
        session = self.session(account, session_id)
        params = validation.check_query(query, validation.LIST_PARAMETERS)
        window = int(self.world.config.activities_404_seconds * 1_000_000)
        if not session.activities and self.world.now_us() - session.create_us < window:
            # Never once it has an activity: docs/jules-api.md#activities-404-after-create
            raise not_found()
        size = validation.page_size(params.get("pageSize"), 50)
        raw_filter = params.get("filter", "")
        pivot_ns = validation.activities_filter(raw_filter)
        activities = session.activities
        start = 0
        if pivot_ns is not None:
            # Exclusive, and compared as times, not strings: docs/jules-api.md#activities-filter
            start = bisect.bisect_right(activities, pivot_ns, key=_nanos)
        scope = f"activities|{account.id}|{session.id}|{raw_filter.strip()}"
        if params.get("pageToken"):
            position = self.tokens.read(scope, params["pageToken"])
            start = max(start, bisect.bisect_right(activities, int(position[0]), key=_micros))
        end = min(len(activities), start + size)
        items = [activity.json_bytes() for activity in activities[start:end]]
        token = None
        if end < len(activities):
            last = activities[end - 1]
            token = self.tokens.make(scope, [last.ts, last.id])
        return page("activities", items, token)

    def get_activity(self, account: Account, session_id: str, activity_id: str) -> bytes:
        session = self.session(account, session_id)
        for activity in session.activities:
            if activity.id == activity_id:
                return activity.json_bytes()
        raise not_found()

    # --- sources ------------------------------------------------------------------------

    def list_sources(self, account: Account, query: dict[str, list[str]]) -> bytes:
        params = validation.check_query(query, validation.LIST_PARAMETERS)
        size = validation.page_size(params.get("pageSize"), 30)
        raw_filter = params.get("filter", "")
        wanted = validation.sources_filter(raw_filter)
        names = sorted(account.sources)
        if wanted is not None:
            names = [name for name in names if name in wanted]
        scope = f"sources|{account.id}|{raw_filter.strip()}"
        start = 0
        if params.get("pageToken"):
            position = self.tokens.read(scope, params["pageToken"])
            start = bisect.bisect_right(names, str(position[0]))
        chunk = names[start : start + size]
        token = None
        if start + size < len(names) and chunk:
            token = self.tokens.make(scope, [chunk[-1]])
        return page("sources", [account.source_bytes[name] for name in chunk], token)

    def get_source(self, account: Account, name: str) -> bytes:
        data = account.source_bytes.get(name)
        if data is None:
            raise not_found()
        return data


def _nanos(activity: SimActivity) -> int:
    return activity.ts * 1000


def _micros(activity: SimActivity) -> int:
    return activity.ts


__all__ = ["Api", "Tokens", "page"]
