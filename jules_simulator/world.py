"""The simulated service: accounts, sessions and activities on a virtual clock.

Everything happens under one re-entrant lock. Time advances lazily: before a request is
answered, every lifecycle event of the caller's account that is due on the virtual clock
runs, stamped with its own due time. No background thread is needed, an activity's
`createTime` never depends on when someone looked, and a seed plus a sequence of requests
always gives the same JSON.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
import threading
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from typing import Any

from jules_simulator import content
from jules_simulator.clock import US, VirtualClock, format_ts
from jules_simulator.config import AccountSpec, SimulatorConfig
from jules_simulator.errors import SimError, bad_key, error_info
from jules_simulator.faults import FaultRule
from jules_simulator.lifecycle import Lifecycle
from jules_simulator.model import (
    BUSY_STATES,
    TIERS,
    Account,
    SimActivity,
    SimSession,
)
from jules_simulator.scenarios import Scenario, parse_scenario
from jules_simulator.seed import seed_demo, seed_history

MAX_KEYS = 3
DAY_US = 86_400 * US


class World:
    """All simulated accounts.

    Methods meant for callers outside the simulator (tests, the admin API, the in-process
    handle) take the lock themselves; the primitives the lifecycle and the operations use
    (`schedule`, `add_activity`, `set_state`, `touch`, `tick`) expect the caller to hold it.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        api_keys: Sequence[str] = ("sim-demo-key",),
        speed: float = 1.0,
        manual_clock: bool = False,
        seed: int = 0,
        seed_sessions: int = 0,
        activities_per_session: int = 10,
        demo: bool = False,
    ) -> None:
        self.config = config or SimulatorConfig()
        if speed <= 0:
            raise ValueError("speed must be positive")
        if self.config.tier is not None and self.config.tier not in TIERS:
            raise ValueError(f"unknown tier {self.config.tier!r}; expected one of {sorted(TIERS)}")
        parse_scenario(self.config.default_scenario)  # Fail at start, not at the first create.
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.api_keys = list(api_keys)
        self.speed = speed
        self.manual = manual_clock
        # On the wall clock, `speed` divides every delay of the lifecycle instead of
        # scaling the clock, so timestamps never run ahead of real time; a manual clock
        # moves only when told and keeps the unscaled delays.
        self.pace = 1.0 if manual_clock else speed
        self.seed = seed
        self.seed_sessions = seed_sessions
        self.activities_per_session = activities_per_session
        self.demo = demo
        self.machine = Lifecycle(self)
        self.faults: list[FaultRule] = []
        self._build()

    # --- building and resetting ---------------------------------------------------------

    def _build(self) -> None:
        start = self.config.start_time
        self.clock = VirtualClock(
            speed=1.0,
            manual=self.manual,
            start_us=round(start * US) if start is not None else None,
        )
        self.accounts: dict[str, Account] = {}
        self.key_index: dict[str, Account] = {}
        self.session_index: dict[str, Account] = {}
        self.counts: Counter[str] = Counter()
        self.sequence = itertools.count()
        self.scenario_queue: deque[tuple[str | None, Scenario]] = deque()
        self.fault_rng = random.Random(f"{self.seed}/faults")
        for index, key in enumerate(self.api_keys):
            account = self.add_account(
                f"account-{index + 1}",
                [key],
                tier=self.config.tier,
                daily_cap=self.config.daily_cap,
                concurrent_cap=self.config.concurrent_cap,
                parallel_create_limit=self.config.parallel_create_limit,
            )
            # Only the first key's account gets the history, so the others start empty and
            # show account isolation plainly.
            if index == 0 and self.seed_sessions:
                seed_history(self, account, self.seed_sessions, self.activities_per_session)
            if index == 0 and self.demo:
                seed_demo(self, account)
        for spec in self.config.accounts:
            self.add_account_from_spec(spec)

    def add_account_from_spec(self, spec: AccountSpec) -> Account:
        account = self.add_account(
            spec.id,
            list(spec.keys),
            tier=spec.tier,
            daily_cap=spec.daily_cap,
            concurrent_cap=spec.concurrent_cap,
            parallel_create_limit=spec.parallel_create_limit,
            sources=spec.sources,
        )
        if spec.seed_sessions:
            seed_history(self, account, spec.seed_sessions, spec.activities_per_session)
        return account

    def reset(self) -> None:
        """Back to the state at start: accounts, seeded sessions, clock; faults cleared."""
        with self.lock:
            self.faults.clear()
            self._build()

    # --- clock --------------------------------------------------------------------------

    def now_us(self) -> int:
        return self.clock.now_us()

    def stamp(self, rng: random.Random) -> int:
        """`now` less a sub-millisecond processing time, so action times look like live
        ones (six random digits) even on a manual clock that moves in whole seconds."""
        return self.clock.now_us() - rng.randrange(1000)

    def now(self) -> str:
        return format_ts(self.clock.now_us())

    def advance(self, seconds: float) -> None:
        """Move the virtual clock (in any mode) and run every event that became due."""
        with self.lock:
            self.clock.advance(seconds)
            self.tick_all()

    def tick(self, account: Account) -> None:
        """Run every due event of one account, each stamped with its own due time."""
        now = self.clock.now_us()
        heap = account.heap
        while heap and heap[0][0] <= now:
            due, _, session_id = heapq.heappop(heap)
            session = account.sessions.get(session_id)
            if session is None or session.next_us != due:
                continue  # Deleted, or rescheduled since this entry was pushed.
            session.next_us = None
            self.machine.run(account, session, due)

    def tick_all(self) -> None:
        with self.lock:
            for account in self.accounts.values():
                self.tick(account)

    def schedule(self, account: Account, session: SimSession, at_us: int) -> None:
        session.next_us = at_us
        heapq.heappush(account.heap, (at_us, next(self.sequence), session.id))

    # --- accounts and keys --------------------------------------------------------------

    def add_account(
        self,
        account_id: str,
        keys: Sequence[str],
        *,
        tier: str | None = None,
        daily_cap: int | None = None,
        concurrent_cap: int | None = None,
        parallel_create_limit: int | None = None,
        sources: Iterable[content.Repo] | None = None,
    ) -> Account:
        with self.lock:
            if account_id in self.accounts:
                raise ValueError(f"account {account_id!r} exists")
            if tier is not None and tier not in TIERS:
                raise ValueError(f"unknown tier {tier!r}; expected one of {sorted(TIERS)}")
            # Check every key first, so a refused request leaves no half-made account.
            if len(set(keys)) > MAX_KEYS:
                raise ValueError(f"an account holds at most {MAX_KEYS} keys")
            if any(not key or key in self.key_index for key in keys):
                raise ValueError("a key is empty or belongs to another account")
            account = Account(
                account_id,
                [],
                tier=tier,
                daily_cap=daily_cap,
                concurrent_cap=concurrent_cap,
                parallel_create_limit=parallel_create_limit,
                rng=random.Random(f"{self.seed}/{account_id}/ids"),
            )
            for repo in content.REPOS if sources is None else sources:
                account.add_source(repo)
            self.accounts[account_id] = account
            for key in keys:
                self.add_key(account, key)
            return account

    def add_key(self, account: Account, key: str) -> None:
        with self.lock:
            if not key:
                raise ValueError("an API key cannot be empty")
            if key in self.key_index and self.key_index[key] is not account:
                raise ValueError("that key belongs to another account")
            live = [k for k in account.keys if k not in account.revoked_keys]
            if key not in account.keys and len(live) >= MAX_KEYS:
                raise ValueError(f"an account holds at most {MAX_KEYS} keys")
            if key not in account.keys:
                account.keys.append(key)
            account.revoked_keys.discard(key)
            self.key_index[key] = account

    def revoke(self, key: str | None = None, account_id: str | None = None) -> None:
        with self.lock:
            if key is not None and key in self.key_index:
                self.key_index[key].revoked_keys.add(key)
            if account_id is not None and account_id in self.accounts:
                self.accounts[account_id].revoked = True

    def account(self, key: str) -> Account | None:
        """The account a key belongs to (revoked or not), for introspection."""
        return self.key_index.get(key)

    def authenticate(self, key: str) -> Account:
        account = self.key_index.get(key)
        if account is None or account.revoked or key in account.revoked_keys:
            raise bad_key()
        return account

    # --- introspection ------------------------------------------------------------------

    def session(self, session_id: str) -> SimSession | None:
        """A session of any account, with its due events run first."""
        with self.lock:
            account = self.session_index.get(session_id)
            if account is None:
                return None
            self.tick(account)
            return account.sessions.get(session_id)

    def count(self, name: str, account: Account | None = None) -> None:
        with self.lock:
            self.counts[name] += 1
            if account is not None:
                account.counts[name] += 1

    def request_counts(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)

    def describe_session(self, session: SimSession) -> dict[str, Any]:
        """The admin API's view: the public state and the scenario's bookkeeping."""
        return {
            "id": session.id,
            "account": session.account_id,
            "state": session.state,
            "archived": session.archived,
            "phase": session.phase,
            "scenario": session.scenario.to_dict(),
            "nextEventTime": format_ts(session.next_us) if session.next_us else None,
            "step": session.step,
            "totalSteps": session.total,
            "activities": len(session.activities),
            "completions": session.completions,
            "revivals": session.revivals,
            "planTimedOut": session.plan_timed_out,
        }

    # --- faults and scenario queue ------------------------------------------------------

    def add_fault(self, rule: FaultRule | str | dict[str, Any]) -> FaultRule:
        if isinstance(rule, str):
            rule = FaultRule.parse(rule)
        elif isinstance(rule, dict):
            rule = FaultRule.from_dict(rule)
        with self.lock:
            rule.start(self.clock.now_us())
            self.faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def pick_faults(
        self, method: str, path: str, key: str | None, operation: str | None
    ) -> list[FaultRule]:
        """The rules this request fires: latency rules, then at most one that answers."""
        with self.lock:
            if not self.faults:
                return []
            account = self.key_index.get(key or "")
            context = {
                "method": method,
                "path": path,
                "key": key,
                "account": account.id if account else None,
                "operation": operation,
                "now_us": self.clock.now_us(),
            }
            fired: list[FaultRule] = []
            for rule in self.faults:
                if rule.fires(context, self.fault_rng):
                    fired.append(rule)
                    if rule.kind != "latency":
                        break
            return fired

    def enqueue_scenarios(self, texts: Iterable[str], account_id: str | None = None) -> int:
        scenarios = [parse_scenario(text, origin="queue") for text in texts]
        with self.lock:
            self.scenario_queue.extend((account_id, sc) for sc in scenarios)
            return len(self.scenario_queue)

    def next_queued_scenario(self, account: Account) -> Scenario | None:
        for index, (account_id, scenario) in enumerate(self.scenario_queue):
            if account_id in (None, account.id):
                del self.scenario_queue[index]
                return scenario
        return None

    # --- sessions (callers hold the lock) -----------------------------------------------

    def new_session_id(self, account: Account) -> str:
        # 19 or 20 decimal digits, beyond 2^53 like the live ids: docs/jules-api.md#names-and-ids
        while True:
            candidate = str(account.rng.randrange(10**18, 2**64))
            if candidate not in self.session_index:
                return candidate

    def check_quota(self, account: Account) -> None:
        daily, concurrent = account.caps()
        now = self.clock.now_us()
        if daily is not None:
            recent = len(account.create_log) - bisect.bisect_right(account.create_log, now - DAY_US)
            if recent >= daily:
                self.count("refused.daily", account)
                raise SimError(
                    429,
                    "RESOURCE_EXHAUSTED",
                    f"Quota exceeded: at most {daily} sessions per 24 hours on this plan.",
                    [error_info("DAILY_SESSION_LIMIT", "jules.googleapis.com", limit=str(daily))],
                )
        if concurrent is not None and len(account.busy) >= concurrent:
            self.count("refused.concurrent", account)
            raise SimError(
                429,
                "RESOURCE_EXHAUSTED",
                f"Quota exceeded: at most {concurrent} concurrent sessions on this plan.",
                [
                    error_info(
                        "CONCURRENT_SESSION_LIMIT", "jules.googleapis.com", limit=str(concurrent)
                    )
                ],
            )

    def insert_session(self, account: Account, session: SimSession) -> None:
        account.sessions[session.id] = session
        bisect.insort(account.order, session.create_key)
        self.session_index[session.id] = account
        if session.state in BUSY_STATES:
            account.busy.add(session.id)
        bisect.insort(account.create_log, session.create_us)
        account.last_create_us = max(account.last_create_us, session.create_us)

    def create_session(
        self,
        account: Account,
        fields: dict[str, Any],
        scenario: Scenario,
        at_us: int | None = None,
    ) -> SimSession:
        """A new QUEUED session from validated create fields, its lifecycle started."""
        with self.lock:
            if at_us is None:
                # Creation times of one account strictly increase, so a new session is
                # always the newest and keyset cursors of earlier pages stay valid.
                now = self.stamp(account.rng)
                create_us = max(now, account.last_create_us + 1)
            else:
                create_us = at_us
            source = fields.get("source", "")
            title = fields.get("title") or content.title_for(fields["prompt"])
            session = SimSession(
                id=self.new_session_id(account),
                account_id=account.id,
                prompt=fields["prompt"],
                title=title,
                create_us=create_us,
                update_us=create_us,
                source=source,
                starting_branch=fields.get("starting_branch", ""),
                env_vars=bool(fields.get("env_vars")),
                require_plan_approval=bool(fields.get("require_plan_approval")),
                automation_mode=fields.get("automation_mode", ""),
                scenario=scenario,
                lang=account.source_langs.get(source, content.REPOLESS_LANG),
            )
            self.insert_session(account, session)
            self.machine.start(account, session)
            self.note_peaks(account, create_us)
            return session

    def note_peaks(self, account: Account, now_us: int) -> None:
        """Raise the account's peaks after a create (callers hold the lock)."""
        recent = len(account.create_log) - bisect.bisect_right(account.create_log, now_us - DAY_US)
        account.peak_daily = max(account.peak_daily, recent)
        account.peak_busy = max(account.peak_busy, len(account.busy))

    def quotas(self) -> dict[str, dict[str, Any]]:
        """Per account: caps, what it holds now, its peaks and its refusals."""
        with self.lock:
            self.tick_all()
            now = self.clock.now_us()
            report = {}
            for account in self.accounts.values():
                daily, concurrent = account.caps()
                log = account.create_log
                report[account.id] = {
                    "daily_cap": daily,
                    "concurrent_cap": concurrent,
                    "parallel_create_limit": account.parallel_create_limit,
                    "busy": len(account.busy),
                    "created_24h": len(log) - bisect.bisect_right(log, now - DAY_US),
                    "created": len(account.sessions),
                    "peak_busy": account.peak_busy,
                    "peak_daily": account.peak_daily,
                    "peak_inflight_creates": account.peak_inflight_creates,
                    "refused_daily": account.counts["refused.daily"],
                    "refused_concurrent": account.counts["refused.concurrent"],
                    "parallel_create_failures": account.counts["parallel_failed.sessions.create"],
                    "states": dict(Counter(s.state for s in account.sessions.values())),
                }
            return report

    def delete_session(self, account: Account, session: SimSession) -> None:
        with self.lock:
            del account.sessions[session.id]
            index = bisect.bisect_left(account.order, session.create_key)
            if index < len(account.order) and account.order[index] == session.create_key:
                del account.order[index]
            account.busy.discard(session.id)
            self.session_index.pop(session.id, None)
            session.next_us = None

    def set_archived(self, session: SimSession, archived: bool) -> None:
        with self.lock:
            if session.archived != archived:
                session.archived = archived
                self.touch(session, self.clock.now_us())

    # --- primitives of the lifecycle (callers hold the lock) ----------------------------

    def add_activity(
        self,
        session: SimSession,
        kind: str,
        payload: Any,
        *,
        at: int,
        rng: random.Random,
        originator: str = "agent",
        description: str = "",
        artifacts: list[dict[str, Any]] | None = None,
    ) -> SimActivity:
        # Strictly ascending within a session, so no two activities share a createTime.
        last = session.activities[-1].ts if session.activities else session.create_us
        activity = SimActivity(
            session.id,
            f"{rng.getrandbits(128):032x}",
            max(at, last + 1),
            originator,
            kind,
            payload,
            description,
            artifacts,
        )
        session.activities.append(activity)
        return activity

    def set_state(self, account: Account, session: SimSession, state: str) -> None:
        session.state = state
        if state in BUSY_STATES and session.id in account.sessions:
            account.busy.add(session.id)
            account.peak_busy = max(account.peak_busy, len(account.busy))
        else:
            account.busy.discard(session.id)
        session.changed()

    def touch(self, session: SimSession, at: int) -> None:
        """Bump updateTime for a change at `at`: never backwards, never the same twice."""
        latest = max(at, session.activities[-1].ts) if session.activities else at
        session.update_us = max(latest, session.update_us + 1)
        session.changed()
