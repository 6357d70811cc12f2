"""A loopback simulator of the Jules REST API (v1alpha), faithful to jules-api.md.

Start it in-process with `start_simulator(...)` (a context manager) or as
`python manage.py jules_simulator --port 8765`. It serves the twelve operations under
`/v1alpha` and a test-only admin API under `/_sim/` (see `admin.py`) that production
clients never use. Where the spec is unsure, `SimulatorConfig` picks the likeliest
behaviour and offers the alternatives.

Scenarios
---------

Each session follows a scenario, chosen at create by, in order: the header
`X-Sim-Scenario: NAME [options]`, a prompt tag `[sim:NAME options]` anywhere in the prompt
(kept verbatim in the prompt, left out of the generated title), the queue filled by
`POST /_sim/scenarios`, or `SimulatorConfig.default_scenario` (`happy`). An unknown name
or option is a 400 INVALID_ARGUMENT, so a typo never passes silently.

Grammar: `NAME` then options, each `key=value`, `key="quoted value"` or a bare word; a bare
word is a toggle (`bash`) or the scenario's mode (`timeout`). Durations are seconds, or
take a unit: `90`, `90s`, `5m`, `2h`, `1d`. A step K counts the activities of the work
phase: `step=0` is right after the plan's approval, each step about 26 s later. Example: `[sim:failure step=2 reason="No space
left on device"]`, `[sim:plan_approval timeout resume=1]`, `[sim:happy bash media]`.

- `happy`: QUEUED (~5 s) → PLANNING (~1 min) → `planGenerated` → AWAITING_PLAN_APPROVAL if
  `requirePlanApproval`, else `planApproved` (originator "user") ~2 s later → IN_PROGRESS,
  an activity every ~26 s (`progressUpdated`, "Ran bash command", `agentMessaged`) →
  COMPLETED with `sessionCompleted` + a `changeSet` artifact; outputs gain the changeSet
  and, under `AUTO_CREATE_PR` with a source, a `pullRequest`.
- `plan_approval [mode=wait|timeout] [resume=1]`: with `requirePlanApproval`, `wait` (the
  default) waits for approvePlan forever; `timeout` turns COMPLETED ten virtual minutes
  after creation with only `planGenerated` and no outputs. approvePlan then answers `{}`;
  with `resume=1` it also resumes the work.
- `question [mode=wait|complete] [step=K] [wait=DURATION]`: at work step K (default 1)
  the agent asks (`agentMessaged`) and waits in AWAITING_USER_FEEDBACK for sendMessage;
  with `complete` it completes unanswered after `wait` (default 5m).
- `failure [step=K] [reason="..."]`: `sessionFailed {reason}` → FAILED at step K (default 2).
- `pause [step=K] [duration=D]`: PAUSED at step K (no activity, as live); sendMessage
  resumes it, or it resumes by itself after `duration`.
- `stall [step=K] [duration=D]`: IN_PROGRESS from step K with no new activity and no
  change, forever or for `duration`.
- `revive [delay=D]`: completes, resumes after `delay` (default 225m, like the live gaps)
  with new progress, and completes again: two `sessionCompleted`.
- `auto_pr [pr|changeset_only|none]`: what a completion produces: a PR (under
  `AUTO_CREATE_PR`), only a changeSet, or no outputs at all. `pr=...` works on any scenario.

Options on any scenario: `steps=N` (plan size; 3-6 by default), `pace=D` (mean gap
between activities), and the toggles, all off by default because existing clients reject
some of them: `bash` (bashOutput artifacts on "Ran bash command" updates; exit code 0
omitted), `media` (an image/png media artifact on a "Frontend verification" update),
`unknown` (an activity of the unknown kind `toolCalled` carrying the unknown artifact type
`webPreview`, and a system activity with no kind, only a description), `empty_titles`
(progress updates without a title; the first has neither title nor description),
`revisions` (a revised `planGenerated` halfway through the work).

Actions: approvePlan approves the latest plan (`planApproved`, user) → IN_PROGRESS, `{}`;
elsewhere 400 FAILED_PRECONDITION, except on a plan-timeout COMPLETED session (`{}`).
sendMessage always records `userMessaged`: in AWAITING_USER_FEEDBACK or PAUSED the work
resumes (the agent acknowledges), in AWAITING_PLAN_APPROVAL a revised plan follows ~20 s
later, in COMPLETED the session revives (more progress, another completion), in
IN_PROGRESS the agent acknowledges at its next step; on FAILED it is a 400
FAILED_PRECONDITION "Session is not active." unless `failed_send_revives`.

Time and determinism: `speed` scales the virtual clock (60 = one virtual minute per real
second); `manual_clock=True` moves it only through `advance(seconds)` or
`POST /_sim/clock/advance`. Events run lazily when a request arrives, stamped with their due
time, so the same seed and the same requests give the same JSON.

Faults: `faults.py` documents the SPEC grammar (`--faults SPEC`, `POST /_sim/faults`).
Quotas (§8) and parallel-create failures are off unless `SimulatorConfig` (or
`POST /_sim/accounts`) sets a tier, caps or a parallel limit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from jules_simulator.config import AccountSpec, SimulatorConfig
from jules_simulator.content import REPOS, Repo
from jules_simulator.faults import FaultRule
from jules_simulator.http import SimServer
from jules_simulator.model import Account, SimActivity, SimSession
from jules_simulator.scenarios import Scenario, parse_scenario
from jules_simulator.world import World


class RunningSimulator:
    """A simulator serving on loopback; stop it with `stop()` or a `with` block."""

    def __init__(
        self, server: SimServer, thread: threading.Thread, snapshot_seconds: float | None = None
    ) -> None:
        self.server = server
        self.thread = thread
        host, port = server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        self.host = host
        self.port = int(port)
        self.root_url = f"http://{host}:{self.port}"
        self.base_url = f"{self.root_url}/v1alpha"
        self.admin_url = f"{self.root_url}/_sim"
        self._stopped = False
        self._saver: threading.Thread | None = None
        if snapshot_seconds and server.world.config.snapshot_path:
            self._saver = threading.Thread(
                target=self._save_every,
                args=(snapshot_seconds,),
                name="jules-simulator-snapshot",
                daemon=True,
            )
            self._saver.start()

    def _save_every(self, seconds: float) -> None:
        # A run killed without a stop loses at most this much of its world.
        world = self.state
        while not world.stopping.wait(seconds):
            self.save_snapshot()

    def save_snapshot(self) -> None:
        path = self.state.config.snapshot_path
        if path:
            from jules_simulator.snapshot import save

            save(self.state, path)

    @property
    def state(self) -> World:
        return self.server.world

    def advance(self, seconds: float) -> None:
        self.state.advance(seconds)

    def add_fault(self, rule: FaultRule | str | dict[str, Any]) -> FaultRule:
        return self.state.add_fault(rule)

    def clear_faults(self) -> None:
        self.state.clear_faults()

    def request_counts(self) -> dict[str, int]:
        return self.state.request_counts()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        world = self.state
        world.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        if self._saver is not None:
            self._saver.join(timeout=5)
        self.save_snapshot()

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_simulator(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api_keys: Sequence[str] = ("sim-demo-key",),
    speed: float = 1.0,
    manual_clock: bool = False,
    seed: int = 0,
    seed_sessions: int = 0,
    activities_per_session: int = 10,
    demo: bool = False,
    faults: Sequence[str] = (),
    config: SimulatorConfig | None = None,
    snapshot_seconds: float | None = None,
) -> RunningSimulator:
    """Serve the simulator on `host:port` (an ephemeral port for 0) in a daemon thread.

    Each of `api_keys` gets its own account with the default repositories; the first
    account also gets `seed_sessions` seeded sessions of `activities_per_session`
    activities, and the demo sessions when `demo` is set. With a snapshot path in `config`,
    the world is loaded from it at start, saved at stop and every `snapshot_seconds`."""
    world = World(
        config,
        api_keys=api_keys,
        speed=speed,
        manual_clock=manual_clock,
        seed=seed,
        seed_sessions=seed_sessions,
        activities_per_session=activities_per_session,
        demo=demo,
    )
    if world.config.snapshot_path:
        from jules_simulator.snapshot import load

        load(world, world.config.snapshot_path)
    for spec in faults:
        world.add_fault(spec)
    server = SimServer((host, port), world)
    # A short poll interval makes stop() quick; the loop is idle between polls anyway.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="jules-simulator", daemon=True
    )
    thread.start()
    return RunningSimulator(server, thread, snapshot_seconds)


__all__ = [
    "REPOS",
    "Account",
    "AccountSpec",
    "FaultRule",
    "Repo",
    "RunningSimulator",
    "Scenario",
    "SimActivity",
    "SimSession",
    "SimulatorConfig",
    "World",
    "parse_scenario",
    "start_simulator",
]
