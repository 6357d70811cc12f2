"""A client of the portal's API that knows only the served schema: it calls operations by
their `operationId` and builds each request from the operation's path template and
parameter names. The unit flow drives it through Django's test client, the integration
flow over HTTP against a live server (docs/api.md, "Tests")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SCHEMA = "/api/v1/openapi.json"

# (method, path, query, JSON body or None, headers) -> (status, decoded JSON body)
Transport = Callable[[str, str, dict[str, Any], Any, dict[str, str]], tuple[int, Any]]


def django_transport(http: Any) -> Transport:
    """Requests through a `django.test.Client`."""

    def send(
        method: str, path: str, query: dict[str, Any], body: Any, headers: dict[str, str]
    ) -> tuple[int, Any]:
        if method == "get":
            response = http.get(path, query, headers=headers)
        else:
            response = http.post(path, body or {}, content_type="application/json", headers=headers)
        return response.status_code, response.json()

    return send


def http_transport(base_url: str, timeout: float = 30.0) -> Transport:
    """Requests over HTTP to a running portal."""
    import requests

    session = requests.Session()

    def send(
        method: str, path: str, query: dict[str, Any], body: Any, headers: dict[str, str]
    ) -> tuple[int, Any]:
        response = session.request(
            method.upper(),
            base_url.rstrip("/") + path,
            params=query,
            json=body if method != "get" else None,
            headers=headers,
            timeout=timeout,
        )
        return response.status_code, response.json()

    return send


# The operations of the launch-to-diff flow, by method and the end of their path template.
FLOW = {
    "launch": ("post", "/sessions"),
    "action": ("get", "/actions/{action_id}"),
    "session": ("get", "/sessions/{pk}"),
    "activities": ("get", "/sessions/{pk}/activities"),
    "approvals": ("get", "/approvals"),
    "approve": ("post", "/approve"),
    "message": ("post", "/messages"),
    "events": ("get", "/events"),
}


class SchemaClient:
    """Calls operations by their `operationId`, building requests from the schema alone."""

    def __init__(self, transport: Transport, token: str) -> None:
        self.send, self.headers = transport, {"Authorization": f"Bearer {token}"}
        status, schema = transport("get", SCHEMA, {}, None, {})
        assert status == 200, schema
        self.operations = {
            op["operationId"]: (method, path, op)
            for path, item in schema["paths"].items()
            for method, op in item.items()
        }

    def operation_id(self, method: str, suffix: str) -> str:
        """The one operation of this method whose path template ends with `suffix`."""
        [found] = [
            op_id
            for op_id, (m, path, _) in self.operations.items()
            if m == method and path.endswith(suffix)
        ]
        return found

    def flow(self) -> dict[str, str]:
        """The operation ids of the flow's steps (`FLOW`), as this schema names them."""
        return {name: self.operation_id(*where) for name, where in FLOW.items()}

    def call(self, operation: str, body: Any = None, **params: Any) -> Any:
        """`params` by the schema's names: path, query and header parameters alike."""
        method, path, op = self.operations[operation]
        query, headers = {}, dict(self.headers)
        for parameter in op.get("parameters", []):
            name, where = parameter["name"], parameter["in"]
            if name not in params:
                continue
            if where == "path":
                path = path.replace("{" + name + "}", str(params[name]))
            elif where == "header":
                headers[name] = str(params[name])
            else:
                query[name] = params[name]
        unknown = set(params) - {p["name"] for p in op.get("parameters", [])}
        assert not unknown, f"{operation} has no parameter {sorted(unknown)}"
        status, answer = self.send(method, path, query, body, headers)
        assert status < 300, (operation, status, answer)
        return answer
