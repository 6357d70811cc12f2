"""The three filter grammars, exactly, and 400 for anything else (docs/jules-api.md#filters)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.unit.simulator.helpers import activities, call, create, list_all, q


def _ids(sim, filter_text=None):
    path = "/sessions" + (f"?filter={q(filter_text)}" if filter_text is not None else "")
    pages = list_all(sim, path, "sessions", 100)
    return {s["id"]: s.get("archived", False) for page in pages for s in page}


def test_it_lists_non_archived_sessions_without_a_filter(sim):
    listed = _ids(sim)
    assert listed and not any(listed.values())
    assert _ids(sim, "") == listed


def test_it_lists_only_archived_sessions_for_archived_true(sim):
    listed = _ids(sim, "archived = true")
    assert listed and all(listed.values())
    assert _ids(sim, "archived=true") == listed == _ids(sim, "  archived  =  true ")


@pytest.mark.parametrize(
    "text",
    [
        "archived = true OR archived = false",
        "archived = false OR archived = true",
        "archived=true OR archived=false",
        " archived =true  OR  archived= false ",
    ],
)
def test_it_lists_everything_for_both_values(sim, text):
    assert len(_ids(sim, text)) == 60


@pytest.mark.parametrize(
    "text",
    [
        "archived = false",
        "archived = TRUE",
        "archived = true or archived = false",
        "archived = true OR archived = true",
        "archived = true AND archived = false",
        "archived = true OR state = COMPLETED",
        "state = COMPLETED",
        "archived",
        "NOT archived",
        'create_time > "2026-01-01T00:00:00Z"',
    ],
)
def test_it_rejects_any_other_sessions_filter(sim, text):
    reply = call(sim, "GET", f"/sessions?filter={q(text)}")
    assert reply.status == 400 and reply.error["status"] == "INVALID_ARGUMENT"


def _finished(sim):
    session = create(sim, "Fix the CSV export")
    sim.advance(3000)
    return session["id"], activities(sim, session["id"])


@pytest.mark.parametrize(
    "template", ['create_time > "{}"', 'create_time>"{}"', ' create_time  >  "{}" ']
)
def test_it_returns_activities_strictly_after_the_pivot(empty_sim, template):
    sid, items = _finished(empty_sim)
    pivot = items[3]["createTime"]
    reply = call(empty_sim, "GET", f"/sessions/{sid}/activities?filter={q(template.format(pivot))}")
    assert [a["id"] for a in reply.json["activities"]] == [a["id"] for a in items[4:]]
    last = items[-1]["createTime"]
    after_last = call(
        empty_sim, "GET", f"/sessions/{sid}/activities?filter={q(template.format(last))}"
    )
    assert after_last.json == {}


def test_it_compares_the_pivot_as_a_time_not_a_string(empty_sim):
    sid, items = _finished(empty_sim)
    pivot = dt.datetime.fromisoformat(items[3]["createTime"].replace("Z", "+00:00"))
    shapes = [
        pivot.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000+00:00",  # nanoseconds and an offset
        (pivot + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+02:00",
        pivot.strftime("%Y-%m-%dT%H:%M:%S.%f") + "999Z",  # a hair later: still before #4
    ]
    for shape in shapes:
        path = f"/sessions/{sid}/activities?filter={q(f'create_time > {chr(34)}{shape}{chr(34)}')}"
        assert [a["id"] for a in call(empty_sim, "GET", path).json["activities"]] == [
            a["id"] for a in items[4:]
        ], shape


@pytest.mark.parametrize(
    "text",
    [
        "bogus",
        'create_time > "yesterday"',
        'create_time > "2026-13-01T00:00:00Z"',
        'create_time < "2026-01-01T00:00:00Z"',
        'createTime > "2026-01-01T00:00:00Z"',
        "create_time > 2026-01-01T00:00:00Z",
        'create_time > "2026-01-01T00:00:00Z" AND create_time < "2027-01-01T00:00:00Z"',
    ],
)
def test_it_rejects_any_other_activities_filter(empty_sim, text):
    sid, _ = _finished(empty_sim)
    reply = call(empty_sim, "GET", f"/sessions/{sid}/activities?filter={q(text)}")
    assert reply.status == 400 and reply.error["status"] == "INVALID_ARGUMENT"


def test_it_filters_sources_by_or_joined_names(empty_sim):
    text = "name=sources/github/acme/billing OR name=sources/github/globex/search"
    reply = call(empty_sim, "GET", f"/sources?filter={q(text)}")
    assert [s["name"] for s in reply.json["sources"]] == [
        "sources/github/acme/billing",
        "sources/github/globex/search",
    ]
    one = call(empty_sim, "GET", f"/sources?filter={q('name = sources/github/acme/web')}").json
    assert [s["id"] for s in one["sources"]] == ["github/acme/web"]
    assert (
        call(empty_sim, "GET", f"/sources?filter={q('name=sources/github/acme/nope')}").json == {}
    )


@pytest.mark.parametrize(
    "text", ["owner=acme", "name~billing", "name=a AND name=b", "sources/github/acme/web"]
)
def test_it_rejects_any_other_sources_filter(empty_sim, text):
    assert call(empty_sim, "GET", f"/sources?filter={q(text)}").status == 400
