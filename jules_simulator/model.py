"""The simulator's records: accounts, sources, sessions and activities, and their proto3 JSON.

Serialisation is the hot path of every list page, so each record caches its JSON bytes:
an activity never changes once written, and a session drops its cache on every change.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jules_simulator.clock import format_ts
from jules_simulator.content import REPOLESS_LANG, Repo
from jules_simulator.scenarios import Scenario

STATES = (
    "STATE_UNSPECIFIED",
    "QUEUED",
    "PLANNING",
    "AWAITING_PLAN_APPROVAL",
    "AWAITING_USER_FEEDBACK",
    "IN_PROGRESS",
    "PAUSED",
    "FAILED",
    "COMPLETED",
)
AUTOMATION_MODES = ("AUTOMATION_MODE_UNSPECIFIED", "AUTO_CREATE_PR")
# States that hold one of the account's concurrent task slots (a simulator convention: a
# PAUSED session is not running, and COMPLETED/FAILED ones are done).
BUSY_STATES = frozenset(
    {"QUEUED", "PLANNING", "AWAITING_PLAN_APPROVAL", "AWAITING_USER_FEEDBACK", "IN_PROGRESS"}
)
# Daily and concurrent task caps per plan: docs/jules-api.md#quotas-and-rate-limits
TIERS = {"free": (15, 3), "pro": (100, 15), "ultra": (300, 60)}


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


class SimActivity(Mapping[str, Any]):
    """One activity. Read-only as a mapping of its proto3 JSON, which is built on demand."""

    __slots__ = (
        "_json",
        "artifacts",
        "description",
        "id",
        "kind",
        "originator",
        "payload",
        "session_id",
        "ts",
    )

    def __init__(
        self,
        session_id: str,
        activity_id: str,
        ts: int,
        originator: str,
        kind: str,
        payload: Any,
        description: str = "",
        artifacts: list[dict[str, Any]] | None = None,
    ) -> None:
        self.session_id = session_id
        self.id = activity_id
        self.ts = ts
        self.originator = originator
        self.kind = kind  # "" for an activity that has no kind at all.
        self.payload = payload
        self.description = description
        self.artifacts = artifacts
        self._json: bytes | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": f"sessions/{self.session_id}/activities/{self.id}",
            "id": self.id,
            "createTime": format_ts(self.ts),
            "originator": self.originator,
        }
        if self.description:
            data["description"] = self.description
        if self.kind:
            data[self.kind] = self.payload
        if self.artifacts:
            data["artifacts"] = self.artifacts
        return data

    def json_bytes(self) -> bytes:
        if self._json is None:
            self._json = dumps(self.to_dict())
        return self._json

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimActivity:
        known = {"name", "id", "createTime", "originator", "description", "artifacts"}
        kinds = [k for k in data if k not in known and k != "_ts"]
        kind = kinds[0] if kinds else ""
        session_id = str(data["name"]).split("/")[1]
        return cls(
            session_id,
            str(data["id"]),
            int(data["_ts"]),
            str(data.get("originator", "")),
            kind,
            data.get(kind) if kind else None,
            str(data.get("description", "")),
            data.get("artifacts"),
        )

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __repr__(self) -> str:
        return f"SimActivity({self.kind or 'no kind'} {self.id} at {format_ts(self.ts)})"


@dataclass(slots=True, eq=False)
class SimSession:
    """One session, with the lifecycle bookkeeping the state machine needs."""

    id: str
    account_id: str
    prompt: str
    title: str
    create_us: int
    update_us: int
    source: str = ""
    starting_branch: str = ""
    working_branch: str = ""
    env_vars: bool = False
    require_plan_approval: bool = False
    automation_mode: str = ""
    state: str = "QUEUED"
    archived: bool = False
    outputs: list[dict[str, Any]] = field(default_factory=list)
    activities: list[SimActivity] = field(default_factory=list)
    scenario: Scenario = field(default_factory=Scenario)
    lang: str = REPOLESS_LANG
    # Lifecycle: the phase names the next scheduled event (see lifecycle.py).
    phase: str = "queued"
    next_us: int | None = None
    events: int = 0
    step: int = 0
    total: int = 0
    plan_titles: list[str] = field(default_factory=list)
    plan_id: str = ""
    plans: int = 0
    interjected: bool = False
    pending_ack: bool = False
    plan_timed_out: bool = False
    timeout_us: int | None = None
    completions: int = 0
    revivals: int = 0
    base_commit: str = ""
    pull_request: dict[str, Any] | None = None
    extras: set[str] = field(default_factory=set)
    _json: bytes | None = None

    @property
    def create_key(self) -> tuple[int, str]:
        """The session's place in sessions.list: newest first, ties by id."""
        return (-self.create_us, self.id)

    def changed(self) -> None:
        self._json = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": f"sessions/{self.id}", "id": self.id}
        data["prompt"] = self.prompt
        if self.source:
            context: dict[str, Any] = {"source": self.source}
            if self.starting_branch:
                context["githubRepoContext"] = {"startingBranch": self.starting_branch}
            if self.working_branch:
                context["workingBranch"] = self.working_branch
            if self.env_vars:
                context["environmentVariablesEnabled"] = True
            data["sourceContext"] = context
        if self.title:
            data["title"] = self.title
        if self.require_plan_approval:
            data["requirePlanApproval"] = True
        if self.automation_mode and self.automation_mode != "AUTOMATION_MODE_UNSPECIFIED":
            data["automationMode"] = self.automation_mode
        data["createTime"] = format_ts(self.create_us)
        data["updateTime"] = format_ts(self.update_us)
        data["state"] = self.state
        data["url"] = f"https://jules.google.com/session/{self.id}"
        if self.outputs:
            data["outputs"] = self.outputs
        if self.archived:
            data["archived"] = True
        return data

    def json_bytes(self) -> bytes:
        if self._json is None:
            self._json = dumps(self.to_dict())
        return self._json

    def partial_dict(self) -> dict[str, Any]:
        """The reference guide's create answer: name, id, title, sourceContext, prompt."""
        full = self.to_dict()
        return {k: full[k] for k in ("name", "id", "title", "sourceContext", "prompt") if k in full}


