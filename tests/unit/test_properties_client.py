"""Property-based tests of the Jules client's parsers: random and hostile JSON.

Whatever Jules (or something pretending to be it) answers, the client either returns its
typed resources or raises one of its documented errors (`JulesError` and subclasses);
never a `KeyError`, `TypeError`, `OverflowError` or `RecursionError` from deep inside.

The examples are derandomized and use no example database, so a run on CI is the same
every time; the counts are modest so that the whole file takes a few seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jules import resources as jr
from jules.client import JulesClient
from jules.errors import (
    JulesError,
    MalformedResponseError,
    error_from_response,
    parse_retry_after,
)

PROFILE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- strategies ---------------------------------------------------------------------------

HUGE_INTS = st.sampled_from([2**53 + 1, 2**63, -(2**63) - 1, 10**30, -(10**400)])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE_INTS,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)
BAD_TIMES = st.one_of(
    st.sampled_from(
        [
            "",
            "yesterday",
            "2025-13-40T25:61:61Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59.999999999-14:00",
            "2025-10-03T05:43:42.8016541234567890123Z",
            "2025-10-03T05:43:42z",
            "2025-10-03",
            "1e400",
            "\x00",
        ]
    ),
    st.text(max_size=40),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)
# Values of the right names but any type: what a drifting schema sends.
FIELD = st.one_of(JSON, BAD_TIMES)


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


# Deep, but within what `json.dumps` can write here; deeper bodies are written as text.
DEEP = st.integers(min_value=50, max_value=400).map(_deep)
DEEP_TEXT = st.integers(min_value=500, max_value=100_000).map(
    lambda n: ('{"sessions":' + "[" * n + "]" * n + "}").encode()
)

SESSION_KEYS = [
    "name",
    "id",
    "prompt",
    "title",
    "state",
    "sourceContext",
    "requirePlanApproval",
    "automationMode",
    "createTime",
    "updateTime",
    "url",
    "archived",
    "outputs",
]
ACTIVITY_KEYS = [
    "name",
    "id",
    "description",
    "createTime",
    "originator",
    "agentMessaged",
    "userMessaged",
    "planGenerated",
    "planApproved",
    "progressUpdated",
    "sessionCompleted",
    "sessionFailed",
    "artifacts",
]
SOURCE_KEYS = ["name", "id", "githubRepo"]


def hostile(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the resource's own field names (nested too) holding anything."""
    nested = st.fixed_dictionaries(
        {},
        optional={
            "source": FIELD,
            "githubRepoContext": st.one_of(
                FIELD, st.fixed_dictionaries({}, optional={"startingBranch": FIELD})
            ),
            "pullRequest": st.one_of(
                FIELD, st.dictionaries(st.sampled_from(["url", "title"]), FIELD)
            ),
            "changeSet": st.one_of(
                FIELD, st.dictionaries(st.sampled_from(["source", "gitPatch"]), FIELD)
            ),
            "plan": st.one_of(
                FIELD,
                st.fixed_dictionaries(
                    {},
                    optional={
                        "id": FIELD,
                        "steps": st.lists(
                            st.one_of(
                                FIELD,
                                st.dictionaries(st.sampled_from(["id", "title", "index"]), FIELD),
                            ),
                            max_size=3,
                        ),
                    },
                ),
            ),
            "bashOutput": st.one_of(
                FIELD, st.dictionaries(st.sampled_from(["command", "output", "exitCode"]), FIELD)
            ),
            "media": st.one_of(
                FIELD, st.dictionaries(st.sampled_from(["data", "mimeType"]), FIELD)
            ),
            "owner": FIELD,
            "repo": FIELD,
            "branches": FIELD,
        },
    )
    value = st.one_of(FIELD, nested, st.lists(st.one_of(FIELD, nested), max_size=3), DEEP)
    return st.dictionaries(
        st.one_of(st.sampled_from(keys), st.text(max_size=10)), value, max_size=len(keys)
    )


ANY_BODY = st.one_of(JSON, hostile(SESSION_KEYS), hostile(ACTIVITY_KEYS), DEEP)

