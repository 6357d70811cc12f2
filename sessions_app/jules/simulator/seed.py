"""Seeded histories: many finished sessions made fast and deterministically, and the demo."""

from __future__ import annotations

import random
from typing import Any

from sessions_app.jules.simulator import content
from sessions_app.jules.simulator.world import REPOS, Account, Scenario, SimSession, World, fmt

# The live census of spec §7: COMPLETED 93.6%, PAUSED 4.3%, FAILED 2.0%, feedback 0.2%.
CENSUS = [
    ("COMPLETED", 0.936),
    ("PAUSED", 0.043),
    ("FAILED", 0.020),
    ("AWAITING_USER_FEEDBACK", 0.001),
]


def _state(rng: random.Random) -> str:
    roll = rng.random()
    for state, share in CENSUS:
        if roll < share:
            return state
        roll -= share
    return "COMPLETED"


def seed_history(
    world: World,
    account: Account,
    count: int,
    activities: int,
    *,
    days: float = 30.0,
    seed: int = 0,
) -> None:
    """Add `count` settled sessions with about `activities` activities each."""
    rng = random.Random(seed * 7919 + len(account.sessions))
    now = world.now()
    start = now - days * 86400
    step = (now - 3600 - start) / max(count, 1)
    with world.lock:
        for index in range(count):
            owner, repo, branches = REPOS[index % len(REPOS)]
            create_ts = start + index * step + rng.random() * step * 0.5
            prompt = f"Fix issue #{1000 + index} in {repo}: handle empty input in the parser"
            session = SimSession(
                id=str(rng.randrange(10**18, 18 * 10**18)),
                prompt=prompt,
                title=content.title_for(prompt),
                create_ts=create_ts,
                update_ts=create_ts,
                source=f"sources/github/{owner}/{repo}",
                starting_branch=branches[0],
                require_plan_approval=rng.random() < 0.5,
                automation_mode="AUTO_CREATE_PR" if rng.random() < 0.6 else "",
                archived=rng.random() < 0.1,
                phase="done",
            )
            state = _state(rng)
            _fill(session, state, activities, rng)
            session.state = state
            account.sessions[session.id] = session
            account.order.append((-session.create_ts, session.id))
        account.order.sort()


def _fill(session: SimSession, state: str, count: int, rng: random.Random) -> None:
    ts = session.create_ts + 60

    def add(
        kind: str, payload: dict[str, Any], originator: str = "agent", artifacts: Any = None
    ) -> None:
        nonlocal ts
        ts += 20 + rng.random() * 10
        activity_id = f"{rng.getrandbits(128):032x}"
        data: dict[str, Any] = {
            "name": f"sessions/{session.id}/activities/{activity_id}",
            "id": activity_id,
            "createTime": fmt(ts),
            "originator": originator,
            kind: payload,
        }
        if artifacts:
            data["artifacts"] = artifacts
        session.activities.append(data)
        session.activity_keys.append((ts, activity_id))

    plan_id = f"{rng.getrandbits(128):032x}"
    steps: list[dict[str, Any]] = [
        {"id": f"{rng.getrandbits(128):032x}", "title": t} for t in content.PLAN_STEPS[:4]
    ]
    for i, step in enumerate(steps[1:], start=1):
        step["index"] = i
    add("planGenerated", {"plan": {"id": plan_id, "steps": steps, "createTime": fmt(ts)}})
    add("planApproved", {"planId": plan_id}, originator="user")
    body = max(0, count - 3)
    for i in range(body):
        title, desc = content.PROGRESS[i % len(content.PROGRESS)]
        add("progressUpdated", {"title": title, "description": desc})
    if state == "COMPLETED":
        patch = content.unified_diff(session.prompt, rng)
        change_set = {
            "source": session.source,
            "gitPatch": {
                "unidiffPatch": patch,
                "baseCommitId": f"{rng.getrandbits(160):040x}",
                "suggestedCommitMessage": f"fix: {session.title[:50].lower()}",
            },
        }
        add("sessionCompleted", {}, artifacts=[{"changeSet": change_set}])
        session.outputs = [{"changeSet": change_set}]
        if session.automation_mode == "AUTO_CREATE_PR":
            repo_path = session.source.removeprefix("sources/github/")
            session.outputs.append(
                {
                    "pullRequest": {
                        "url": f"https://github.com/{repo_path}/pull/{rng.randint(10, 5000)}",
                        "title": session.title,
                        "description": "Automated change by Jules.",
                        "baseRef": session.starting_branch,
                        "headRef": f"jules/{content.slug(session.title, 30)}",
                    }
                }
            )
    elif state == "FAILED":
        add("sessionFailed", {"reason": rng.choice(content.FAILURES)})
    elif state == "AWAITING_USER_FEEDBACK":
        add("agentMessaged", {"agentMessage": rng.choice(content.QUESTIONS)})
    session.update_ts = ts


DEMO_PROMPTS = [
    ("Add unit tests for invoice rounding", "happy", True, 30 * 60),
    ("Upgrade the web app to the new router", "happy", False, 40 * 60),
    ("Handle timeouts in the payments client", "question", False, 25 * 60),
    ("Refactor the search indexer", "failure", False, 50 * 60),
    ("Document the deployment process", "pause", False, 35 * 60),
    ("Fix flaky login test", "stall", False, 45 * 60),
    ("Speed up the ledger export", "revive", False, 120 * 60),
    ("Add dark mode to settings", "plan_approval", True, 3 * 60),
    ("Migrate the API to the new auth library", "happy", True, 90),
    ("Clean up unused feature flags", "happy", False, 20),
    ("Add retries to the webhook sender", "happy", False, 70),
    ("Ask about the rounding rules", "question", False, 3 * 60),
]


def seed_demo(world: World, account: Account) -> None:
    """A few dozen sessions across repositories and in every state, some still live."""
    seed_history(world, account, 24, 8, days=10, seed=world.seed)
    now = world.now()
    for index, (prompt, scenario, approval, age) in enumerate(DEMO_PROMPTS):
        owner, repo, branches = REPOS[index % len(REPOS)]
        body = {
            "prompt": prompt,
            "sourceContext": {
                "source": f"sources/github/{owner}/{repo}",
                "githubRepoContext": {"startingBranch": branches[0]},
            },
            "requirePlanApproval": approval,
            "automationMode": "AUTO_CREATE_PR",
        }
        sc = Scenario(name=scenario, step=2)
        world.create(account, body, sc, at=now - age)
    with world.lock:
        world.tick(account)
