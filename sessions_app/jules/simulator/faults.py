"""Fault rules for tests and benchmarks.

A rule is a SPEC string of comma-separated `key=value` pairs (or the same keys as JSON to
`POST /_sim/faults`):

- `kind`: `status` (with `status=429|500|502|503|504`, and for 429 optionally
  `retry_after=SECONDS` or `retry_after_date=1` for an HTTP-date), `latency` (with
  `seconds=N`), `malformed` (200 with a body that is not JSON), `truncate` (a larger
  Content-Length than the body written, then close), `reset` (close without an answer),
  `empty` (200 with an empty body), `activities404` (404 on activities.list).
- which requests: `method=GET`, `path=REGEX` (searched in the path after `/v1alpha`),
  `key=API_KEY`.
- when: `prob=0.3` (seeded), `first=N` (the first N matches), `every=N` (every Nth match),
  `window=START-END` (seconds since the rule was added, real time). Without any, always.

Example: `kind=status,status=429,retry_after=1,path=^/sessions$,every=3`.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

KINDS = {"status", "latency", "malformed", "truncate", "reset", "empty", "activities404"}


@dataclass
class FaultRule:
    kind: str
    status: int = 500
    retry_after: float | None = None
    retry_after_date: bool = False
    seconds: float = 1.0
    method: str | None = None
    path: str | None = None
    key: str | None = None
    prob: float | None = None
    first: int | None = None
    every: int | None = None
    window: tuple[float, float] | None = None
    matched: int = 0
    fired: int = 0
    added: float = field(default_factory=time.monotonic)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        kind = str(data.get("kind", "status"))
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        window = data.get("window")
        if isinstance(window, str):
            start, _, end = window.partition("-")
            window = (float(start), float(end))
        return cls(
            kind=kind,
            status=int(data.get("status", 500)),
            retry_after=float(data["retry_after"])
            if data.get("retry_after") not in (None, "")
            else None,
            retry_after_date=str(data.get("retry_after_date", "")).lower() in {"1", "true"},
            seconds=float(data.get("seconds", 1.0)),
            method=str(data["method"]).upper() if data.get("method") else None,
            path=str(data["path"]) if data.get("path") else None,
            key=str(data["key"]) if data.get("key") else None,
            prob=float(data["prob"]) if data.get("prob") not in (None, "") else None,
            first=int(data["first"]) if data.get("first") not in (None, "") else None,
            every=int(data["every"]) if data.get("every") not in (None, "") else None,
            window=(float(window[0]), float(window[1])) if window else None,
        )

    @classmethod
    def parse(cls, spec: str) -> FaultRule:
        pairs = {}
        for part in spec.split(","):
            if not part.strip():
                continue
            key, _, value = part.partition("=")
            pairs[key.strip()] = value.strip()
        return cls.from_dict(pairs)

    def matches(self, method: str, path: str, key: str | None, rng: random.Random) -> bool:
        if self.method and self.method != method:
            return False
        if self.path and not re.search(self.path, path):
            return False
        if self.key and self.key != key:
            return False
        if self.kind == "activities404" and not re.search(r"^/sessions/[^/:]+/activities$", path):
            return False
        self.matched += 1
        if self.window is not None:
            elapsed = time.monotonic() - self.added
            if not self.window[0] <= elapsed < self.window[1]:
                return False
        if self.first is not None and self.matched > self.first:
            return False
        if self.every is not None and self.matched % self.every != 0:
            return False
        if self.prob is not None and rng.random() >= self.prob:
            return False
        self.fired += 1
        return True
