"""The client's requests and answers for each of the 12 operations, over loopback HTTP."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import threading
import time

import pytest

from jules import errors
from jules.client import JulesClient
from tests.unit.jules import spec_examples
from tests.unit.jules.conftest import API_KEY, Reply, ScriptedServer

SESSION = json.loads(spec_examples.SESSION)
SID = SESSION["id"]


def _session(**changes):
    return {**SESSION, **changes}


def _activity(n: int, **fields):
    return {
        "name": f"sessions/{SID}/activities/{n:032x}",
        "id": f"{n:032x}",
        "createTime": f"2026-03-02T09:{n:02d}:00.000000Z",
        "progressUpdated": {"title": f"step {n}"},
        **fields,
    }


# --- headers and URLs --------------------------------------------------------------------


def test_it_sends_the_key_and_json_headers(server, client):
    client.get_session(SID)
    get = server.last
    assert get.header("X-Goog-Api-Key") == API_KEY
    assert get.header("Accept") == "application/json"
    assert get.header("User-Agent") == "jules-team-portal"
    assert get.header("Content-Type") is None and get.body == b""
    client.approve_plan(SID)
    post = server.last
    assert post.header("Content-Type") == "application/json"
    assert post.header("X-Goog-Api-Key") == API_KEY
    assert post.json() == {}


def test_it_sends_no_key_header_for_an_empty_key(server, make_client):
    make_client(api_key="").list_sessions()
    assert server.last.header("X-Goog-Api-Key") is None


def test_it_strips_whitespace_pasted_around_the_key(server, make_client):
    make_client(api_key=f"  {API_KEY}\n").list_sessions()
    assert server.last.header("X-Goog-Api-Key") == API_KEY


def test_it_uses_a_custom_user_agent(server, make_client):
    make_client(user_agent="portal/2").list_sessions()
    assert server.last.header("User-Agent") == "portal/2"


def test_it_accepts_a_base_url_with_a_trailing_slash(server, make_client):
    make_client(base_url=server.url + "/").get_session("1")
    assert server.last.path == "/v1alpha/sessions/1"


def test_it_reuses_one_pooled_connection(server, client):
    for _ in range(5):
        client.list_sessions()
    assert len({seen.peer_port for seen in server.seen}) == 1


def test_it_counts_every_attempt(server, client):
    server.queue(Reply(503), Reply(200, {}), Reply(200, {}))
    client.list_sessions()
    client.list_sources()
    assert client.request_count == 3 == len(server.seen)


# --- sessions ----------------------------------------------------------------------------


def test_it_creates_a_session_from_a_bare_body(server, client):
    server.queue(Reply(200, _session(state="QUEUED")))
    session = client.create_session(
        prompt="Add unit tests",
        source="github/acme/billing",
        starting_branch="main",
        title="Invoice rounding tests",
        require_plan_approval=True,
        automation_mode="AUTO_CREATE_PR",
    )
    assert session.id == SID and session.state == "QUEUED"
    create = server.last
    assert (create.method, create.path) == ("POST", "/v1alpha/sessions")
    assert create.json() == {
        "prompt": "Add unit tests",
        "sourceContext": {
            "source": "sources/github/acme/billing",
            "githubRepoContext": {"startingBranch": "main"},
        },
        "title": "Invoice rounding tests",
        "requirePlanApproval": True,
        "automationMode": "AUTO_CREATE_PR",
    }
    assert len(server.seen) == 1


def test_it_creates_a_repoless_session_with_only_the_prompt(server, client):
    server.queue(Reply(200, {"name": "sessions/9", "id": "9", "state": "QUEUED"}))
    client.create_session(prompt="Explain closures")
    assert server.last.json() == {"prompt": "Explain closures"}


def test_it_reads_back_a_partial_create_answer(server, client):
    partial = {key: SESSION[key] for key in ("name", "id", "title", "sourceContext", "prompt")}
    server.queue(Reply(200, partial), Reply(200, _session(state="QUEUED")))
    session = client.create_session(prompt="p")
    assert session.state == "QUEUED" and session.url
    assert [(s.method, s.path) for s in server.seen] == [
        ("POST", "/v1alpha/sessions"),
        ("GET", f"/v1alpha/sessions/{SID}"),
    ]


def test_it_returns_the_partial_session_when_reading_it_back_fails(server, client):
    server.queue(Reply(200, {"name": "sessions/9", "id": "9"}), Reply(404, spec_examples.NOT_FOUND))
    session = client.create_session(prompt="p")
    assert session.id == "9" and session.state == "STATE_UNSPECIFIED"


def test_it_refuses_a_create_answer_that_names_no_session(server, client):
    server.queue(Reply(200, {"title": "x"}))
    with pytest.raises(errors.MalformedResponseError):
        client.create_session(prompt="p")
    assert len(server.seen) == 1


def test_it_keeps_at_most_three_creates_in_flight(server, client):
    lock = threading.Lock()
    in_flight = [0]
    peak = [0]

    def slow_create(seen):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.15)
        with lock:
            in_flight[0] -= 1
        return Reply(200, {"name": "sessions/1", "id": "1", "state": "QUEUED"})

    server.answer(slow_create)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(lambda n: client.create_session(prompt=f"p{n}"), range(8)))
    assert len(created) == 8 and len(server.seen) == 8
    assert peak[0] == 3


def test_it_gets_a_session_by_id_or_by_name(server, client):
    server.answer(lambda seen: Reply(200, SESSION))
    assert client.get_session(SID).id == SID
    assert client.get_session(f"sessions/{SID}").id == SID
    assert [s.path for s in server.seen] == [f"/v1alpha/sessions/{SID}"] * 2


@pytest.mark.parametrize("bad", ["", "  ", "sessions/", "1/activities/2"])
def test_it_rejects_what_is_not_a_session_id(client, bad):
    with pytest.raises(ValueError):
        client.get_session(bad)


def test_it_escapes_characters_that_would_change_the_url(server, client):
    client.get_session("12?x#y")
    assert server.last.path == "/v1alpha/sessions/12%3Fx%23y" and server.last.raw_query == ""


def test_it_deletes_a_session(server, client):
    assert client.delete_session(SID) is None
    assert (server.last.method, server.last.path, server.last.body) == (
        "DELETE",
        f"/v1alpha/sessions/{SID}",
        b"",
    )


def test_it_reports_deleting_an_unknown_session(server, client):
    server.queue(Reply(404, spec_examples.NOT_FOUND))
    with pytest.raises(errors.NotFoundError):
        client.delete_session("1")


def test_it_sends_a_message_with_a_colon_verb(server, client):
    client.send_message(f"sessions/{SID}", "Yes, toward zero.")
    assert (server.last.method, server.last.path) == (
        "POST",
        f"/v1alpha/sessions/{SID}:sendMessage",
    )
    assert server.last.json() == {"prompt": "Yes, toward zero."}


def test_it_approves_a_plan_with_a_colon_verb(server, client):
    assert client.approve_plan(SID) is None
    assert (server.last.method, server.last.path) == (
        "POST",
        f"/v1alpha/sessions/{SID}:approvePlan",
    )


@pytest.mark.parametrize("verb", ["archive", "unarchive"])
def test_it_accepts_an_empty_answer_or_a_session_from_archive_verbs(server, client, verb):
    call = client.archive_session if verb == "archive" else client.unarchive_session
    server.queue(Reply(200, {}), Reply(200, b""), Reply(200, _session(archived=verb == "archive")))
    assert call(SID) is None
    assert call(SID) is None
    returned = call(SID)
    assert returned is not None and returned.id == SID
    assert returned.archived is (verb == "archive")
    assert server.last.path == f"/v1alpha/sessions/{SID}:{verb}"
    assert server.last.json() == {}


@pytest.mark.parametrize(
    ("archived", "expected"),
    [
        (False, None),
        (True, "archived = true"),
        (None, "archived = true OR archived = false"),
    ],
)
def test_it_lists_sessions_with_the_archived_filter(server, client, archived, expected):
    server.queue(Reply(200, {"sessions": [SESSION], "nextPageToken": "t2"}))
    page = client.list_sessions(archived=archived)
    assert [s.id for s in page.items] == [SID] and page.next_page_token == "t2"
    assert server.last.path == "/v1alpha/sessions"
    assert server.last.query.get("filter", [None])[0] == expected
    # Spaces are percent-encoded, not sent raw.
    assert " " not in server.last.raw_query


def test_it_sends_page_size_and_token_only_when_set(server, client):
    client.list_sessions(page_size=1000, page_token="abc/def=")
    assert server.last.query == {"pageSize": ["1000"], "pageToken": ["abc/def="]}
    client.list_sessions(page_size=0)
    assert server.last.query == {}


@pytest.mark.parametrize("body", [{}, {"sessions": {}}, {"sessions": []}, {"sessions": None}])
def test_it_reads_a_list_answer_without_items_or_token(server, client, body):
    server.queue(Reply(200, body))
    page = client.list_sessions()
    assert page.items == [] and page.next_page_token is None


def test_it_iterates_all_sessions_following_the_page_token(server, client):
    server.queue(
        Reply(200, {"sessions": [_session(id="1"), _session(id="2")], "nextPageToken": "p2"}),
        Reply(200, {"nextPageToken": "p3"}),  # an empty page that still has a token
        Reply(200, {"sessions": [_session(id="3")], "nextPageToken": ""}),
    )
    ids = [s.id for s in client.iter_sessions(page_size=2, archived=None)]
    assert ids == ["1", "2", "3"]
    tokens = [s.query.get("pageToken", [None])[0] for s in server.seen]
    assert tokens == [None, "p2", "p3"]
    assert all("nextPageToken" not in s.query for s in server.seen)
    assert all(s.query["pageSize"] == ["2"] for s in server.seen)


def test_it_stops_paging_when_the_same_token_comes_back(server, client):
    server.answer(lambda seen: Reply(200, {"sessions": [SESSION], "nextPageToken": "same"}))
    with pytest.raises(errors.MalformedResponseError):
        list(client.iter_sessions())
    assert len(server.seen) == 2


@pytest.mark.parametrize(
    "body",
    [{"sessions": {"a": 1}}, {"sessions": ["junk"]}, {"sessions": [[]]}, ["sessions"]],
)
def test_it_rejects_a_list_of_the_wrong_shape(server, client, body):
    server.answer(lambda seen: Reply(200, body))
    with pytest.raises(errors.MalformedResponseError):
        client.list_sessions()


def test_it_reads_an_empty_2xx_body_as_an_empty_object(server, client):
    server.queue(Reply(200, b""), Reply(204, b""), Reply(200, b"  \n"))
    client.approve_plan("1")
    client.delete_session("1")
    assert client.list_sessions().items == []


# --- activities --------------------------------------------------------------------------


def test_it_lists_activities_with_the_create_time_filter(server, client):
    pivot = "2026-03-02T09:15:40.201337Z"
    server.queue(Reply(200, {"activities": [_activity(20)]}))
    page = client.list_activities(SID, page_size=50, create_time_after=pivot)
    assert [a.id for a in page.items] == [f"{20:032x}"] and page.next_page_token is None
    seen = server.last
    assert seen.path == f"/v1alpha/sessions/{SID}/activities"
    assert seen.query["filter"] == [f'create_time > "{pivot}"']
    assert seen.query["pageSize"] == ["50"]
    # Spaces, quotes and ">" are all percent-encoded.
    assert "filter=create_time%20%3E%20%222026-03-02T09%3A15%3A40.201337Z%22" in seen.raw_query


def test_it_accepts_a_datetime_as_the_pivot(server, client):
    moment = dt.datetime(2026, 3, 2, 10, 15, 40, 201337, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    client.list_activities(SID, create_time_after=moment)
    assert server.last.query["filter"] == ['create_time > "2026-03-02T09:15:40.201337Z"']


def test_it_refuses_a_pivot_that_would_break_the_filter(client):
    with pytest.raises(ValueError):
        client.list_activities(SID, create_time_after='2026" OR x')


def test_it_iterates_all_activities(server, client):
    server.queue(
        Reply(
            200,
            {"activities": [_activity(1), _activity(2)], "nextPageToken": "1704448500999999000"},
        ),
        Reply(200, {"activities": [_activity(3)]}),
    )
    activities = list(client.iter_activities(f"sessions/{SID}", page_size=2))
    assert [a.progress_title for a in activities] == ["step 1", "step 2", "step 3"]
    assert server.seen[1].query["pageToken"] == ["1704448500999999000"]


def test_it_fills_the_session_of_activities_that_have_no_name(server, client):
    server.queue(Reply(200, {"activities": [{"id": "ab", "agentMessaged": {}}]}))
    (activity,) = client.list_activities(f"sessions/{SID}").items
    assert activity.session_id == SID and activity.kind == "agentMessaged"


def test_it_retries_a_not_found_activity_list_with_doubling_waits(server, client, fake_time):
    not_found = Reply(404, spec_examples.NOT_FOUND)
    server.queue(not_found, not_found, not_found, Reply(200, {"activities": [_activity(1)]}))
    page = client.list_activities(SID, retry_not_found=5)
    assert len(page.items) == 1
    assert fake_time.sleeps == [1.0, 2.0, 4.0]


def test_it_gives_up_on_not_found_after_the_allowed_attempts(server, client, fake_time):
    server.answer(lambda seen: Reply(404, spec_examples.NOT_FOUND))
    with pytest.raises(errors.NotFoundError):
        client.list_activities(SID, retry_not_found=2)
    assert fake_time.sleeps == [1.0, 2.0] and len(server.seen) == 3


def test_it_does_not_retry_not_found_unless_asked(server, client, fake_time):
    server.answer(lambda seen: Reply(404, spec_examples.NOT_FOUND))
    with pytest.raises(errors.NotFoundError):
        list(client.iter_activities(SID))
    assert fake_time.sleeps == [] and len(server.seen) == 1


def test_it_retries_not_found_only_on_the_first_page(server, client, fake_time):
    server.queue(
        Reply(404, spec_examples.NOT_FOUND),
        Reply(200, {"activities": [_activity(1)], "nextPageToken": "n"}),
        Reply(404, spec_examples.NOT_FOUND),
    )
    iterator = client.iter_activities(SID, retry_not_found=3)
    assert next(iterator).id == f"{1:032x}"
    with pytest.raises(errors.NotFoundError):
        next(iterator)
    assert fake_time.sleeps == [1.0]


def test_it_gets_an_activity_by_id_or_by_full_name(server, client):
    server.answer(lambda seen: Reply(200, _activity(7)))
    name = f"sessions/{SID}/activities/{7:032x}"
    assert client.get_activity(SID, f"{7:032x}").id == f"{7:032x}"
    assert client.get_activity(SID, name).name == name
    assert [s.path for s in server.seen] == [f"/v1alpha/{name}"] * 2


# --- sources -----------------------------------------------------------------------------


def test_it_lists_sources_with_the_name_filter(server, client):
    server.queue(Reply(200, json.loads(spec_examples.SOURCES)))
    page = client.list_sources(names=["sources/github/acme/billing", "github/acme/web"])
    assert [s.name for s in page.items] == ["sources/github/acme/billing"]
    assert page.next_page_token == "github/acme/web"
    assert server.last.query["filter"] == [
        "name=sources/github/acme/billing OR name=sources/github/acme/web"
    ]


def test_it_lists_all_sources_without_a_filter(server, client):
    server.queue(
        Reply(200, json.loads(spec_examples.SOURCES)),
        Reply(200, {"sources": [{"name": "sources/github/acme/web"}]}),
    )
    names = [s.name for s in client.iter_sources(page_size=1)]
    assert names == ["sources/github/acme/billing", "sources/github/acme/web"]
    assert "filter" not in server.seen[0].query
    assert server.seen[1].query["pageToken"] == ["github/acme/web"]


@pytest.mark.parametrize("name", ["sources/github/acme/billing", "github/acme/billing"])
def test_it_gets_a_source_with_the_slashes_of_its_name_kept(server, client, name):
    server.queue(Reply(200, json.loads(spec_examples.SOURCES)["sources"][0]))
    source = client.get_source(name)
    assert source.id == "github/acme/billing"
    assert server.last.path == "/v1alpha/sources/github/acme/billing"


def test_it_gets_a_source_in_the_newer_name_style(server, client):
    client.get_source("github-acme-billing")
    assert server.last.path == "/v1alpha/sources/github-acme-billing"


# --- answers that are not success --------------------------------------------------------


def test_it_does_not_follow_redirects_that_would_carry_the_key(server, client):
    elsewhere = ScriptedServer()
    try:
        server.queue(Reply(302, b"", headers={"Location": f"{elsewhere.url}/sessions"}))
        with pytest.raises(errors.JulesError) as failure:
            client.list_sessions()
        assert failure.value.status == 302 and not failure.value.retryable
        assert elsewhere.seen == []
    finally:
        elsewhere.stop()


def test_it_raises_the_class_of_the_answer(server, client):
    server.queue(
        Reply(400, '{"error": {"code": 400, "status": "FAILED_PRECONDITION", "message": "no"}}'),
        Reply(403, '{"error": {"code": 403, "status": "PERMISSION_DENIED"}}'),
        Reply(401, spec_examples.MISSING_KEY),
    )
    with pytest.raises(errors.FailedPreconditionError):
        client.approve_plan("1")
    with pytest.raises(errors.PermissionDeniedError):
        client.get_session("1")
    with pytest.raises(errors.AuthError) as auth:
        client.list_sources()
    assert auth.value.reason == "CREDENTIALS_MISSING"


def test_it_closes_its_own_pool(server, make_client):
    with make_client() as client:
        client.list_sessions()
    assert isinstance(client, JulesClient)
