"""Raw HTTP to the simulator, so these tests pin the wire format and not a client's reading."""

from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
SESSION_ID = re.compile(r"^\d{19,20}$")
NOT_FOUND = {
    "error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}
}
ALL = "archived = true OR archived = false"


@dataclass
class Reply:
    status: int
    raw: bytes
    headers: dict[str, str]

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def error(self) -> dict[str, Any]:
        return self.json["error"]


def call(
    sim: Any,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = "k",
    headers: dict[str, str] | None = None,
    prefix: str = "/v1alpha",
    timeout: float = 10,
) -> Reply:
    """One request on a fresh connection; `body` is JSON-encoded unless it is bytes."""
    connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=timeout)
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json"} if data is not None else {}
    if key is not None:
        sent["x-goog-api-key"] = key  # Header names are case-insensitive.
    sent.update(headers or {})
    try:
        connection.request(method, prefix + path, body=data, headers=sent)
        response = connection.getresponse()
        return Reply(response.status, response.read(), dict(response.getheaders()))
    finally:
        connection.close()


def q(text: str) -> str:
    return quote(text, safe="")


def create(
    sim: Any, prompt: str = "Fix the CSV export", *, key: str = "k", **fields: Any
) -> dict[str, Any]:
    reply = call(sim, "POST", "/sessions", {"prompt": prompt, **fields}, key=key)
    assert reply.status == 200, reply.raw
    return reply.json


def repo(source: str = "sources/github/acme/billing", branch: str = "main") -> dict[str, Any]:
    return {"sourceContext": {"source": source, "githubRepoContext": {"startingBranch": branch}}}


def get(sim: Any, session_id: str, key: str = "k") -> dict[str, Any]:
    reply = call(sim, "GET", f"/sessions/{session_id}", key=key)
    assert reply.status == 200, reply.raw
    return reply.json


def activities(sim: Any, session_id: str, key: str = "k") -> list[dict[str, Any]]:
    """Every activity, following nextPageToken to the end."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        path = f"/sessions/{session_id}/activities?pageSize=100"
        reply = call(sim, "GET", path + (f"&pageToken={q(token)}" if token else ""), key=key)
        assert reply.status == 200, reply.raw
        items += reply.json.get("activities", [])
        token = reply.json.get("nextPageToken", "")
        if not token:
            return items


def kinds(items: list[dict[str, Any]]) -> list[str]:
    known = {"planGenerated", "planApproved", "progressUpdated", "agentMessaged"}
    known |= {"userMessaged", "sessionCompleted", "sessionFailed"}
    return [next((k for k in item if k in known), "other") for item in items]


def list_all(sim: Any, path: str, list_key: str, size: int, key: str = "k") -> list[list[Any]]:
    """Every page of a list as a list of item lists, checking the token rules on the way."""
    pages: list[list[Any]] = []
    token = ""
    separator = "&" if "?" in path else "?"
    while True:
        url = f"{path}{separator}pageSize={size}" + (f"&pageToken={q(token)}" if token else "")
        reply = call(sim, "GET", url, key=key)
        assert reply.status == 200, reply.raw
        items = reply.json.get(list_key, [])
        token = reply.json.get("nextPageToken", "")
        assert items or not token, "an empty page must not carry a token"
        pages.append(items)
        if not token:
            return pages


def admin(sim: Any, method: str, path: str, body: Any = None) -> Reply:
    return call(sim, method, path, body, key=None, prefix="/_sim")
