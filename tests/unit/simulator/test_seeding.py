"""Seeded histories, the demo and snapshots: fast, census-like, deterministic."""

from __future__ import annotations

import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from jules_simulator import SimulatorConfig, World, start_simulator
from tests.unit.simulator.helpers import ALL, activities, call, create, get, kinds, list_all, q

DAY = 86_400


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[Any, float]]:
    """10,000 sessions of 10 activities, and how long seeding them took."""
    started = time.perf_counter()
    simulator = start_simulator(
        api_keys=["k"], manual_clock=True, seed=1, seed_sessions=10_000, activities_per_session=10
    )
    seconds = time.perf_counter() - started
    try:
        yield simulator, seconds
    finally:
        simulator.stop()


def test_it_seeds_ten_thousand_sessions(big):
    # How fast: bench/simulator_seed.py (timings belong in benchmarks, not tests).
    sim, _ = big
    account = sim.state.account("k")
    assert len(account.sessions) == 10_000
    settled = [s for s in account.sessions.values() if s.state in {"COMPLETED", "FAILED", "PAUSED"}]
    assert all(len(s.activities) == 10 for s in settled)
    assert sum(len(s.activities) for s in account.sessions.values()) >= 99_900


def test_it_serves_every_seeded_page(big):
    sim, _ = big
    pages = list_all(sim, f"/sessions?filter={q(ALL)}", "sessions", 100)
    ids = [s["id"] for page in pages for s in page]
    for sid in ids[:300]:
        assert len(call(sim, "GET", f"/sessions/{sid}/activities").json["activities"]) >= 1
    assert len(ids) == len(set(ids)) == 10_000


def test_it_distributes_states_like_the_live_census(big):
    sim, _ = big
    sessions = list(sim.state.account("k").sessions.values())
    states = Counter(s.state for s in sessions)
    share = {state: count / len(sessions) for state, count in states.items()}
    assert abs(share["COMPLETED"] - 0.936) < 0.015
    assert abs(share["PAUSED"] - 0.043) < 0.01 and abs(share["FAILED"] - 0.020) < 0.007
    assert 0 < states["AWAITING_USER_FEEDBACK"] < 60
    assert (
        1
        <= sum(states[s] for s in ("QUEUED", "PLANNING", "IN_PROGRESS", "AWAITING_PLAN_APPROVAL"))
        <= 5
    )
    assert abs(sum(s.archived for s in sessions) / len(sessions) - 0.10) < 0.015
    assert len({s.source for s in sessions if s.source}) >= 8
    span = (max(s.create_us for s in sessions) - min(s.create_us for s in sessions)) / 1e6
    assert 29 * DAY <= span <= 31 * DAY


def test_it_ends_seeded_sessions_the_way_their_state_ends(big):
    sim, _ = big
    last = {"COMPLETED": "sessionCompleted", "FAILED": "sessionFailed"}
    last |= {"AWAITING_USER_FEEDBACK": "agentMessaged", "PAUSED": "progressUpdated"}
    now = sim.state.now_us()
    for session in list(sim.state.account("k").sessions.values())[:3000]:
        if session.state in last:
            assert session.activities[-1].kind == last[session.state]
            assert session.activities[0].kind == "planGenerated"
            assert session.activities[-1].ts < now
            assert session.update_us == session.activities[-1].ts


def test_it_keeps_memory_per_seeded_activity_small():
    tracemalloc.start()
    try:
        world = World(
            api_keys=["k"], manual_clock=True, seed=3, seed_sessions=500, activities_per_session=10
        )
        state, _ = tracemalloc.get_traced_memory()
        for session in world.account("k").sessions.values():
            session.json_bytes()
            for activity in session.activities:
                activity.json_bytes()
        cached, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert state / 5000 < 1200 and cached / 5000 < 2500  # bytes per activity


def _pages(seed):
    with start_simulator(
        api_keys=["k"], manual_clock=True, seed=seed, seed_sessions=300, activities_per_session=7
    ) as sim:
        pages = [call(sim, "GET", f"/sessions?pageSize=100&filter={q(ALL)}").raw]
        first = call(sim, "GET", "/sessions?pageSize=5").json["sessions"]
        pages += [call(sim, "GET", f"/sessions/{s['id']}/activities").raw for s in first]
        return pages


def test_it_seeds_the_same_json_for_the_same_seed():
    assert _pages(8) == _pages(8)
    assert _pages(8) != _pages(9)


def test_it_keeps_a_few_seeded_sessions_moving(sim):
    with start_simulator(
        api_keys=["k"], manual_clock=True, seed_sessions=1000, activities_per_session=5
    ) as big_sim:
        live = [
            s.id
            for s in big_sim.state.account("k").sessions.values()
            if s.state not in {"COMPLETED", "FAILED", "PAUSED", "AWAITING_USER_FEEDBACK"}
        ]
        assert 1 <= len(live) <= 5
        big_sim.advance(4000)
        assert {get(big_sim, sid)["state"] for sid in live} <= {
            "COMPLETED",
            "AWAITING_PLAN_APPROVAL",
        }


def test_it_seeds_the_demo_in_every_state_with_some_live():
    with start_simulator(api_keys=["sim-demo-key"], manual_clock=True, demo=True) as sim:
        sessions = [
            s
            for page in list_all(
                sim, f"/sessions?filter={q(ALL)}", "sessions", 100, key="sim-demo-key"
            )
            for s in page
        ]
        states = Counter(s["state"] for s in sessions)
        assert 24 <= len(sessions) <= 60
        assert set(states) == {
            "QUEUED",
            "PLANNING",
            "AWAITING_PLAN_APPROVAL",
            "AWAITING_USER_FEEDBACK",
            "IN_PROGRESS",
            "PAUSED",
            "FAILED",
            "COMPLETED",
        }
        assert any(s.get("archived") and s["state"] == "COMPLETED" for s in sessions)
        assert any("pullRequest" in o for s in sessions for o in s.get("outputs", []))
        assert len({s["sourceContext"]["source"] for s in sessions if "sourceContext" in s}) >= 5
        before = {s["id"]: s["updateTime"] for s in sessions}
        sim.advance(30)
        after = [
            s
            for page in list_all(
                sim, f"/sessions?filter={q(ALL)}", "sessions", 100, key="sim-demo-key"
            )
            for s in page
        ]
        assert sum(before[s["id"]] != s["updateTime"] for s in after) >= 2


def test_it_round_trips_a_snapshot(tmp_path):
    path = str(tmp_path / "world.json")
    config = SimulatorConfig(snapshot_path=path)
    with start_simulator(
        api_keys=["k"], manual_clock=True, seed=2, seed_sessions=40, config=config
    ) as sim:
        waiting = create(sim, "Ask [sim:question]")["id"]
        sim.advance(150)
        before = call(sim, "GET", f"/sessions?pageSize=100&filter={q(ALL)}").raw
        history = activities(sim, waiting)
    with start_simulator(api_keys=["k"], manual_clock=True, seed=2, config=config) as again:
        assert call(again, "GET", f"/sessions?pageSize=100&filter={q(ALL)}").raw == before
        assert activities(again, waiting) == history
        call(again, "POST", f"/sessions/{waiting}:sendMessage", {"prompt": "Yes"})
        again.advance(3000)
        assert get(again, waiting)["state"] == "COMPLETED"
        assert kinds(activities(again, waiting))[-1] == "sessionCompleted"
