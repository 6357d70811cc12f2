"""Page sizes, tokens, orderings (docs/jules-api.md#pagination)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jules_simulator import start_simulator
from tests.unit.simulator.helpers import ALL, call, create, list_all, q


@pytest.fixture
def long_sessions() -> Iterator[Any]:
    """Three sessions of 130 activities each, for activity page sizes."""
    with start_simulator(
        api_keys=["k", "other"],
        manual_clock=True,
        seed=2,
        seed_sessions=3,
        activities_per_session=130,
    ) as simulator:
        yield simulator


def _first_session(sim, key="k"):
    return call(sim, "GET", "/sessions", key=key).json["sessions"][0]["id"]


def test_it_uses_the_default_page_sizes_30_50_30(sim, long_sessions):
    page = call(sim, "GET", "/sessions").json
    assert len(page["sessions"]) == 30 and page["nextPageToken"]
    sid = _first_session(long_sessions)
    assert len(call(long_sessions, "GET", f"/sessions/{sid}/activities").json["activities"]) == 50
    sources = call(sim, "GET", "/sources").json
    assert len(sources["sources"]) == 8 and "nextPageToken" not in sources


@pytest.mark.parametrize(
    ("asked", "served"), [("0", 30), ("", 30), ("1", 1), ("100", 100), ("101", 100), ("5000", 100)]
)
def test_it_clamps_page_sizes_at_100_and_reads_zero_as_the_default(sim, asked, served):
    for _ in range(60):
        create(sim, "more")  # 120 sessions in all
    page = call(sim, "GET", f"/sessions?pageSize={asked}&filter={q(ALL)}").json
    assert len(page["sessions"]) == served


def test_it_clamps_activity_pages_at_100(long_sessions):
    sid = _first_session(long_sessions)
    page = call(long_sessions, "GET", f"/sessions/{sid}/activities?pageSize=1000").json
    assert len(page["activities"]) == 100 and page["nextPageToken"]


@pytest.mark.parametrize("size", ["-1", "-100", "abc", "1.5"])
def test_it_rejects_negative_and_unparseable_sizes(sim, size):
    for path in ("/sessions", "/sources", f"/sessions/{_first_session(sim)}/activities"):
        reply = call(sim, "GET", f"{path}?pageSize={size}")
        assert reply.status == 400 and reply.error["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize("size", [1, 7, 29, 30, 60, 100])
def test_it_pages_every_session_once_and_omits_the_last_token(sim, size):
    pages = list_all(sim, f"/sessions?filter={q(ALL)}", "sessions", size)
    ids = [s["id"] for page in pages for s in page]
    assert len(ids) == len(set(ids)) == 60
    assert all(len(page) == size for page in pages[:-1])


def test_it_never_serves_an_empty_page_with_a_token_under_a_filter(sim):
    # Archived sessions are a sparse subset; pages must still end where they end.
    archived_pages = list_all(sim, f"/sessions?filter={q('archived = true')}", "sessions", 2)
    archived = [s for page in archived_pages for s in page]
    assert archived and all(s["archived"] for s in archived)
    active = [s for page in list_all(sim, "/sessions", "sessions", 7) for s in page]
    assert len(active) + len(archived) == 60


def test_it_lists_sessions_newest_first(sim):
    sessions = [
        s for page in list_all(sim, f"/sessions?filter={q(ALL)}", "sessions", 100) for s in page
    ]
    keys = [(s["createTime"], s["id"]) for s in sessions]
    assert keys == sorted(keys, reverse=True)
    newest = create(sim, "the newest")
    assert call(sim, "GET", "/sessions?pageSize=1").json["sessions"][0]["id"] == newest["id"]


def test_it_lists_activities_oldest_first_and_sources_by_id(long_sessions):
    sid = _first_session(long_sessions)
    items = [
        a
        for page in list_all(long_sessions, f"/sessions/{sid}/activities", "activities", 17)
        for a in page
    ]
    assert len(items) == 130 == len({a["id"] for a in items})
    times = [a["createTime"] for a in items]
    assert times == sorted(times) and len(set(times)) == len(times)
    sources = [s["id"] for page in list_all(long_sessions, "/sources", "sources", 3) for s in page]
    assert sources == sorted(sources) and len(sources) == 8


def test_it_keeps_later_pages_stable_while_sessions_are_created_and_deleted(sim):
    before = [
        s["id"]
        for page in list_all(sim, f"/sessions?filter={q(ALL)}", "sessions", 60)
        for s in page
    ]
    first = call(sim, "GET", f"/sessions?pageSize=10&filter={q(ALL)}").json
    for _ in range(3):
        create(sim, "inserted between two pages")
    # Deleting the last item of the first page must not make the next page skip one.
    call(sim, "DELETE", f"/sessions/{first['sessions'][-1]['id']}")
    token = q(first["nextPageToken"])
    second = call(sim, "GET", f"/sessions?pageSize=10&filter={q(ALL)}&pageToken={token}").json
    assert [s["id"] for s in second["sessions"]] == before[10:20]


def test_it_keeps_activity_pages_stable_while_activities_are_added(empty_sim):
    sid = create(empty_sim)["id"]
    empty_sim.advance(400)
    first = call(empty_sim, "GET", f"/sessions/{sid}/activities?pageSize=3").json
    empty_sim.advance(3000)
    token = q(first["nextPageToken"])
    rest = call(empty_sim, "GET", f"/sessions/{sid}/activities?pageSize=100&pageToken={token}").json
    everything = call(empty_sim, "GET", f"/sessions/{sid}/activities?pageSize=100").json
    assert [a["id"] for a in rest["activities"]] == [a["id"] for a in everything["activities"][3:]]


def test_it_makes_tokens_opaque(sim):
    page = call(sim, "GET", "/sessions?pageSize=5").json
    token, last = page["nextPageToken"], page["sessions"][-1]
    assert last["id"] not in token and last["createTime"] not in token
    assert not token.isdigit() and "/" not in token


def test_it_rejects_foreign_edited_and_unparseable_tokens(sim):
    sessions_token = call(sim, "GET", "/sessions?pageSize=5").json["nextPageToken"]
    archived_token = call(sim, "GET", f"/sessions?pageSize=1&filter={q(ALL)}").json["nextPageToken"]
    sid = _first_session(sim)
    activities_token = call(sim, "GET", f"/sessions/{sid}/activities?pageSize=1").json[
        "nextPageToken"
    ]
    other_sid = call(sim, "GET", "/sessions").json["sessions"][1]["id"]
    edited = sessions_token[:-2] + ("A" if sessions_token[-2] != "A" else "B") + sessions_token[-1]
    for path in [
        "/sessions?pageToken=garbage",
        "/sessions?pageToken=github%2Facme%2Fweb",
        "/sessions?pageToken=1704448500999999000",
        f"/sessions?pageToken={q(edited)}",
        f"/sessions?pageToken={q(archived_token)}",  # minted under another filter
        f"/sources?pageToken={q(sessions_token)}",  # minted by another list
        f"/sessions/{other_sid}/activities?pageToken={q(activities_token)}",  # another session
    ]:
        reply = call(sim, "GET", path)
        assert reply.status == 400 and reply.error["status"] == "INVALID_ARGUMENT", path
    foreign = call(sim, "GET", f"/sessions?pageToken={q(sessions_token)}", key="other")
    assert foreign.status == 400  # minted for another account
    assert call(sim, "GET", f"/sessions?pageToken={q(sessions_token)}").status == 200
