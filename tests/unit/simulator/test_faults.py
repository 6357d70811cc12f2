"""Fault rules: every kind, every matcher and trigger, the SPEC grammar and the admin API."""

from __future__ import annotations

import http.client
import json
import time
from email.utils import parsedate_to_datetime

import pytest

from jules_simulator import FaultRule, start_simulator
from tests.unit.simulator.helpers import NOT_FOUND, admin, call, create


def _fire(sim, spec, path="/sources", method="GET", body=None, key="k"):
    sim.add_fault(spec)
    return call(sim, method, path, body, key=key)


def test_it_answers_429_with_retry_after_in_seconds(empty_sim):
    reply = _fire(empty_sim, "status=429,retry_after=2")
    assert reply.status == 429 and reply.headers["Retry-After"] == "2"
    assert reply.error == {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
    }


def test_it_answers_429_with_retry_after_as_an_http_date(empty_sim):
    reply = _fire(empty_sim, "kind=status,status=429,retry_after=30,retry_format=date")
    ahead = parsedate_to_datetime(reply.headers["Retry-After"]).timestamp() - time.time()
    assert 25 <= ahead <= 31


def test_it_answers_429_without_retry_after(empty_sim):
    reply = _fire(empty_sim, "status=429")
    assert reply.status == 429 and "Retry-After" not in reply.headers