def source_json(repo: Repo) -> dict[str, Any]:
    github: dict[str, Any] = {"owner": repo.owner, "repo": repo.repo}
    if repo.private:
        github["isPrivate"] = True
    github["defaultBranch"] = {"displayName": repo.branches[0]}
    github["branches"] = [{"displayName": branch} for branch in repo.branches]
    return {
        "name": f"sources/github/{repo.owner}/{repo.repo}",
        "id": f"github/{repo.owner}/{repo.repo}",
        "githubRepo": github,
    }


@dataclass(eq=False)
class Account:
    """One Jules user: up to three keys, connected sources, sessions and plan caps."""

    id: str
    keys: list[str]
    tier: str | None = None
    daily_cap: int | None = None
    concurrent_cap: int | None = None
    parallel_create_limit: int | None = None
    revoked: bool = False
    revoked_keys: set[str] = field(default_factory=set)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    source_bytes: dict[str, bytes] = field(default_factory=dict)
    source_langs: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, SimSession] = field(default_factory=dict)
    # (-create_us, id) ascending, i.e. newest first; keyset cursors bisect into it.
    order: list[tuple[int, str]] = field(default_factory=list)
    busy: set[str] = field(default_factory=set)
    create_log: list[int] = field(default_factory=list)
    # Due lifecycle events: (due_us, sequence, session id). Stale entries are skipped.
    heap: list[tuple[int, int, str]] = field(default_factory=list)
    pr_numbers: dict[str, int] = field(default_factory=dict)
    inflight_creates: int = 0
    # What the bench checks the portal against: the most sessions this account ever held
    # busy at once and created in one rolling 24 h, and the creates refused or failed.
    peak_busy: int = 0
    peak_daily: int = 0
    peak_inflight_creates: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    rng: random.Random = field(default_factory=random.Random)
    last_create_us: int = 0

    def add_source(self, repo: Repo) -> None:
        data = source_json(repo)
        self.sources[data["name"]] = data
        self.source_bytes[data["name"]] = dumps(data)
        self.source_langs[data["name"]] = repo.lang

    def caps(self) -> tuple[int | None, int | None]:
        """(daily, concurrent) caps; both None unless a tier or custom caps are set."""
        daily, concurrent = TIERS.get(self.tier or "", (None, None))
        if self.daily_cap is not None:
            daily = self.daily_cap
        if self.concurrent_cap is not None:
            concurrent = self.concurrent_cap
        return daily, concurrent
