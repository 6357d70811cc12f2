"""The simulator under `make run`: a wall clock that speed never outruns, and a world that
survives a restart through its snapshot."""

from __future__ import annotations

import time
from pathlib import Path

from jules_simulator import SimulatorConfig, start_simulator
from jules_simulator.clock import parse_ts_ns

from .helpers import ALL, activities, call, create, q


def _times(payload: object) -> list[str]:
    """Every RFC 3339 timestamp anywhere in a JSON value."""
    if isinstance(payload, dict):
        return [t for v in payload.values() for t in _times(v)]
    if isinstance(payload, list):
        return [t for v in payload for t in _times(v)]
    if isinstance(payload, str) and parse_ts_ns(payload) is not None:
        return [payload]
    return []


def test_it_speeds_up_sessions_without_stamping_times_in_the_future() -> None:
    with start_simulator(api_keys=["k"], speed=120, seed=1, demo=True) as sim:
        sid = create(sim, "Speed up the build")["id"]
        deadline = time.monotonic() + 10
        # At x120 the minute of planning passes in about half a second of real time.
        while time.monotonic() < deadline:
            # activities.list answers 404 for a moment after create (docs/jules-api.md).
            reply = call(sim, "GET", f"/sessions/{sid}/activities?pageSize=100")
            if reply.status == 200 and any("planGenerated" in a for a in reply.json["activities"]):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("no plan within 10 s at speed 120")
        time.sleep(1.0)
        listed = call(sim, "GET", f"/sessions?pageSize=100&filter={q(ALL)}").json
        stamps = _times(listed) + _times(activities(sim, sid))
        wall_ns = time.time_ns()
        assert stamps
        assert max(parse_ts_ns(t) or 0 for t in stamps) <= wall_ns


def test_it_keeps_its_sessions_and_hands_out_new_ids_after_a_restart(tmp_path: Path) -> None:
    config = SimulatorConfig(snapshot_path=str(tmp_path / "sim" / "world.json"))
    with start_simulator(api_keys=["k"], seed=1, demo=True, config=config) as sim:
        first = [create(sim, f"Task {n}")["id"] for n in range(5)]
        before = {s["id"]: s["createTime"] for s in _list(sim)}
    with start_simulator(api_keys=["k"], seed=1, demo=True, config=config) as again:
        kept = {s["id"]: s["createTime"] for s in _list(again)}
        assert kept == before
        second = [create(again, f"Task {n}")["id"] for n in range(5)]
    assert set(first) <= set(kept)
    assert not set(second) & set(kept)


def test_it_saves_its_snapshot_periodically_while_running(tmp_path: Path) -> None:
    path = tmp_path / "world.json"
    config = SimulatorConfig(snapshot_path=str(path))
    with start_simulator(api_keys=["k"], seed=1, config=config, snapshot_seconds=0.2) as sim:
        sid = create(sim, "Saved without a stop")["id"]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (not path.exists() or sid not in path.read_text()):
            time.sleep(0.05)
        assert sid in path.read_text()


def _list(sim: object) -> list[dict[str, str]]:
    sessions: list[dict[str, str]] = call(
        sim, "GET", f"/sessions?pageSize=100&filter={q(ALL)}"
    ).json["sessions"]
    return sessions


def test_it_never_hands_out_again_the_ids_of_a_run_that_died_before_saving(
    tmp_path: Path,
) -> None:
    path = tmp_path / "world.json"
    config = SimulatorConfig(snapshot_path=str(path))
    with start_simulator(api_keys=["k"], seed=1, config=config):
        pass
    saved = path.read_bytes()
    with start_simulator(api_keys=["k"], seed=1, config=config) as lost:
        lost_ids = {create(lost, f"Task {n}")["id"] for n in range(5)}
    path.write_bytes(saved)  # As if killed before its last save.
    with start_simulator(api_keys=["k"], seed=1, config=config) as again:
        new_ids = {create(again, f"Task {n}")["id"] for n in range(5)}
    assert not new_ids & lost_ids
