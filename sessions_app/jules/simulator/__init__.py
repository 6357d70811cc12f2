"""A loopback simulator of the Jules REST API (v1alpha), faithful to jules-api.md.

Start it in-process with `start_simulator(...)` or as
`python manage.py jules_simulator --port 8765`. It serves `/v1alpha` (the 12 operations)
and a test-only admin API under `/_sim/` that production clients never use.

Scenarios, chosen per session by the create header `X-Sim-Scenario: NAME [k=v ...]`, a
prompt tag `[sim:NAME k=v ...]`, or the default (`happy`):

- `happy`: QUEUED → PLANNING → plan → (approval) → IN_PROGRESS → COMPLETED with a change set
  and, under `AUTO_CREATE_PR`, a pull request.
- `plan_approval mode=timeout`: left unapproved, COMPLETED ten virtual minutes after
  creation with only the plan and no outputs (`mode=wait`, the default, waits forever).
- `question [mode=complete]`: asks a question and waits in AWAITING_USER_FEEDBACK until
  sendMessage (or, with `mode=complete`, completes with the question unanswered).
- `failure step=K reason="..."`: FAILED at step K with the reason.
- `pause step=K`: PAUSED at step K; sendMessage resumes it.
- `stall step=K`: IN_PROGRESS forever from step K, with no new activity.
- `revive delay=SECONDS`: completes, resumes after the delay, and completes again.
- `auto_pr pr=pr|changeset_only|none`: which outputs a completion produces.

Toggles, off by default (existing clients reject some of them), on any scenario:
`bash=1` (bashOutput artifacts), `media=1` (an image/png media artifact), `unknown=1` (an
activity of an unknown kind carrying an unknown artifact type), `empty_titles=1`
(progress updates without a title). Example: `[sim:happy bash=1 media=1 unknown=1]`.

Time: `speed` scales the virtual clock (60 = one virtual minute a real second);
`manual_clock=True` moves it only by `advance(seconds)` or `POST /_sim/clock/advance`.
Default pacing is like reality: queued 5 s, planning 60 s, an activity every 26 s.

Faults: see `faults.py` for the rule grammar (`--faults SPEC` or `POST /_sim/faults`).

Admin API: `POST /_sim/clock/advance {"seconds": n}`, `GET /_sim/requests`,
`GET /_sim/sessions/{id}`, `POST /_sim/reset`, `POST|DELETE /_sim/faults`,
`POST /_sim/accounts {"keys": [...], "revoke": bool}`.

Not simulated yet: per-tier quotas and parallel-create failures (§8), snapshots.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from sessions_app.jules.simulator.faults import FaultRule
from sessions_app.jules.simulator.http import Api, SimServer
from sessions_app.jules.simulator.seed import seed_demo, seed_history
from sessions_app.jules.simulator.world import World


@dataclass
class SimulatorConfig:
    activities_404_seconds: float = 3.0
    failed_send_revives: bool = False
    archive_returns_session: bool = False
    default_scenario: str = "happy"


class RunningSimulator:
    def __init__(self, server: SimServer, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread
        host, port = server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        self.port = int(port)
        self.root_url = f"http://{host}:{self.port}"
        self.base_url = f"{self.root_url}/v1alpha"
        self.admin_url = f"{self.root_url}/_sim"

    @property
    def state(self) -> World:
        return self.server.world

    def advance(self, seconds: float) -> None:
        self.state.advance(seconds)

    def add_fault(self, rule: FaultRule | str) -> FaultRule:
        parsed = FaultRule.parse(rule) if isinstance(rule, str) else rule
        self.server.add_fault(parsed)
        return parsed

    def clear_faults(self) -> None:
        self.server.clear_faults()

    def request_counts(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self.state.counts)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

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
) -> RunningSimulator:
    config = config or SimulatorConfig()

    def build() -> tuple[World, Api]:
        world = World(
            api_keys=list(api_keys),
            speed=speed,
            manual_clock=manual_clock,
            seed=seed,
            activities_404_seconds=config.activities_404_seconds,
            failed_send_revives=config.failed_send_revives,
            archive_returns_session=config.archive_returns_session,
        )
        first = world.account(api_keys[0]) if api_keys else None
        if first is not None:
            if seed_sessions:
                seed_history(world, first, seed_sessions, activities_per_session, seed=seed)
            if demo:
                seed_demo(world, first)
        return world, Api(world, config.default_scenario)

    world, api = build()
    server = SimServer((host, port), world, api, build)
    for spec in faults:
        server.add_fault(FaultRule.parse(spec))
    thread = threading.Thread(target=server.serve_forever, name="jules-simulator", daemon=True)
    thread.start()
    return RunningSimulator(server, thread)


__all__ = ["FaultRule", "RunningSimulator", "SimulatorConfig", "World", "start_simulator"]