# --- resources -------------------------------------------------------------------------


def _parses_or_malformed(parse: Any, data: Any) -> Any:
    try:
        return parse(data)
    except MalformedResponseError:
        assert not isinstance(data, dict), "an object must parse, whatever it holds"
        return None


@PROFILE
@given(st.one_of(hostile(SESSION_KEYS), ANY_BODY))
def test_a_session_parses_from_anything(data):
    session = _parses_or_malformed(jr.Session.from_json, data)
    if session is not None:
        assert isinstance(session.id, str) and isinstance(session.prompt, str)
        assert session.state in jr.STATES
        assert isinstance(session.archived, bool)
        for moment in (session.create_time, session.update_time):
            assert moment is None or moment.utcoffset() == dt.timedelta(0)
        json.dumps(session.raw, default=str)


@PROFILE
@given(st.one_of(hostile(ACTIVITY_KEYS), ANY_BODY))
def test_an_activity_parses_from_anything(data):
    activity = _parses_or_malformed(jr.Activity.from_json, data)
    if activity is not None:
        assert isinstance(activity.kind, str) and isinstance(activity.user_message, str)
        assert activity.create_time is None or activity.create_time.tzinfo is not None
        for artifact in activity.artifacts:
            assert isinstance(artifact.kind, str)
            if artifact.bash_output is not None:
                assert isinstance(artifact.bash_output.exit_code, int)


@PROFILE
@given(st.one_of(hostile(SOURCE_KEYS), ANY_BODY))
def test_a_source_parses_from_anything(data):
    source = _parses_or_malformed(jr.Source.from_json, data)
    if source is not None:
        assert isinstance(source.name, str) and isinstance(source.is_private, bool)


@PROFILE
@given(st.one_of(BAD_TIMES, JSON))
def test_a_timestamp_is_an_aware_utc_time_or_none(value):
    parsed = jr.parse_time(value)
    assert parsed is None or parsed.utcoffset() == dt.timedelta(0)


# --- errors ------------------------------------------------------------------------------


RETRY_AFTER = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.integers().map(str),
    st.floats().map(str),
    st.sampled_from(
        [
            "1e400",
            "-5",
            "nan",
            "inf",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Mon, 01 Jan 0001 00:00:00 -0000",
        ]
    ),
)


@PROFILE
@given(
    status=st.one_of(st.integers(min_value=100, max_value=599), st.integers()),
    body=st.one_of(
        st.text(max_size=300),
        JSON.map(json.dumps),
        hostile(["error"]).map(lambda d: json.dumps({"error": d}, default=str)),
    ),
    retry_after=RETRY_AFTER,
)
def test_any_error_answer_maps_to_a_jules_error(status, body, retry_after):
    headers = {} if retry_after is None else {"retry-after": retry_after}
    error = error_from_response(status, body, headers)
    assert isinstance(error, JulesError)
    assert isinstance(str(error), str) and len(error.message) <= 500
    assert error.retry_after is None or (
        math.isfinite(error.retry_after) and error.retry_after >= 0
    )


@PROFILE
@given(RETRY_AFTER)
def test_retry_after_is_a_finite_wait_or_none(value):
    wait = parse_retry_after(value)
    assert wait is None or (math.isfinite(wait) and wait >= 0)


# --- the client's pages: whole HTTP answers ---------------------------------------------

KEY = "property-test-key"


