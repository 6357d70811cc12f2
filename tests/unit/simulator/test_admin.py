"""The `/_sim/` admin API, the in-process handle and the management command's options."""

from __future__ import annotations

from jules_simulator import start_simulator
from sessions_app.management.commands.jules_simulator import Command
from tests.unit.simulator.helpers import admin, call, create, get


def test_it_moves_and_reports_the_virtual_clock(empty_sim):
    before = admin(empty_sim, "GET", "/clock").json
    assert before["manual"] is True
    after = admin(empty_sim, "POST", "/clock/advance", {"seconds": 90}).json
    assert after["now"] - before["now"] == 90
    assert after["time"].endswith("Z") and after["time"] > before["time"]


def test_it_runs_due_events_when_the_clock_moves_through_the_admin_api(empty_sim):
    sid = create(empty_sim)["id"]
    admin(empty_sim, "POST", "/clock/advance", {"seconds": 20})
    assert get(empty_sim, sid)["state"] == "PLANNING"


def test_it_counts_requests_per_operation_without_keys(sim):
    call(sim, "GET", "/sessions")
    call(sim, "GET", "/sessions", key="secret-key-xyz")
    call(sim, "GET", "/sessions", key=None)
    call(sim, "POST", "/sessions", {"prompt": " "})
    reply = admin(sim, "GET", "/requests")
    counts = reply.json["counts"]
    assert counts["sessions.list"] == 1 and counts["unauthenticated"] == 2
    assert counts["status.400"] == 1 and "sessions.create" not in counts
    assert reply.json["accounts"]["account-1"]["sessions.list"] == 1
    assert b"secret-key-xyz" not in reply.raw and b'"k"' not in reply.raw
    assert sim.request_counts() == counts


def test_it_describes_a_sessions_scenario_state(empty_sim):
    sid = create(empty_sim, "Break [sim:failure step=3]")["id"]
    empty_sim.advance(10)
    data = admin(empty_sim, "GET", f"/sessions/{sid}").json
    assert (data["state"], data["phase"], data["account"]) == ("PLANNING", "planning", "account-1")
    assert data["scenario"]["name"] == "failure" and data["scenario"]["step"] == 3
    assert data["nextEventTime"].endswith("Z")
    assert admin(empty_sim, "GET", "/sessions/123").status == 404
    assert empty_sim.state.session(sid).state == "PLANNING"


def test_it_resets_to_the_state_at_start(sim):
    seeded = call(sim, "GET", "/sessions?pageSize=100").raw
    sid = create(sim)["id"]
    sim.add_fault("status=500,op=sessions.get")
    sim.advance(500)
    assert admin(sim, "POST", "/reset").json == {}
    assert call(sim, "GET", "/sessions?pageSize=100").raw == seeded
    assert call(sim, "GET", f"/sessions/{sid}").status == 404
    # Counts and faults start over too: the GET above is a plain 404, not a fault.
    assert sim.request_counts() == {"sessions.list": 1, "status.404": 1, "failed.sessions.get": 1}


def test_it_adds_an_account_with_seeded_sessions(empty_sim):
    reply = admin(
        empty_sim,
        "POST",
        "/accounts",
        {"id": "load", "keys": ["L"], "seed_sessions": 12, "activities_per_session": 4},
    )
    assert reply.json == {"account": "load", "keys": 1}
    assert (
        len(call(empty_sim, "GET", "/sessions?pageSize=100", key="L").json.get("sessions", []))
        >= 10
    )
    assert admin(empty_sim, "POST", "/accounts", {"id": "load", "tier": "mega"}).status == 400
    assert (
        admin(empty_sim, "POST", "/accounts", {"id": "new", "keys": ["N"], "tier": "mega"}).status
        == 400
    )
    assert admin(empty_sim, "POST", "/accounts", {"id": "load", "concurrent_cap": 0}).status == 200
    assert call(empty_sim, "POST", "/sessions", {"prompt": "x"}, key="L").status == 429


def test_it_answers_404_for_unknown_admin_paths(empty_sim):
    assert admin(empty_sim, "GET", "/nothing").status == 404
    assert admin(empty_sim, "POST", "/clock/advance", b"{oops").status == 400


def test_it_exposes_the_agreed_in_process_handle():
    with start_simulator(api_keys=["a", "b"], manual_clock=True) as sim:
        assert sim.base_url == f"http://127.0.0.1:{sim.port}/v1alpha"
        assert sim.admin_url == f"http://127.0.0.1:{sim.port}/_sim"
        sid = create(sim, key="a")["id"]
        world = sim.state
        assert world.account("a") is not world.account("b") and world.account("zzz") is None
        assert [a["id"] for a in world.session(sid).activities] == []
        world.advance(100)
        assert world.session(sid).activities[0]["id"] == world.session(sid).activities[0].id
        rule = world.add_fault("status=503,first=1")
        assert call(sim, "GET", "/sessions", key="a").status == 503 and rule.fired == 1
        world.clear_faults()
        assert world.request_counts()["fault.status"] == 1
    assert sim._stopped


def test_it_parses_the_documented_command_options():
    parser = Command().create_parser("manage.py", "jules_simulator")
    options = parser.parse_args(
        [
            "--port", "8765", "--host", "127.0.0.1", "--api-key", "a", "--api-key", "b",
            "--speed", "60", "--seed", "3", "--seed-sessions", "100", "--activities-per-session", "5",
            "--faults", "status=429,every=3", "--faults", "kind=truncate,every=5",
            "--snapshot", "world.json", "--demo", "--tier", "free", "--manual-clock",
        ]
    )  # fmt: skip
    assert options.api_keys == ["a", "b"] and options.speed == 60 and options.port == 8765
    assert options.faults == ["status=429,every=3", "kind=truncate,every=5"]
    assert options.snapshot == "world.json" and options.demo and options.tier == "free"
    assert Command.requires_system_checks == []
