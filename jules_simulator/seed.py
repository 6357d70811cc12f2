"""Seeded histories (thousands of settled sessions, fast and deterministic) and the demo.

Seeding builds records directly instead of playing the state machine, and shares every
string it can (payloads, diffs, PR text are cached per prompt and language), so 10,000
sessions of 10 activities take about a second and little memory.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jules_simulator import content
from jules_simulator.clock import US, format_ts
from jules_simulator.model import BUSY_STATES, Account, SimActivity, SimSession
from jules_simulator.scenarios import Scenario, parse_scenario

if TYPE_CHECKING:
    from jules_simulator.world import World

# The live census of 562 sessions: docs/jules-api.md#paused-sessions
CENSUS = (
    ("COMPLETED", 0.936),
    ("PAUSED", 0.043),
    ("FAILED", 0.020),
    ("AWAITING_USER_FEEDBACK", 0.002),
)
QUESTION_SCENARIO = Scenario(name="question", step=1, mode="wait", origin="default")
HAPPY = Scenario(origin="default")


def _census_state(rng: random.Random) -> str:
    roll = rng.random()
    for state, share in CENSUS:
        if roll < share:
            return state
        roll -= share
    return "COMPLETED"


class _Pools:
    """Strings and payloads shared between seeded sessions with the same prompt and language."""

    def __init__(self) -> None:
        self.titles: dict[str, str] = {}
        self.work: dict[tuple[str, str], list[tuple[str, Any]]] = {}
        self.diffs: dict[tuple[str, str], str] = {}
        self.descriptions: dict[tuple[str, str], str] = {}
        self.questions: dict[str, dict[str, str]] = {}

    def title(self, prompt: str) -> str:
        if prompt not in self.titles:
            self.titles[prompt] = content.title_for(prompt)
        return self.titles[prompt]

    def work_items(self, prompt: str, lang: str) -> list[tuple[str, Any]]:
        key = (prompt, lang)
        if key not in self.work:
            rng = random.Random(f"work/{prompt}/{lang}")
            items: list[tuple[str, Any]] = []
            for index in range(4):
                title, description = content.progress(rng, prompt, lang, index)
                items.append(("progressUpdated", {"title": title, "description": description}))
                command, output, _ = content.bash_run(rng, lang, index + 1)
                summary = output.splitlines()[-1] if output else ""
                items.append(
                    (
                        "progressUpdated",
                        {
                            "title": "Ran bash command",
                            "description": f"Command: {command}\nOutput: {summary}",
                        },
                    )
                )
            items.insert(3, ("agentMessaged", {"agentMessage": content.agent_note(rng, prompt)}))
            self.work[key] = items
        return self.work[key]

    def diff(self, prompt: str, lang: str) -> str:
        key = (prompt, lang)
        if key not in self.diffs:
            self.diffs[key] = content.unified_diff(random.Random(f"diff/{prompt}"), prompt, lang)
        return self.diffs[key]

    def pr_description(self, prompt: str, lang: str) -> str:
        key = (prompt, lang)
        if key not in self.descriptions:
            self.descriptions[key] = content.pr_description(self.title(prompt), prompt, lang)
        return self.descriptions[key]

    def question(self, prompt: str) -> dict[str, str]:
        if prompt not in self.questions:
            text = content.question(random.Random(f"question/{prompt}"), prompt)
            self.questions[prompt] = {"agentMessage": text}
        return self.questions[prompt]


def seed_history(
    world: World,
    account: Account,
    count: int,
    activities: int,
    *,
    days: float | None = None,
    states: Sequence[str] | None = None,
    live: int | None = None,
) -> None:
    """Add `count` sessions: settled ones of exactly `activities` activities each, states
    drawn from the live census (or `states`, cycled), createTimes spread over `days`, plus
    a few still-active ones at the newest end (`live`; about one per 200, at most 5)."""
    config = world.config
    days = config.seed_days if days is None else days
    live_count = min(5, count // 200) if live is None else min(live, count)
    settled = count - live_count
    with world.lock:
        rng = random.Random(f"{world.seed}/{account.id}/history/{len(account.sessions)}")
        pools = _Pools()
        now = world.now_us()
        newest = now - 3600 * US
        span = int(days * 86_400 * US)
        spacing = max(1, span // max(settled, 1))
        sources = sorted(account.sources)
        for index in range(settled):
            create_us = newest - span + index * spacing + rng.randrange(max(1, spacing // 2))
            state = states[index % len(states)] if states else _census_state(rng)
            session = _settled_session(world, account, rng, pools, sources, create_us, now, state)
            session.archived = rng.random() < config.archived_fraction
            _add(world, account, session)
        account.order.sort()
        account.create_log.sort()
        if live_count:
            _seed_live(world, account, rng, sources, live_count)


def _add(world: World, account: Account, session: SimSession) -> None:
    # Appends only; the caller sorts once at the end (insort per session would be quadratic).
    account.sessions[session.id] = session
    account.order.append(session.create_key)
    account.create_log.append(session.create_us)
    account.last_create_us = max(account.last_create_us, session.create_us)
    world.session_index[session.id] = account
    if session.state in BUSY_STATES:
        account.busy.add(session.id)


def _settled_session(
    world: World,
    account: Account,
    rng: random.Random,
    pools: _Pools,
    sources: list[str],
    create_us: int,
    now: int,
    state: str,
) -> SimSession:
    prompt = content.seeded_prompt(rng)
    source = rng.choice(sources) if sources and rng.random() >= 0.05 else ""
    lang = account.source_langs.get(source, content.REPOLESS_LANG)
    title = pools.title(prompt)
    branches = account.sources[source]["githubRepo"]["branches"] if source else []
    session = SimSession(
        id=world.new_session_id(account),
        account_id=account.id,
        prompt=prompt,
        title=title,
        create_us=create_us,
        update_us=create_us,
        source=source,
        starting_branch=branches[0]["displayName"] if branches else "",
        working_branch=content.working_branch(title, rng) if source else "",
        require_plan_approval=rng.random() < 0.4,
        automation_mode="AUTO_CREATE_PR" if source and rng.random() < 0.6 else "",
        state=state,
        lang=lang,
        phase="done",
        scenario=QUESTION_SCENARIO if state == "AWAITING_USER_FEEDBACK" else HAPPY,
    )
    _fill(world, account, session, rng, pools, state, now)
    return session


def _fill(
    world: World,
    account: Account,
    s: SimSession,
    rng: random.Random,
    pools: _Pools,
    state: str,
    now: int,
) -> None:
    """Exactly `world.activities_per_session` activities ending the way `state` ends."""
    count = world.activities_per_session
    ending = state != "PAUSED"  # A PAUSED session's last event is a progress update.
    head = min(2, count - 1) if ending else min(2, count)
    middle = max(0, count - head - (1 if ending else 0))
    # Keep every activity in the past even for very long histories.
    room = max(1, now - s.create_us - 120 * US)
    gap = min(26 * US, room // max(count + 4, 1))
    ts = s.create_us + int(rng.uniform(55, 66) * US) if gap == 26 * US else s.create_us + gap

    def add(
        kind: str,
        payload: Any,
        originator: str = "agent",
        artifacts: Any = None,
        description: str = "",
    ) -> None:
        nonlocal ts
        activity_id = f"{rng.getrandbits(128):032x}"
        s.activities.append(
            SimActivity(s.id, activity_id, ts, originator, kind, payload, description, artifacts)
        )
        ts += int(gap * rng.uniform(0.7, 1.3)) + 1

    titles = content.plan_titles(rng, s.prompt)
    s.plan_titles = titles
    s.plan_id = f"{rng.getrandbits(128):032x}"
    s.plans = 1
    s.total = s.step = 2 * len(titles)
    if head >= 1:
        steps: list[dict[str, Any]] = []
        for index, step_title in enumerate(titles):
            step: dict[str, Any] = {"id": f"{rng.getrandbits(128):032x}", "title": step_title}
            if index:
                step["index"] = index
            steps.append(step)
        plan = {"id": s.plan_id, "steps": steps, "createTime": format_ts(ts - 2113)}
        add("planGenerated", {"plan": plan}, description="Plan generated")
    if head >= 2:
        add("planApproved", {"planId": s.plan_id}, originator="user")
    items = pools.work_items(s.prompt, s.lang)
    offset = rng.randrange(len(items))
    asked = middle >= 4 and rng.random() < 0.05
    for index in range(middle):
        if asked and index == middle // 2:
            add("agentMessaged", pools.question(s.prompt))
        elif asked and index == middle // 2 + 1:
            add("userMessaged", {"userMessage": "Yes, go ahead."}, originator="user")
        else:
            kind, payload = items[(offset + index) % len(items)]
            if not ending and index == middle - 1 and kind != "progressUpdated":
                kind, payload = items[0]  # A pause follows a progress update.
            add(kind, payload)
    if state == "COMPLETED" and ending and count:
        _complete(account, s, rng, pools, add)
    elif state == "FAILED" and ending and count:
        add("sessionFailed", {"reason": content.failure_reason(rng)})
        s.interjected = True
    elif state == "AWAITING_USER_FEEDBACK" and ending and count:
        add("agentMessaged", pools.question(s.prompt))
        s.phase, s.interjected = "awaiting_feedback", True
    elif state == "PAUSED":
        s.phase, s.interjected = "paused", True
        s.step = max(0, s.total - 2)
    s.update_us = s.activities[-1].ts if s.activities else s.create_us


def _complete(account: Account, s: SimSession, rng: random.Random, pools: _Pools, add: Any) -> None:
    roll = rng.random()
    if roll < 0.03:
        add("sessionCompleted", {})  # Completion with no outputs.
        s.completions = 1
        return
    s.base_commit = f"{rng.getrandbits(160):040x}"
    patch = {
        "unidiffPatch": pools.diff(s.prompt, s.lang),
        "baseCommitId": s.base_commit,
        "suggestedCommitMessage": content.commit_message(s.title),
    }
    change_set: dict[str, Any] = {"source": s.source, "gitPatch": patch}
    if not s.source:
        del change_set["source"]
    add("sessionCompleted", {}, artifacts=[{"changeSet": change_set}])
    s.completions = 1
    s.outputs = [{"changeSet": change_set}]
    # Under AUTO_CREATE_PR a PR, except when the GitHub app lacked write access.
    if s.automation_mode == "AUTO_CREATE_PR" and s.source and roll > 0.1:
        repo = s.source.removeprefix("sources/github/")
        number = account.pr_numbers.get(repo, 100 + sum(map(ord, repo)) % 300) + 1
        account.pr_numbers[repo] = number
        s.pull_request = {
            "url": f"https://github.com/{repo}/pull/{number}",
            "title": s.title,
            "description": pools.pr_description(s.prompt, s.lang),
            "baseRef": s.starting_branch,
            "headRef": s.working_branch,
        }
        pr = {"pullRequest": s.pull_request}
        s.outputs.insert(0 if roll > 0.8 else 1, pr)


def _seed_live(
    world: World, account: Account, rng: random.Random, sources: list[str], count: int
) -> None:
    """A few sessions still moving: created minutes ago, played by the state machine."""
    now = world.now_us()
    for index in range(count):
        source = sources[index % len(sources)] if sources else ""
        fields: dict[str, Any] = {
            "prompt": content.seeded_prompt(rng),
            "require_plan_approval": index % 3 == 1,
            "automation_mode": "AUTO_CREATE_PR",
        }
        if source:
            branches = account.sources[source]["githubRepo"]["branches"]
            fields |= {"source": source, "starting_branch": branches[0]["displayName"]}
        age = rng.uniform(20, 240)
        world.create_session(account, fields, HAPPY, at_us=now - int(age * US) + index)
    world.tick(account)


# The demo's live sessions: (prompt, scenario, plan approval, auto PR, minutes ago, archived).
DEMO_LIVE: tuple[tuple[str, str, bool, bool, float, bool], ...] = (
    ("Add dark mode to the settings page", "happy", False, True, 0.02, False),
    (
        "Fix the off-by-one error in pagination of the orders endpoint",
        "happy",
        False,
        True,
        0.4,
        False,
    ),
    ("Add retries to the webhook sender", "happy", True, True, 0.9, False),
    ("Migrate the API to the new auth library", "plan_approval", True, True, 3, False),
    ("Remove the legacy export endpoint", "plan_approval timeout", True, False, 4, False),
    ("Handle timeouts in the payments client", "question", False, True, 4, False),
    ("Speed up the CSV export; it is slow on large inputs", "happy", False, True, 2, False),
    (
        "Add verification screenshots for the settings page",
        "happy media=1 bash=1",
        False,
        True,
        3.5,
        False,
    ),
    ("Fix flaky login test", "stall step=1", False, True, 30, False),
    ("Document the deployment process", "pause step=2", False, False, 20, False),
    ("Refactor the search query parser", "failure step=2", False, True, 15, False),
    ("Add unit tests for invoice rounding", "happy", True, True, 40, False),
    (
        "Replace the deprecated API used by currency formatting",
        "auto_pr changeset_only",
        False,
        True,
        50,
        False,
    ),
    ("Clean up unused feature flag lookups", "question complete wait=5m", False, True, 45, False),
    ("Speed up the ledger export", "revive delay=5m", False, True, 12, False),
    ("Update the nightly cleanup job schedule", "happy", False, True, 90, True),
    ("Add logging around the login rate limiter", "failure step=1", False, False, 120, True),
)
DEMO_REPOLESS = (
    "Explain how our retry policy works, with examples",
    "happy",
    False,
    False,
    25,
    False,
)


def seed_demo(world: World, account: Account) -> None:
    """A few dozen sessions across repositories and in every state, some still moving."""
    history_states = ["COMPLETED"] * 17 + [
        "PAUSED",
        "FAILED",
        "COMPLETED",
        "AWAITING_USER_FEEDBACK",
    ]
    seed_history(world, account, 21, 8, days=10, states=history_states, live=0)
    with world.lock:
        now = world.now_us()
        sources = sorted(account.sources)
        rows = [*DEMO_LIVE, DEMO_REPOLESS]
        created: list[tuple[SimSession, bool]] = []
        for index, (prompt, scenario, approval, auto_pr, minutes, archived) in enumerate(rows):
            fields: dict[str, Any] = {
                "prompt": prompt,
                "require_plan_approval": approval,
                "automation_mode": "AUTO_CREATE_PR" if auto_pr else "",
            }
            if sources and (prompt, scenario) != DEMO_REPOLESS[:2]:
                source = sources[index % len(sources)]
                branches = account.sources[source]["githubRepo"]["branches"]
                fields |= {"source": source, "starting_branch": branches[0]["displayName"]}
            session = world.create_session(
                account,
                fields,
                parse_scenario(scenario, origin="default"),
                at_us=now - int(minutes * 60 * US),
            )
            created.append((session, archived))
        account.order.sort()
        world.tick(account)
        for session, archived in created:
            if archived:
                world.set_archived(session, True)