class _Canned(requests.Session):
    """A stand-in HTTP session answering every request with one canned response."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        super().__init__()
        self.canned = (status, body, headers)

    def request(self, method, url, *args, **kwargs):
        response = requests.Response()
        response.status_code, response._content, headers = self.canned
        response.headers.update(headers)
        response.url = url
        return response


BODIES = st.one_of(
    ANY_BODY.map(lambda d: json.dumps(d, default=str).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "sessions": st.one_of(FIELD, st.lists(hostile(SESSION_KEYS), max_size=3)),
            "activities": st.one_of(FIELD, st.lists(hostile(ACTIVITY_KEYS), max_size=3)),
            "sources": st.one_of(FIELD, st.lists(hostile(SOURCE_KEYS), max_size=3)),
            "nextPageToken": FIELD,
        },
    ).map(lambda d: json.dumps(d, default=str).encode()),
    st.binary(max_size=200),
    DEEP_TEXT,
    ANY_BODY.map(
        lambda d: json.dumps(d, default=str).encode()[
            : max(1, len(json.dumps(d, default=str)) // 2)
        ]
    ),
)
CALLS = st.sampled_from(
    [
        lambda c: c.list_sessions(page_size=10),
        lambda c: c.list_activities("123", create_time_after="2025-01-01T00:00:00Z"),
        lambda c: c.list_sources(),
        lambda c: c.get_session("123"),
        lambda c: c.get_activity("123", "abc"),
        lambda c: c.get_source("github/acme/billing"),
        lambda c: c.create_session(prompt="hi"),
        lambda c: c.archive_session("123"),
        lambda c: c.approve_plan("123"),
        lambda c: c.send_message("123", "hi"),
        lambda c: c.delete_session("123"),
    ]
)


@PROFILE
@given(
    status=st.sampled_from([200, 200, 200, 204, 400, 401, 403, 404, 429, 500, 502, 503, 504, 418]),
    body=BODIES,
    retry_after=RETRY_AFTER,
    call=CALLS,
)
def test_the_client_returns_resources_or_raises_its_own_errors(status, body, retry_after, call):
    headers = {"Content-Type": "application/json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after.encode("ascii", "replace").decode()
    http = _Canned(status, body, headers)
    client = JulesClient(
        KEY, "http://jules.invalid/v1alpha", http=http, max_retries=0, sleep=lambda s: None
    )
    try:
        result = call(client)
    except JulesError as error:
        assert KEY not in str(error)
        return
    items = result.items if isinstance(result, jr.Page) else [result]
    for item in items:
        if item is not None:
            # What the sync stores as `raw` must be JSON a database's JSON column takes.
            json.dumps(item.raw, allow_nan=False)


# --- what the properties found, pinned as plain examples ---------------------------------


def test_a_state_that_is_not_a_string_is_unspecified():
    assert (
        jr.Session.from_json({"id": "1", "state": {"name": "QUEUED"}}).state == jr.STATE_UNSPECIFIED
    )
    assert jr.normalize_state(["QUEUED"]) == jr.STATE_UNSPECIFIED


def test_a_time_beyond_what_utc_holds_is_unreadable_not_a_crash():
    assert jr.parse_time("0001-01-01T00:00:00+01:00") is None
    assert jr.parse_time("9999-12-31T23:59:59-01:00") is None
    assert jr.parse_time("0001-01-01T00:00:00-01:00") == dt.datetime(1, 1, 1, 1, tzinfo=dt.UTC)


def _answering(body: bytes, status: int = 200) -> JulesClient:
    http = _Canned(status, body, {"Content-Type": "application/json"})
    return JulesClient(KEY, "http://jules.invalid/v1alpha", http=http, max_retries=0)


def test_a_body_nested_too_deep_is_malformed():
    deep = b'{"sessions":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    try:
        _answering(deep).list_sessions()
    except MalformedResponseError:
        pass
    else:
        raise AssertionError("a body nested 100,000 deep should be malformed")
    error = _answering(b'{"error":' + b"[" * 100_000 + b"]" * 100_000 + b"}", 500)
    try:
        error.get_session("1")
    except JulesError as exc:
        assert exc.status == 500
    else:
        raise AssertionError("a 500 should raise")


def test_what_a_database_cannot_store_is_kept_as_text():
    body = b'{"id": "7", "title": "a\\u0000b", "x": [1e400, NaN, -Infinity, 2.5], "y": "\\\\u0000"}'
    session = _answering(body).get_session("7")
    assert session.title == "a\ufffdb"
    assert session.raw["x"] == ["1e400", "NaN", "-Infinity", 2.5]
    assert session.raw["y"] == "\\u0000"
    json.dumps(session.raw, allow_nan=False)
