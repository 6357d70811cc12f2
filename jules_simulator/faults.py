"""Fault rules for tests and benchmarks: what goes wrong, on which requests, and when.

A rule is a SPEC string of comma-separated `key=value` pairs (`--faults SPEC`, repeatable,
`RunningSimulator.add_fault(SPEC)`), or the same keys as a JSON object to
`POST /_sim/faults` (a list of objects, or `{"spec": "..."}`, also works). Values holding a
comma are double-quoted: `path="^/sessions/\\d{19,20}$"`. Unknown keys are an error, so a
typo never turns into a rule that always fires.

What happens (`kind`; `status=N` alone implies `kind=status`):

- `status`: answer `status=N` (default 500) with the Google error body for 4xx/5xx; 502 is
  an HTML page as gateways send. `retry_after=S` adds `Retry-After: S` (whole seconds);
  with `retry_format=date` (or `retry_after_date=1`) it is an HTTP-date S seconds ahead.
- `latency`: sleep `seconds=S` (default 1), then carry on; later rules still apply. Use
  it beyond a client's timeout to provoke one.
- `malformed`: 200 with a body that is not JSON.
- `truncate`: the real answer under its full `Content-Length`, cut in half, then close.
- `reset`: close the connection with a TCP reset and no answer.
- `empty`: 200 with an empty body.
- `activities404`: 404 NOT_FOUND on sessions.activities.list, the eventual-consistency
  window after create (docs/jules-api.md#activities-404-after-create), for `first=N`
  calls or a `window`.

`stage=before` (the default, except `truncate`) answers without running the request;
`stage=after` runs it first, so a create takes effect and the client cannot tell, the
ambiguous failure of docs/jules-api.md#non-idempotent-calls. `truncate` is always `after`.

Which requests (all optional, all must match): `method=GET`, `op=sessions.list` (an
operation name as counted by `/_sim/requests`), `path=REGEX` (searched in the path after
`/v1alpha`, e.g. `path=/activities$`), `key=API_KEY`, `account=ACCOUNT_ID`.

When (all optional, all must hold; none = every matching request): `prob=P` (seeded
random), `first=N` (the first N matches), `after=N` (skip the first N matches),
`every=N` (every Nth match), `limit=N` (fire at most N times), `window=A-B` (from A to B
seconds after the rule was added, on the real clock, or the virtual one with
`clock=virtual`), `scope=session` (count matches per session id in the path, e.g. the
first 2 activities.list calls of every session).

Rules are tried in the order added; the first one that fires and answers wins, and rules
after it are not consulted for that request (latency rules fire and let the next apply).

Examples: `status=429,retry_after=2,path=^/sessions$,prob=0.3`, `kind=truncate,every=5`,
`kind=latency,seconds=40,op=sessions.get,first=1`,
`kind=activities404,first=2,scope=session`, `status=500,method=POST,stage=after,first=1`.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

KINDS = ("status", "latency", "malformed", "truncate", "reset", "empty", "activities404")
KEYS = {
    "kind",
    "status",
    "retry_after",
    "retry_format",
    "retry_after_date",
    "seconds",
    "stage",
    "method",
    "op",
    "path",
    "key",
    "account",
    "prob",
    "first",
    "after",
    "every",
    "limit",
    "window",
    "clock",
    "scope",
}
PAIR = re.compile(r'\s*(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,]*?)\s*(?:,|$)')
SESSION_IN_PATH = re.compile(r"^/sessions/([^/:]+)")
_ids = itertools.count(1)


def _number(data: dict[str, Any], key: str, kind: type[int] | type[float]) -> Any:
    value: Any = data.get(key)
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}={value!r} is not a number") from None


@dataclass(eq=False)
class FaultRule:
    kind: str
    status: int = 500
    retry_after: float | None = None
    retry_format: str = "seconds"
    seconds: float = 1.0
    stage: str = "before"
    method: str | None = None
    op: str | None = None
    path: str | None = None
    key: str | None = None
    account: str | None = None
    prob: float | None = None
    first: int | None = None
    after: int | None = None
    every: int | None = None
    limit: int | None = None
    window: tuple[float, float] | None = None
    clock: str = "real"
    per_session: bool = False
    id: int = field(default_factory=lambda: next(_ids))
    matched: int = 0
    fired: int = 0
    _matches: Counter[str] = field(default_factory=Counter, repr=False)
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)
    _start_real: float = field(default_factory=time.monotonic, repr=False)
    _start_virtual_us: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {KINDS}")
        if not 100 <= self.status <= 599:
            raise ValueError(f"status={self.status} is not an HTTP status")
        if self.prob is not None and not 0 <= self.prob <= 1:
            raise ValueError("prob must be between 0 and 1")
        for name in ("first", "after", "limit"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")
        if self.every is not None and self.every < 1:
            raise ValueError("every must be at least 1")
        if self.stage not in ("before", "after"):
            raise ValueError("stage is before or after")
        if self.retry_format not in ("seconds", "date"):
            raise ValueError("retry_format is seconds or date")
        if self.clock not in ("real", "virtual"):
            raise ValueError("clock is real or virtual")
        if self.kind == "truncate":
            self.stage = "after"
        if self.path:
            try:
                self._pattern = re.compile(self.path)
            except re.error as exc:
                raise ValueError(f"path is not a regular expression: {exc}") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        unknown = set(data) - KEYS
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
        kind = str(data.get("kind") or "status")
        window = data.get("window")
        if isinstance(window, str):
            start, sep, end = window.partition("-")
            if not sep:
                raise ValueError("window is START-END in seconds")
            window = (float(start), float(end))
        elif window is not None:
            window = (float(window[0]), float(window[1]))
        retry_format = str(data.get("retry_format") or "seconds")
        if str(data.get("retry_after_date", "")).lower() in {"1", "true"}:
            retry_format = "date"
        scope = str(data.get("scope") or "global")
        if scope not in ("global", "session"):
            raise ValueError("scope is global or session")
        return cls(
            kind=kind,
            status=_number(data, "status", int) or 500,
            retry_after=_number(data, "retry_after", float),
            retry_format=retry_format,
            seconds=_number(data, "seconds", float) or 1.0,
            stage=str(data.get("stage") or "before"),
            method=str(data["method"]).upper() if data.get("method") else None,
            op=str(data["op"]) if data.get("op") else None,
            path=str(data["path"]) if data.get("path") else None,
            key=str(data["key"]) if data.get("key") else None,
            account=str(data["account"]) if data.get("account") else None,
            prob=_number(data, "prob", float),
            first=_number(data, "first", int),
            after=_number(data, "after", int),
            every=_number(data, "every", int),
            limit=_number(data, "limit", int),
            window=window,
            clock=str(data.get("clock") or "real"),
            per_session=scope == "session",
        )

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        pairs: dict[str, Any] = {}
        position = 0
        text = spec.strip()
        while position < len(text):
            match = PAIR.match(text, position)
            if match is None or match.end() == position:
                raise ValueError(f"cannot read the fault spec at {text[position:]!r}")
            key, value = match.group(1), match.group(2)
            if value.startswith('"') and value.endswith('"') and len(value) >= 2:
                # Only \" and \\ are escapes, so regular expressions keep their \d.
                value = re.sub(r'\\(["\\])', r"\1", value[1:-1])
            pairs[key] = value
            position = match.end()
        return cls.from_dict(pairs)

    def start(self, now_us: int) -> None:
        """Mark the moment the rule was added, the origin of its `window`."""
        self._start_real = time.monotonic()
        self._start_virtual_us = now_us

    def fires(self, request: dict[str, Any], rng: random.Random) -> bool:
        """Whether this request matches and the rule fires; updates the counters."""
        if self.method and request["method"] != self.method:
            return False
        if self.op and request["operation"] != self.op:
            return False
        if self.kind == "activities404" and request["operation"] != "sessions.activities.list":
            return False
        if self._pattern is not None and not self._pattern.search(request["path"]):
            return False
        if self.key and request["key"] != self.key:
            return False
        if self.account and request["account"] != self.account:
            return False
        if self.window is not None:
            if self.clock == "virtual":
                elapsed = (request["now_us"] - self._start_virtual_us) / 1_000_000
            else:
                elapsed = time.monotonic() - self._start_real
            if not self.window[0] <= elapsed < self.window[1]:
                return False
        scope = ""
        if self.per_session:
            match = SESSION_IN_PATH.match(request["path"])
            scope = match.group(1) if match else ""
        self.matched += 1
        self._matches[scope] += 1
        n = self._matches[scope]
        skip = self.after or 0
        if n <= skip:
            return False
        if self.first is not None and n > skip + self.first:
            return False
        if self.every is not None and (n - skip) % self.every != 0:
            return False
        if self.limit is not None and self.fired >= self.limit:
            return False
        if self.prob is not None and rng.random() >= self.prob:
            return False
        self.fired += 1
        return True

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "kind": self.kind}
        for name in (
            "status",
            "retry_after",
            "retry_format",
            "seconds",
            "stage",
            "method",
            "op",
            "path",
            "account",
            "prob",
            "first",
            "after",
            "every",
            "limit",
            "window",
            "clock",
        ):
            value = getattr(self, name)
            if value is not None:
                data[name] = list(value) if isinstance(value, tuple) else value
        if self.key:
            data["key"] = "(redacted)"
        data["scope"] = "session" if self.per_session else "global"
        data["matched"], data["fired"] = self.matched, self.fired
        return data