@pytest.mark.parametrize(
    ("status", "name"), [(500, "INTERNAL"), (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED")]
)
def test_it_answers_server_errors_with_google_bodies(empty_sim, status, name):
    reply = _fire(empty_sim, f"status={status}")
    assert reply.status == status and reply.error["status"] == name
    assert reply.error["code"] == status


def test_it_answers_502_with_an_html_page(empty_sim):
    reply = _fire(empty_sim, "status=502")
    assert reply.status == 502 and reply.headers["Content-Type"].startswith("text/html")
    assert reply.raw.lstrip().startswith(b"<!DOCTYPE html>")


def test_it_adds_latency_and_then_answers(empty_sim):
    started = time.monotonic()
    reply = _fire(empty_sim, "kind=latency,seconds=0.3")
    assert reply.status == 200 and time.monotonic() - started >= 0.3


def test_it_outlasts_a_client_timeout(empty_sim):
    empty_sim.add_fault("kind=latency,seconds=1,first=1")
    with pytest.raises(TimeoutError):
        call(empty_sim, "GET", "/sources", timeout=0.2)
    assert call(empty_sim, "GET", "/sources").status == 200


def test_it_answers_malformed_json_with_200(empty_sim):
    reply = _fire(empty_sim, "kind=malformed")
    assert reply.status == 200
    with pytest.raises(ValueError):
        json.loads(reply.raw)


def test_it_truncates_a_body_under_its_full_content_length(empty_sim):
    empty_sim.add_fault("kind=truncate")
    connection = http.client.HTTPConnection("127.0.0.1", empty_sim.port, timeout=5)
    connection.request("GET", "/v1alpha/sources", headers={"X-Goog-Api-Key": "k"})
    response = connection.getresponse()
    declared = int(response.headers["Content-Length"])
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert 0 < len(cut.value.partial) < declared
    connection.close()


def test_it_resets_the_connection(empty_sim):
    empty_sim.add_fault("kind=reset,first=1")
    with pytest.raises(ConnectionError):
        call(empty_sim, "GET", "/sources")
    assert call(empty_sim, "GET", "/sources").status == 200


def test_it_answers_an_empty_200_body(empty_sim):
    reply = _fire(empty_sim, "kind=empty")
    assert reply.status == 200 and reply.raw == b"" and reply.headers["Content-Length"] == "0"


def test_it_answers_404_to_the_first_activity_lists(sim):
    sid = call(sim, "GET", "/sessions").json["sessions"][0]["id"]
    sim.add_fault("kind=activities404,first=2")
    path = f"/sessions/{sid}/activities"
    assert call(sim, "GET", f"/sessions/{sid}").status == 200  # other operations untouched
    assert [call(sim, "GET", path).status for _ in range(3)] == [404, 404, 200]
    assert call(sim, "GET", path).status == 200


def test_it_counts_activity_404s_per_session_when_scoped(sim):
    ids = [s["id"] for s in call(sim, "GET", "/sessions").json["sessions"][:2]]
    sim.add_fault("kind=activities404,first=1,scope=session")
    statuses = [call(sim, "GET", f"/sessions/{i}/activities").status for i in ids + ids]
    assert statuses == [404, 404, 200, 200]


def test_it_answers_404_to_activity_lists_within_a_virtual_window(sim):
    sid = call(sim, "GET", "/sessions").json["sessions"][0]["id"]
    sim.add_fault("kind=activities404,window=0-5,clock=virtual")
    assert call(sim, "GET", f"/sessions/{sid}/activities").json == NOT_FOUND
    sim.advance(6)
    assert call(sim, "GET", f"/sessions/{sid}/activities").status == 200


def test_it_matches_by_method_path_operation_key_and_account(sim):
    sim.add_fault("status=503,method=POST")
    sim.add_fault("status=500,path=^/sources/")
    sim.add_fault("status=504,op=sessions.get")
    sim.add_fault("status=502,key=other")
    assert call(sim, "GET", "/sessions").status == 200
    assert call(sim, "POST", "/sessions", {"prompt": "x"}).status == 503
    assert call(sim, "GET", "/sources").status == 200
    assert call(sim, "GET", "/sources/github/acme/web").status == 500
    assert call(sim, "GET", "/sessions/123").status == 504
    assert call(sim, "GET", "/sessions", key="other").status == 502
    sim.clear_faults()
    sim.add_fault("status=500,account=account-2")
    assert call(sim, "GET", "/sessions", key="other").status == 500
    assert call(sim, "GET", "/sessions").status == 200


def test_it_fires_on_first_after_every_and_limit(empty_sim):
    def statuses(spec, n=8):
        empty_sim.clear_faults()
        empty_sim.add_fault(spec)
        return [call(empty_sim, "GET", "/sources").status for _ in range(n)]

    assert statuses("status=500,first=2") == [500, 500] + [200] * 6
    assert statuses("status=500,after=5") == [200] * 5 + [500] * 3
    assert statuses("status=500,every=3") == [200, 200, 500, 200, 200, 500, 200, 200]
    assert statuses("status=500,every=2,limit=2") == [200, 500, 200, 500] + [200] * 4


def test_it_fires_within_a_real_time_window(empty_sim):
    empty_sim.add_fault("status=500,window=0.3-60")
    assert call(empty_sim, "GET", "/sources").status == 200
    time.sleep(0.35)
    assert call(empty_sim, "GET", "/sources").status == 500


def test_it_fires_by_a_seeded_probability():
    def pattern():
        with start_simulator(
            api_keys=["k"], manual_clock=True, seed=4, faults=["status=500,prob=0.3"]
        ) as sim:
            return [call(sim, "GET", "/sources").status for _ in range(60)]

    first = pattern()
    assert first == pattern()
    assert 5 <= first.count(500) <= 35


def test_it_applies_the_first_rule_that_fires(empty_sim):
    empty_sim.add_fault("status=429,first=2")
    empty_sim.add_fault("status=503,first=1")
    assert [call(empty_sim, "GET", "/sources").status for _ in range(4)] == [429, 429, 503, 200]
    assert empty_sim.request_counts()["fault.status"] == 3


def test_it_answers_a_fault_before_or_after_running_the_request(empty_sim):
    empty_sim.add_fault("status=500,method=POST,first=1")
    assert call(empty_sim, "POST", "/sessions", {"prompt": "refused"}).status == 500
    assert call(empty_sim, "GET", "/sessions").json == {}
    empty_sim.add_fault("status=500,method=POST,stage=after,first=1")
    assert call(empty_sim, "POST", "/sessions", {"prompt": "taken"}).status == 500
    (session,) = call(empty_sim, "GET", "/sessions").json["sessions"]
    assert session["prompt"] == "taken"  # ambiguous: docs/jules-api.md#non-idempotent-calls


def test_it_truncates_the_real_answer_of_a_create_it_ran(empty_sim):
    empty_sim.add_fault("kind=truncate,method=POST")
    with pytest.raises(http.client.IncompleteRead):
        call(empty_sim, "POST", "/sessions", {"prompt": "half an answer"})
    empty_sim.clear_faults()
    assert len(call(empty_sim, "GET", "/sessions").json["sessions"]) == 1


def test_it_parses_the_spec_grammar():
    rule = FaultRule.parse('status=429, retry_after=2 ,path="^/sessions/\\d{19,20}$",prob=0.5')
    assert (rule.kind, rule.status, rule.retry_after, rule.prob) == ("status", 429, 2.0, 0.5)
    assert rule.path == "^/sessions/\\d{19,20}$"
    assert FaultRule.parse("kind=truncate,every=5").stage == "after"
    assert FaultRule.parse("kind=status,status=429,retry_after_date=1").retry_format == "date"
    assert FaultRule.parse("kind=latency,seconds=40").seconds == 40
    for bad in (
        "kind=explode",
        "status=700",
        "prob=2",
        "every=0",
        "colour=red",
        "path=(",
        "window=5",
    ):
        with pytest.raises(ValueError):
            FaultRule.parse(bad)


def test_it_manages_rules_through_the_admin_api(empty_sim):
    added = admin(empty_sim, "POST", "/faults", {"kind": "status", "status": "503", "first": "1"})
    assert added.status == 200 and added.json["faults"][0]["status"] == 503
    admin(empty_sim, "POST", "/faults", [{"status": 500, "op": "sources.get"}])
    admin(empty_sim, "POST", "/faults", {"spec": "kind=empty,path=^/sessions$"})
    assert len(admin(empty_sim, "GET", "/faults").json["faults"]) == 3
    assert call(empty_sim, "GET", "/sources").status == 503
    assert call(empty_sim, "GET", "/sources/github/acme/web").status == 500
    assert call(empty_sim, "GET", "/sessions").raw == b""
    assert admin(empty_sim, "POST", "/faults", {"kind": "nope"}).status == 400
    assert admin(empty_sim, "DELETE", "/faults").json == {}
    assert call(empty_sim, "GET", "/sessions").raw == b"{}"


def test_it_takes_fault_specs_at_start():
    with start_simulator(api_keys=["k"], manual_clock=True, faults=["status=503,first=1"]) as sim:
        assert [call(sim, "GET", "/sources").status for _ in range(2)] == [503, 200]
        create(sim)
