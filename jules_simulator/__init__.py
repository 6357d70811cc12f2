"""A loopback simulator of the Jules REST API (v1alpha), as docs/jules-api.md describes it.

Start it in-process with `start_simulator(...)` (a context manager) or as
`python -m jules_simulator --port 8765`. README.md beside this file documents its options,
scenarios, the fault grammar (`faults.py`) and the `/_sim/` admin API (`admin.py`).
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

    def quotas(self) -> dict[str, dict[str, Any]]:
        return self.state.quotas()

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
