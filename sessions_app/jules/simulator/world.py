"""The simulated Jules service: accounts, sessions, activities, sources and a virtual clock.

Everything happens under one lock. Time advances lazily: each request first runs every
event that is due on the virtual clock, so the simulator needs no background thread and
is deterministic for a given seed and sequence of requests.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sessions_app.jules.simulator import content

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
TERMINAL = {"COMPLETED", "FAILED"}
SCENARIOS = {
    "happy",
    "plan_approval",
    "question",
    "failure",
    "pause",
    "stall",
    "revive",
    "auto_pr",
}
TAG = re.compile(r"\[sim:([a-z_]+)([^\]]*)\]")
OPTION = re.compile(r'(\w+)=("([^"]*)"|\S+)')


def fmt(ts: float) -> str:
    return (EPOCH + dt.timedelta(microseconds=round(ts * 1_000_000))).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )


class SimError(Exception):
    """An error answered with the Google error body."""

    def __init__(
        self, code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.status, self.message, self.details = code, status, message, details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def not_found() -> SimError:
    return SimError(404, "NOT_FOUND", "Requested entity was not found.")


def invalid(message: str) -> SimError:
    return SimError(400, "INVALID_ARGUMENT", message)


@dataclass
class Scenario:
    name: str = "happy"
    step: int = 2
    reason: str = ""
    wait: bool = True  # plan_approval: wait, or time out; question: wait, or complete.
    pr: str = "pr"  # auto_pr: pr | changeset_only | none
    delay: float = 600.0  # revive: seconds after completion
    # Optional content, off by default because existing clients reject some of it (§10).
    bash: bool = False  # bashOutput artifacts on "Ran bash command" progress
    media: bool = False  # a media (image/png) artifact on a verification step
    unknown: bool = False  # an activity of an unknown kind, and an unknown artifact type
    empty_titles: bool = False  # progress updates without a title


@dataclass
class SimSession:
    id: str
    prompt: str
    title: str
    create_ts: float
    update_ts: float
    source: str = ""
    starting_branch: str = ""
    require_plan_approval: bool | None = None
    automation_mode: str = ""
    state: str = "QUEUED"
    archived: bool = False
    outputs: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)
    activity_keys: list[tuple[float, str]] = field(default_factory=list)
    scenario: Scenario = field(default_factory=Scenario)
    phase: str = "queued"
    next_at: float | None = None
    step: int = 0
    steps: list[str] = field(default_factory=list)
    plan_id: str = ""
    revived: bool = False
    plan_timed_out: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": f"sessions/{self.id}",
            "id": self.id,
            "prompt": self.prompt,
        }
        if self.source:
            data["sourceContext"] = {
                "source": self.source,
                "githubRepoContext": {"startingBranch": self.starting_branch},
            }
            if self.state not in {"QUEUED"}:
                data["sourceContext"]["workingBranch"] = f"jules/{content.slug(self.title, 30)}"
        data["title"] = self.title
        if self.require_plan_approval:
            data["requirePlanApproval"] = True
        if self.automation_mode and self.automation_mode != "AUTOMATION_MODE_UNSPECIFIED":
            data["automationMode"] = self.automation_mode
        data["createTime"] = fmt(self.create_ts)
        data["updateTime"] = fmt(self.update_ts)
        data["state"] = self.state
        data["url"] = f"https://jules.google.com/session/{self.id}"
        if self.outputs:
            data["outputs"] = self.outputs
        if self.archived:
            data["archived"] = True
        return data


@dataclass
class Account:
    id: str
    keys: set[str]
    sessions: dict[str, SimSession] = field(default_factory=dict)
    # (-create_ts, id) ascending = newest first; keyset pagination bisects on it.
    order: list[tuple[float, str]] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)
    revoked: bool = False


REPOS = [
    ("acme", "billing", ["main", "release-2026.03"]),
    ("acme", "web", ["main", "develop"]),
    ("acme", "api", ["main"]),
    ("acme", "mobile", ["main", "feature/push"]),
    ("acme", "infra", ["main"]),
    ("acme", "docs", ["main"]),
    ("globex", "search", ["master", "next"]),
    ("globex", "ledger", ["main"]),
]


def source_json(owner: str, repo: str, branches: list[str]) -> dict[str, Any]:
    github: dict[str, Any] = {"owner": owner, "repo": repo}
    if owner == "acme":
        github["isPrivate"] = True
    github["defaultBranch"] = {"displayName": branches[0]}
    github["branches"] = [{"displayName": b} for b in branches]
    return {
        "name": f"sources/github/{owner}/{repo}",
        "id": f"github/{owner}/{repo}",
        "githubRepo": github,
    }


class World:
    """All simulated accounts. Public methods take the lock."""

    def __init__(
        self,
        *,
        api_keys: list[str],
        speed: float = 1.0,
        manual_clock: bool = False,
        seed: int = 0,
        activities_404_seconds: float = 3.0,
        failed_send_revives: bool = False,
        archive_returns_session: bool = False,
    ) -> None:
        self.lock = threading.RLock()
        self.seed = seed
        self.rng = random.Random(seed)
        self.speed = speed
        self.manual = manual_clock
        self.base_virtual = time.time() if not manual_clock else 1_780_000_000.0
        self.base_real = time.monotonic()
        self.offset = 0.0
        self.last_ts = 0.0
        self.activities_404_seconds = activities_404_seconds
        self.failed_send_revives = failed_send_revives
        self.archive_returns_session = archive_returns_session
        self.accounts: dict[str, Account] = {}
        self.key_index: dict[str, Account] = {}
        self.counts: Counter[str] = Counter()
        self.faults: list[Any] = []
        for index, key in enumerate(api_keys):
            self.add_account(f"account-{index + 1}", [key])

    # --- clock ------------------------------------------------------------------------

    def now(self) -> float:
        if self.manual:
            return self.base_virtual + self.offset
        return self.base_virtual + (time.monotonic() - self.base_real) * self.speed + self.offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.offset += seconds
            for account in self.accounts.values():
                self.tick(account)

    def stamp(self, at: float | None = None, after: float = 0.0) -> float:
        """A virtual timestamp strictly after `after` (a session's times never tie)."""
        ts = self.now() if at is None else at
        return max(ts, after + 0.000001)

    # --- accounts and ids -------------------------------------------------------------

    def add_account(self, account_id: str, keys: list[str], with_sources: bool = True) -> Account:
        with self.lock:
            account = Account(account_id, set(keys))
            if with_sources:
                for owner, repo, branches in REPOS:
                    src = source_json(owner, repo, branches)
                    account.sources[src["name"]] = src
            self.accounts[account_id] = account
            for key in keys:
                self.key_index[key] = account
            return account

    def account(self, key: str) -> Account | None:
        return self.key_index.get(key)

    def session_id(self) -> str:
        return str(self.rng.randrange(10**18, 18 * 10**18))

    def hex_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    # --- sessions ---------------------------------------------------------------------

    def insert(self, account: Account, session: SimSession) -> None:
        account.sessions[session.id] = session
        bisect.insort(account.order, (-session.create_ts, session.id))
        if session.state not in TERMINAL or session.next_at is not None:
            account.active.add(session.id)

    def remove(self, account: Account, session: SimSession) -> None:
        del account.sessions[session.id]
        account.order.remove((-session.create_ts, session.id))
        account.active.discard(session.id)

    def add_activity(
        self,
        session: SimSession,
        kind: str,
        payload: dict[str, Any],
        *,
        originator: str = "agent",
        description: str = "",
        artifacts: list[dict[str, Any]] | None = None,
        at: float | None = None,
    ) -> dict[str, Any]:
        ts = self.stamp(at, session.activity_keys[-1][0] if session.activity_keys else 0.0)
        activity_id = self.hex_id()
        data: dict[str, Any] = {
            "name": f"sessions/{session.id}/activities/{activity_id}",
            "id": activity_id,
            "createTime": fmt(ts),
            "originator": originator,
        }
        if description:
            data["description"] = description
        data[kind] = payload
        if artifacts:
            data["artifacts"] = artifacts
        session.activities.append(data)
        session.activity_keys.append((ts, activity_id))
        session.update_ts = ts
        return data

    def set_state(self, session: SimSession, state: str, at: float | None = None) -> None:
        session.state = state
        session.update_ts = self.stamp(at, session.update_ts)

    def create(
        self, account: Account, body: dict[str, Any], scenario: Scenario, at: float | None = None
    ) -> SimSession:
        with self.lock:
            ts = self.stamp(at)
            context = body.get("sourceContext") or {}
            prompt = body["prompt"]
            session = SimSession(
                id=self.session_id(),
                prompt=prompt,
                title=body.get("title") or content.title_for(prompt),
                create_ts=ts,
                update_ts=ts,
                source=context.get("source", ""),
                starting_branch=(context.get("githubRepoContext") or {}).get("startingBranch", ""),
                require_plan_approval=body.get("requirePlanApproval"),
                automation_mode=body.get("automationMode", ""),
                scenario=scenario,
                next_at=ts + 5,
            )
            self.insert(account, session)
            return session

    def tick(self, account: Account) -> None:
        """Run every due event of the account's live sessions."""
        now = self.now()
        for session_id in list(account.active):
            session = account.sessions.get(session_id)
            if session is None:
                account.active.discard(session_id)
                continue
            guard = 0
            while session.next_at is not None and session.next_at <= now and guard < 200:
                at = session.next_at
                session.next_at = None
                self._step(session, at)
                guard += 1
            if session.next_at is None:
                # Nothing scheduled: the session waits for a person (or stalls); an action
                # puts it back on the active list.
                account.active.discard(session_id)

    def _step(self, s: SimSession, at: float) -> None:
        sc = s.scenario
        if s.phase == "queued":
            self.set_state(s, "PLANNING", at)
            s.phase, s.next_at = "planning", at + 60
        elif s.phase == "planning":
            self._plan(s, at)
            if s.require_plan_approval:
                self.set_state(s, "AWAITING_PLAN_APPROVAL", at)
                s.phase = "waiting"
                if sc.name == "plan_approval" and not sc.wait:
                    s.phase, s.next_at = "plan_timeout", s.create_ts + 600
            else:
                s.phase, s.next_at = "auto_approve", at + 2
        elif s.phase == "plan_timeout":
            s.plan_timed_out = True
            self.set_state(s, "COMPLETED", at)
            s.phase = "done"
        elif s.phase == "auto_approve":
            self.add_activity(s, "planApproved", {"planId": s.plan_id}, originator="user", at=at)
            self.set_state(s, "IN_PROGRESS", at)
            s.phase, s.next_at = "working", at + 26
        elif s.phase == "working":
            self._work(s, at)
        elif s.phase == "revive":
            self.add_activity(
                s,
                "progressUpdated",
                {"title": "Resumed work", "description": "Picking up follow-up changes."},
                at=at,
            )
            self.set_state(s, "IN_PROGRESS", at)
            s.revived = True
            s.step = max(0, len(s.steps) - 1)
            s.phase, s.next_at = "working", at + 26

    def _plan(self, s: SimSession, at: float) -> None:
        s.plan_id = self.hex_id()
        titles = content.plan_steps(self.rng)
        s.steps = titles
        steps = []
        for index, title in enumerate(titles):
            step: dict[str, Any] = {"id": self.hex_id(), "title": title}
            if index:
                step["index"] = index
            steps.append(step)
        self.add_activity(
            s,
            "planGenerated",
            {"plan": {"id": s.plan_id, "steps": steps, "createTime": fmt(at)}},
            description="Plan generated",
            at=at,
        )

    def _work(self, s: SimSession, at: float) -> None:
        sc = s.scenario
        k = s.step
        if sc.name == "failure" and k >= sc.step:
            reason = sc.reason or content.FAILURES[0]
            self.add_activity(s, "sessionFailed", {"reason": reason}, at=at)
            self.set_state(s, "FAILED", at)
            s.phase = "done"
            return
        if sc.name == "pause" and k == sc.step and s.phase != "paused":
            self.add_activity(s, "progressUpdated", {"title": "Waiting"}, at=at)
            self.set_state(s, "PAUSED", at)
            s.phase = "paused"
            s.step += 1
            return
        if sc.name == "stall" and k >= sc.step:
            return  # IN_PROGRESS forever, no further activity.
        if sc.name == "question" and k == 1 and not s.revived:
            question = content.QUESTIONS[0]
            self.add_activity(s, "agentMessaged", {"agentMessage": question}, at=at)
            s.step += 1
            if sc.wait:
                self.set_state(s, "AWAITING_USER_FEEDBACK", at)
                s.phase = "waiting"
            else:
                s.next_at = at + 26
            return
        if k < len(s.steps):
            title, desc = content.PROGRESS[k % len(content.PROGRESS)]
            payload = {"title": s.steps[k] if k % 2 else title, "description": desc}
            if sc.empty_titles:
                payload.pop("title")
            artifacts: list[dict[str, Any]] = []
            if sc.bash:
                payload = {"title": "Ran bash command", "description": "Command: pytest -q"}
                artifacts.append({"bashOutput": {"command": "pytest -q", "output": "41 passed"}})
            if sc.media and k == 1:
                artifacts.append({"media": {"data": content.PNG_1PX, "mimeType": "image/png"}})
            if sc.unknown and k == 0:
                self.add_activity(
                    s,
                    "toolCalled",
                    {"tool": "grep"},
                    description="Searched the code",
                    artifacts=[{"hologram": {"frames": 3}}],
                    at=at,
                )
            self.add_activity(s, "progressUpdated", payload, artifacts=artifacts or None, at=at)
            s.step += 1
            s.next_at = at + 26
            return
        self._complete(s, at)

    def _complete(self, s: SimSession, at: float) -> None:
        patch = content.unified_diff(s.prompt, self.rng)
        change_set = {
            "source": s.source,
            "gitPatch": {
                "unidiffPatch": patch,
                "baseCommitId": f"{self.rng.getrandbits(160):040x}",
                "suggestedCommitMessage": f"feat: {s.title[:60].lower()}",
            },
        }
        if not s.source:
            change_set.pop("source")
        self.add_activity(s, "sessionCompleted", {}, artifacts=[{"changeSet": change_set}], at=at)
        pr_mode = s.scenario.pr if s.scenario.name == "auto_pr" else "pr"
        outputs: list[dict[str, Any]] = []
        if pr_mode != "none":
            outputs.append({"changeSet": change_set})
            if pr_mode == "pr" and s.automation_mode == "AUTO_CREATE_PR" and s.source:
                owner_repo = s.source.removeprefix("sources/github/")
                number = self.rng.randint(10, 2000)
                outputs.append(
                    {
                        "pullRequest": {
                            "url": f"https://github.com/{owner_repo}/pull/{number}",
                            "title": s.title,
                            "description": f"Jules: {s.title}.",
                            "baseRef": s.starting_branch or "main",
                            "headRef": f"jules/{content.slug(s.title, 30)}",
                        }
                    }
                )
        if outputs:
            s.outputs = outputs
        self.set_state(s, "COMPLETED", at)
        s.phase = "done"
        if s.scenario.name == "revive" and not s.revived:
            s.phase, s.next_at = "revive", at + s.scenario.delay

    # --- actions ----------------------------------------------------------------------

    def approve(self, account: Account, s: SimSession) -> None:
        if s.state == "AWAITING_PLAN_APPROVAL":
            at = self.now()
            self.add_activity(s, "planApproved", {"planId": s.plan_id}, originator="user", at=at)
            self.set_state(s, "IN_PROGRESS", at)
            s.phase, s.next_at = "working", at + 26
            account.active.add(s.id)
            return
        if s.state == "COMPLETED" and s.plan_timed_out:
            return  # The live service answered {} and nothing moved.
        raise SimError(400, "FAILED_PRECONDITION", "Session is not awaiting plan approval.")

    def message(self, account: Account, s: SimSession, prompt: str) -> None:
        if s.state == "FAILED" and not self.failed_send_revives:
            raise SimError(400, "FAILED_PRECONDITION", "Session is not active.")
        at = self.now()
        self.add_activity(s, "userMessaged", {"userMessage": prompt}, originator="user", at=at)
        if s.state == "AWAITING_PLAN_APPROVAL":
            self._plan(s, at + 1)
            return
        if s.state in {"AWAITING_USER_FEEDBACK", "PAUSED", "COMPLETED", "FAILED"}:
            revived = s.state in {"COMPLETED", "FAILED"}
            self.set_state(s, "IN_PROGRESS", at)
            if revived:
                s.revived = True
                s.step = max(0, len(s.steps) - 1)
            s.phase, s.next_at = "working", at + 26
            account.active.add(s.id)
