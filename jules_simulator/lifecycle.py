"""The session state machine (docs/jules-api.md#lifecycle), run by scheduled events and actions.

A session's `phase` names what its next scheduled event does:

    queued → planning → (awaiting_approval | auto_approve) → working → done
    awaiting_approval → replanning (after sendMessage) → awaiting_approval
    working → awaiting_feedback | paused | stalled (scenario interjections) → working
    done → working (the revive scenario, or sendMessage on COMPLETED)

Each event draws from its own RNG, seeded by the world seed, the session id and the event's
number, so a session's words and timings never depend on what other sessions did.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from jules_simulator import content
from jules_simulator.clock import US, format_ts
from jules_simulator.errors import failed_precondition
from jules_simulator.model import Account, SimSession

if TYPE_CHECKING:
    from jules_simulator.world import World

INTERJECTIONS = {"failure", "pause", "stall", "question"}


class Lifecycle:
    def __init__(self, world: World) -> None:
        self.world = world

    # --- helpers ------------------------------------------------------------------------

    def rng(self, session: SimSession) -> random.Random:
        session.events += 1
        return random.Random(f"{self.world.seed}/{session.id}/{session.events}")

    def span(self, seconds: float) -> int:
        """A scenario's duration in microseconds of the clock, shortened by the pace.

        `speed` makes sessions progress faster, not the clock run ahead: timestamps stay on
        the wall clock, so a demo at speed 10 never shows a time in the future."""
        return max(1, int(seconds * US / self.world.pace))

    def seconds(self, mean: float, rng: random.Random, low: float, high: float) -> int:
        """A jittered delay in microseconds; never zero, so events strictly follow."""
        return self.span(mean * rng.uniform(low, high))

    def gap(self, session: SimSession, rng: random.Random, scale: float = 1.0) -> int:
        # Around 26 s, the live median. The band is narrow enough that two gaps stay under a
        # minute, which tests that wait for a question rely on.
        mean = session.scenario.pace or self.world.config.activity_interval
        return self.seconds(mean * scale, rng, 0.7, 1.15)

    def schedule(self, account: Account, session: SimSession, at: int) -> None:
        self.world.schedule(account, session, at)

    def activity(
        self,
        session: SimSession,
        kind: str,
        payload: Any,
        at: int,
        rng: random.Random,
        **kwargs: Any,
    ) -> None:
        self.world.add_activity(session, kind, payload, at=at, rng=rng, **kwargs)

    def state(self, account: Account, session: SimSession, state: str) -> None:
        self.world.set_state(account, session, state)

    # --- start and dispatch -------------------------------------------------------------

    def start(self, account: Account, session: SimSession) -> None:
        rng = self.rng(session)
        delay = self.seconds(self.world.config.queued_seconds, rng, 0.6, 1.2)
        session.phase = "queued"
        self.schedule(account, session, session.create_us + delay)

    def run(self, account: Account, session: SimSession, due: int) -> None:
        handler = getattr(self, f"_on_{session.phase}", None)
        if handler is not None:
            handler(account, session, due, self.rng(session))

    def _on_queued(self, account: Account, s: SimSession, due: int, rng: random.Random) -> None:
        self.state(account, s, "PLANNING")
        self.world.touch(s, due)
        s.phase = "planning"
        planning = self.seconds(self.world.config.planning_seconds, rng, 0.85, 1.03)
        self.schedule(account, s, due + planning)

    def _on_planning(self, account: Account, s: SimSession, due: int, rng: random.Random) -> None:
        self.plan(s, due, rng)
        if s.require_plan_approval:
            self.state(account, s, "AWAITING_PLAN_APPROVAL")
            s.phase = "awaiting_approval"
            if s.scenario.name == "plan_approval" and s.scenario.mode == "timeout":
                # Left unapproved, live sessions became COMPLETED ~10 minutes after creation.
                s.timeout_us = s.create_us + self.span(self.world.config.plan_timeout_seconds)
                self.schedule(account, s, max(s.timeout_us, due + 1))
        else:
            s.phase = "auto_approve"
            approve = self.seconds(self.world.config.auto_approve_seconds, rng, 0.8, 1.2)
            self.schedule(account, s, due + approve)
        self.world.touch(s, due)

    def _on_auto_approve(
        self, account: Account, s: SimSession, due: int, rng: random.Random
    ) -> None:
        # The official example shows the automatic approval with originator "user".
        self.activity(s, "planApproved", {"planId": s.plan_id}, due, rng, originator="user")
        self.begin_work(account, s, due, rng)

    def _on_awaiting_approval(
        self, account: Account, s: SimSession, due: int, rng: random.Random
    ) -> None:
        # COMPLETED with only the plan and no outputs: docs/jules-api.md#plan-approval-timeout
        s.plan_timed_out = True
        s.timeout_us = None
        self.state(account, s, "COMPLETED")
        s.phase = "done"
        self.world.touch(s, due)

    def _on_replanning(self, account: Account, s: SimSession, due: int, rng: random.Random) -> None:
        self.plan(s, due, rng, revised=True)
        s.phase = "awaiting_approval"
        if s.timeout_us is not None:
            self.schedule(account, s, max(s.timeout_us, due + 1))
        self.world.touch(s, due)

    def _on_awaiting_feedback(
        self, account: Account, s: SimSession, due: int, rng: random.Random
    ) -> None:
        # question mode=complete: nobody answered, and the agent finished anyway.
        self.complete(account, s, due, rng)

    def _on_paused(self, account: Account, s: SimSession, due: int, rng: random.Random) -> None:
        self.state(account, s, "IN_PROGRESS")
        s.phase = "working"
        self.world.touch(s, due)
        self.schedule(account, s, due + self.gap(s, rng))

    def _on_stalled(self, account: Account, s: SimSession, due: int, rng: random.Random) -> None:
        s.phase = "working"
        self._on_working(account, s, due, rng)

    def _on_done(self, account: Account, s: SimSession, due: int, rng: random.Random) -> None:
        # The revive scenario: new progress hours after completion, then another completion.
        self.revive(account, s, due, rng, by_message=False)

    # --- planning and work --------------------------------------------------------------

    def plan(self, s: SimSession, at: int, rng: random.Random, revised: bool = False) -> None:
        count = s.scenario.steps
        if revised and count is None:
            count = max(2, len(s.plan_titles) + rng.choice((-1, 0, 1)))
        titles = content.plan_titles(rng, s.prompt, count)
        s.plan_titles = titles
        s.plan_id = f"{rng.getrandbits(128):032x}"
        s.plans += 1
        steps: list[dict[str, Any]] = []
        for index, title in enumerate(titles):
            step: dict[str, Any] = {"id": f"{rng.getrandbits(128):032x}", "title": title}
            if index:
                step["index"] = index  # proto3 omits the first step's index (0).
            steps.append(step)
        plan = {
            "id": s.plan_id,
            "steps": steps,
            "createTime": format_ts(at - rng.randint(800, 4000)),
        }
        description = "Plan revised" if revised else "Plan generated"
        self.activity(s, "planGenerated", {"plan": plan}, at, rng, description=description)
        if s.phase in ("planning", "replanning", "awaiting_approval", "auto_approve"):
            s.total = 2 * len(titles)

    def begin_work(self, account: Account, s: SimSession, at: int, rng: random.Random) -> None:
        self.state(account, s, "IN_PROGRESS")
        s.timeout_us = None
        if s.source and not s.working_branch:
            s.working_branch = content.working_branch(s.title, rng)
        if s.total == 0:
            s.total = 2 * max(1, len(s.plan_titles))
        s.phase = "working"
        self.world.touch(s, at)
        # The first step follows the approval quickly: the agent starts by reading code.
        self.schedule(account, s, at + self.gap(s, rng, scale=0.45))

    def _on_working(self, account: Account, s: SimSession, due: int, rng: random.Random) -> None:
        sc = s.scenario
        if s.pending_ack:
            s.pending_ack = False
            ack = content.acknowledgement(rng)
            self.activity(s, "agentMessaged", {"agentMessage": ack}, due, rng)
            self.world.touch(s, due)
            self.schedule(account, s, due + self.gap(s, rng))
            return
        if sc.name in INTERJECTIONS and not s.interjected and s.step >= min(sc.step, s.total):
            s.interjected = True
            self.interject(account, s, due, rng)
            return
        if s.step < s.total:
            self.work_item(s, due, rng)
            s.step += 1
            self.world.touch(s, due)
            self.schedule(account, s, due + self.gap(s, rng))
            return
        self.complete(account, s, due, rng)

    def interject(self, account: Account, s: SimSession, due: int, rng: random.Random) -> None:
        sc = s.scenario
        if sc.name == "failure":
            reason = sc.reason or content.failure_reason(rng)
            self.activity(s, "sessionFailed", {"reason": reason}, due, rng)
            self.state(account, s, "FAILED")
            s.phase = "done"
            self.world.touch(s, due)
        elif sc.name == "pause":
            # No activity; the last event stays a progressUpdated: docs/jules-api.md#paused-sessions
            self.state(account, s, "PAUSED")
            s.phase = "paused"
            self.world.touch(s, due)
            if sc.duration is not None:
                self.schedule(account, s, due + self.span(sc.duration))
        elif sc.name == "stall":
            # IN_PROGRESS with nothing new and no change at all: docs/jules-api.md#stalls
            s.phase = "stalled"
            if sc.duration is not None:
                self.schedule(account, s, due + self.span(sc.duration))
        elif sc.name == "question":
            text = content.question(rng, s.prompt)
            self.activity(s, "agentMessaged", {"agentMessage": text}, due, rng)
            self.state(account, s, "AWAITING_USER_FEEDBACK")
            s.phase = "awaiting_feedback"
            self.world.touch(s, due)
            if sc.mode == "complete":
                self.schedule(account, s, due + self.span(sc.wait))

    def work_item(self, s: SimSession, at: int, rng: random.Random) -> None:
        """The k-th activity of steady work, plus whatever the scenario toggles add."""
        sc, k = s.scenario, s.step
        if sc.unknown and "unknown" not in s.extras:
            s.extras.add("unknown")
            # A kind and an artifact type no client knows yet: docs/jules-api.md#activity-kinds
            self.activity(
                s,
                "toolCalled",
                {"tool": "code_search", "query": content.module_for(s.prompt)},
                at,
                rng,
                description="Searched the code",
                artifacts=[{"hologram": {"frames": 3}}],
            )
        if sc.unknown and k == 2 and "kindless" not in s.extras:
            s.extras.add("kindless")
            self.activity(
                s, "", None, at, rng, originator="system", description="Environment ready"
            )
        if sc.revisions and k == s.total // 2 and "revision" not in s.extras:
            s.extras.add("revision")
            self.plan(s, at, rng, revised=True)
            s.total += 2
            return
        step_index = k // 2
        if sc.media and k == s.total - 1 and "media" not in s.extras:
            s.extras.add("media")
            media = {"media": {"data": content.PNG_1PX, "mimeType": "image/png"}}
            self.progress(
                s, content.MEDIA_TITLE, "Checked the page in a browser.", at, rng, [media]
            )
            return
        if k % 2 == 0:
            title, description = content.progress(rng, s.prompt, s.lang, step_index)
            self.progress(s, title, description, at, rng)
        elif step_index % 2 == 0 or sc.bash:
            command, output, exit_code = content.bash_run(rng, s.lang, step_index)
            summary = output.splitlines()[-1] if output else ""
            artifacts = None
            if sc.bash:
                bash: dict[str, Any] = {"command": command, "output": output}
                if exit_code:
                    bash["exitCode"] = exit_code  # proto3 omits an exit code of 0.
                artifacts = [{"bashOutput": bash}]
            description = f"Command: {command}\nOutput: {summary}"
            self.progress(s, "Ran bash command", description, at, rng, artifacts)
        elif step_index == 1:
            note = content.agent_note(rng, s.prompt)
            self.activity(s, "agentMessaged", {"agentMessage": note}, at, rng)
        else:
            title, description = content.progress(rng, s.prompt, s.lang, step_index + 2)
            self.progress(s, title, description, at, rng)

    def progress(
        self,
        s: SimSession,
        title: str,
        description: str,
        at: int,
        rng: random.Random,
        artifacts: list[dict[str, Any]] | None = None,
    ) -> None:
        payload: dict[str, str] = {}
        if not s.scenario.empty_titles:
            payload["title"] = title  # Absent under empty_titles, as seen live.
        if description:
            payload["description"] = description
        self.activity(s, "progressUpdated", payload, at, rng, artifacts=artifacts)

    # --- completion and revival ---------------------------------------------------------

    def complete(self, account: Account, s: SimSession, at: int, rng: random.Random) -> None:
        mode = s.scenario.pr
        artifacts = None
        outputs: list[dict[str, Any]] = []
        if mode != "none":
            if not s.base_commit:
                s.base_commit = f"{rng.getrandbits(160):040x}"
            patch: dict[str, Any] = {
                "unidiffPatch": content.unified_diff(rng, s.prompt, s.lang),
                "baseCommitId": s.base_commit,
                "suggestedCommitMessage": content.commit_message(s.title),
            }
            change_set: dict[str, Any] = {"source": s.source, "gitPatch": patch}
            if not s.source:
                del change_set["source"]
            artifacts = [{"changeSet": change_set}]
            outputs.append({"changeSet": change_set})
            if mode == "pr" and s.automation_mode == "AUTO_CREATE_PR" and s.source:
                if s.pull_request is None:
                    s.pull_request = self.pull_request(account, s)
                # Separate entries, in any order: docs/jules-api.md#session-outputs
                pr = {"pullRequest": s.pull_request}
                outputs.insert(0 if rng.random() < 0.3 else 1, pr)
        self.activity(s, "sessionCompleted", {}, at, rng, artifacts=artifacts)
        if outputs:
            s.outputs = outputs
        s.completions += 1
        self.state(account, s, "COMPLETED")
        s.phase = "done"
        self.world.touch(s, at)
        if s.scenario.name == "revive" and s.revivals == 0:
            self.schedule(account, s, at + self.span(s.scenario.delay))

    def pull_request(self, account: Account, s: SimSession) -> dict[str, Any]:
        repo = s.source.removeprefix("sources/github/")
        # PR numbers grow per repository, as on GitHub.
        number = account.pr_numbers.get(repo, 100 + sum(map(ord, repo)) % 300) + 1
        account.pr_numbers[repo] = number
        if not s.working_branch:
            s.working_branch = content.working_branch(s.title, random.Random(s.id))
        return {
            "url": f"https://github.com/{repo}/pull/{number}",
            "title": s.title,
            "description": content.pr_description(s.title, s.prompt, s.lang),
            "baseRef": s.starting_branch or "main",
            "headRef": s.working_branch,
        }

    def revive(
        self, account: Account, s: SimSession, at: int, rng: random.Random, *, by_message: bool
    ) -> None:
        s.revivals += 1
        s.plan_timed_out = False
        if s.step == 0:
            # Never worked (a plan that timed out): the whole plan is still to do.
            s.total = 2 * max(1, len(s.plan_titles))
        else:
            s.total = s.step + rng.randint(2, 3)
        if by_message:
            s.pending_ack = True
        else:
            payload = {"title": "Resumed work", "description": "Picking up follow-up changes."}
            self.activity(s, "progressUpdated", payload, at, rng)
        self.state(account, s, "IN_PROGRESS")
        s.phase = "working"
        self.world.touch(s, at)
        self.schedule(account, s, at + self.gap(s, rng, scale=0.5))

    # --- actions ------------------------------------------------------------------------

    def approve(self, account: Account, s: SimSession) -> None:
        """approvePlan: docs/jules-api.md#approve-a-plan"""
        rng = self.rng(s)
        now = self.world.stamp(rng)
        if s.state == "AWAITING_PLAN_APPROVAL":
            self.activity(s, "planApproved", {"planId": s.plan_id}, now, rng, originator="user")
            self.begin_work(account, s, now, rng)
            return
        if s.state == "COMPLETED" and s.plan_timed_out:
            # The live service answered {} here; work resumed in one report and not in
            # another, so the scenario decides.
            if s.scenario.resume:
                s.plan_timed_out = False
                self.activity(s, "planApproved", {"planId": s.plan_id}, now, rng, originator="user")
                self.begin_work(account, s, now, rng)
            return
        raise failed_precondition("Session is not awaiting plan approval.")

    def message(self, account: Account, s: SimSession, prompt: str) -> None:
        """sendMessage: docs/jules-api.md#send-a-message"""
        config = self.world.config
        if s.state == "FAILED" and not config.failed_send_revives:
            raise failed_precondition("Session is not active.")
        rng = self.rng(s)
        now = self.world.stamp(rng)
        self.activity(s, "userMessaged", {"userMessage": prompt}, now, rng, originator="user")
        state = s.state
        if state == "AWAITING_PLAN_APPROVAL":
            # Feedback on the plan: a revised plan follows, still awaiting approval.
            s.phase = "replanning"
            self.schedule(account, s, now + self.seconds(20, rng, 0.7, 1.3))
        elif state in ("AWAITING_USER_FEEDBACK", "PAUSED"):
            s.pending_ack = True
            self.state(account, s, "IN_PROGRESS")
            s.phase = "working"
            self.schedule(account, s, now + self.gap(s, rng, scale=0.5))
        elif state in ("COMPLETED", "FAILED"):
            self.revive(account, s, now, rng, by_message=True)
        elif state == "IN_PROGRESS" and s.phase == "working":
            s.pending_ack = True  # Steering: the agent answers at its next step.
        # QUEUED and PLANNING: the plan takes the message into account; a stall holds.
        self.world.touch(s, now)
