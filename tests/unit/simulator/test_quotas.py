"""Plan caps per account and parallel-create failures, both opt-in.

docs/jules-api.md#quotas-and-rate-limits
"""

from __future__ import annotations

import threading

from jules_simulator import AccountSpec, SimulatorConfig, start_simulator
from tests.unit.simulator.helpers import admin, call, repo


def _create(sim, prompt="x", key="k"):
    return call(sim, "POST", "/sessions", {"prompt": prompt, **repo()}, key=key)


def test_it_has_no_quotas_unless_configured(empty_sim):
    assert all(_create(empty_sim).status == 200 for _ in range(70))


def test_it_caps_concurrent_sessions_of_a_free_account():
    with start_simulator(
        api_keys=["k"], manual_clock=True, config=SimulatorConfig(tier="free")
    ) as sim:
        assert [_create(sim).status for _ in range(4)] == [200, 200, 200, 429]
        refused = _create(sim)
        assert refused.error["status"] == "RESOURCE_EXHAUSTED" and refused.error["code"] == 429
        sim.advance(3000)  # all three complete and free their slots
        assert _create(sim).status == 200


def test_it_caps_daily_sessions_on_a_rolling_window_counting_failed_ones():
    with start_simulator(
        api_keys=["k"], manual_clock=True, config=SimulatorConfig(tier="free")
    ) as sim:
        for _ in range(5):
            statuses = [_create(sim, "Break [sim:failure step=0]").status for _ in range(3)]
            assert statuses == [200, 200, 200]
            sim.advance(3000)
        assert _create(sim).status == 429  # 15 a day, failed sessions included
        sim.advance(86_400 - 5 * 3000 + 100)
        assert _create(sim).status == 200


def test_it_applies_custom_caps_to_one_account_only():
    spec = AccountSpec(id="capped", keys=("c",), daily_cap=2, concurrent_cap=10)
    with start_simulator(
        api_keys=["k"], manual_clock=True, config=SimulatorConfig(accounts=(spec,))
    ) as sim:
        assert [_create(sim, key="c").status for _ in range(3)] == [200, 200, 429]
        assert all(_create(sim).status == 200 for _ in range(5))


def test_it_takes_a_tier_through_the_admin_api(empty_sim):
    admin(empty_sim, "POST", "/accounts", {"id": "pro", "keys": ["p"], "tier": "pro"})
    statuses = [_create(empty_sim, key="p").status for _ in range(16)]
    assert statuses.count(200) == 15 and statuses[-1] == 429


def test_it_does_not_count_paused_sessions_as_running():
    with start_simulator(
        api_keys=["k"], manual_clock=True, config=SimulatorConfig(concurrent_cap=1)
    ) as sim:
        assert _create(sim, "Wait [sim:pause step=0]").status == 200
        assert _create(sim).status == 429
        sim.advance(300)
        assert _create(sim).status == 200


def test_it_fails_creates_beyond_the_parallel_limit():
    config = SimulatorConfig(parallel_create_limit=2, parallel_create_seconds=0.5)
    with start_simulator(api_keys=["k"], manual_clock=True, config=config) as sim:
        results: list[int] = []
        barrier = threading.Barrier(6)

        def fire():
            barrier.wait()
            results.append(_create(sim).status)

        threads = [threading.Thread(target=fire) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [200, 200, 404, 404, 404, 404]
        assert sim.request_counts()["sessions.create"] == 2
        # One at a time, creates and source lookups succeed.
        assert [_create(sim).status for _ in range(2)] == [200, 200]
        assert call(sim, "GET", "/sources/github/acme/billing").status == 200
        [account] = sim.quotas().values()
        assert account["peak_inflight_creates"] == 6
        assert account["parallel_create_failures"] == 4


def test_it_reports_peaks_and_refusals_per_account():
    with start_simulator(
        api_keys=["k"], manual_clock=True, config=SimulatorConfig(tier="free")
    ) as sim:
        assert [_create(sim).status for _ in range(4)] == [200, 200, 200, 429]
        sim.advance(3000)
        assert _create(sim).status == 200
        report = admin(sim, "GET", "/quotas").json["accounts"]
        [account] = report.values()
        assert account["peak_busy"] == 3 and account["busy"] == 1
        assert account["peak_daily"] == 4 and account["created_24h"] == 4
        assert account["refused_concurrent"] == 1 and account["refused_daily"] == 0
        assert (account["daily_cap"], account["concurrent_cap"]) == (15, 3)
        assert sim.quotas() == report
