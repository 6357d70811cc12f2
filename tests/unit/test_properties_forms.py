"""Property-based tests of what people type: the launch form, the message box, the filters,
and of the sync mapping fed hostile resources.

Whatever arrives, a form either validates or answers with form errors, a view answers
with a page, a redirect or a 4xx, and the mapping produces rows the database stores;
nothing raises. The examples are derandomized and use no example database, so a CI run
is the same every time; run this file with DATABASE_URL set to try PostgreSQL's stricter
text and JSON types as well.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jules import resources as jr
from jules.client import loads_json
from sessions_app import sync
from sessions_app.models import Activity, JulesConnection, OutboxAction, Session, SessionState
from sessions_app.sessions.forms import LaunchForm, SessionFilterForm
from sessions_app.sync import mapping
from tests.factories import ConnectionFactory, SessionFactory, SourceFactory
from tests.unit.test_properties_client import ACTIVITY_KEYS, SESSION_KEYS, hostile

pytestmark = pytest.mark.django_db

PROFILE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=60,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# Text people (and scripts) type: any code point, NULs, lone surrogates excluded (a
# browser cannot send them), very long lines now and then.
TEXT = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
    st.sampled_from(["", " ", "\x00", "a\x00b", "<script>alert(1)</script>", "0", "-1", "1e400"]),
    st.integers().map(str),
    st.just("x" * 25_000),
)


@pytest.fixture
def conn(cast):
    return ConnectionFactory(team=cast.team, label="Main account")


@pytest.fixture
def billing(conn):
    return SourceFactory(
        connection=conn, repo="billing", branches=["main", "release-2026.03"], default_branch="main"
    )


# --- the launch form ---------------------------------------------------------------------


def launch_data(conn: JulesConnection, billing: Any) -> st.SearchStrategy[dict[str, Any]]:
    ids = st.sampled_from([str(conn.pk), str(billing.pk), "", "0", str(2**63), "9" * 40])
    return st.fixed_dictionaries(
        {},
        optional={
            "connection": st.one_of(ids, TEXT),
            "source": st.one_of(ids, TEXT),
            "branch": st.one_of(st.sampled_from(["main", "release-2026.03", "nope"]), TEXT),
            "prompt": TEXT,
            "title": TEXT,
            "require_plan_approval": st.one_of(st.sampled_from(["on", "off", ""]), TEXT),
            "auto_create_pr": st.one_of(st.sampled_from(["on", ""]), TEXT),
        },
    )


@PROFILE
@given(data=st.data())
def test_the_launch_form_validates_or_explains(conn, billing, data):
    values = data.draw(launch_data(conn, billing))
    form = LaunchForm(values, connections=JulesConnection.objects.filter(pk=conn.pk))
    if form.is_valid():
        cleaned = form.cleaned_data
        assert cleaned["connection"] == conn and cleaned["prompt"].strip()
        assert "\x00" not in cleaned["prompt"] + cleaned["title"] + cleaned["branch"]
        assert cleaned["source"] in (None, billing)
        if cleaned["source"] is not None:
            assert cleaned["branch"] in billing.branches
    else:
        assert form.errors
        for errors in form.errors.values():
            assert all(isinstance(e, str) and e for e in errors)


@PROFILE
@given(data=st.data())
def test_the_launch_page_never_fails_on_what_is_posted(client, cast, conn, billing, data):
    values = data.draw(launch_data(conn, billing))
    client.force_login(cast.member)
    before = OutboxAction.objects.count()
    response = client.post(reverse("sessions_app:session-launch"), values)
    assert response.status_code in (200, 302), response.status_code
    launched = OutboxAction.objects.count() - before
    assert launched == (response.status_code == 302)


# --- the message box -----------------------------------------------------------------------


@PROFILE
@given(prompt=TEXT, htmx=st.booleans())
def test_a_message_is_queued_or_refused_with_words(client, cast, conn, prompt, htmx):
    session = SessionFactory(connection=conn, state=SessionState.AWAITING_USER_FEEDBACK)
    client.force_login(cast.member)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    url = reverse("sessions_app:session-message", args=[session.pk])
    response = client.post(url, {"prompt": prompt}, **headers)
    queued = OutboxAction.objects.filter(session=session, kind="message").first()
    if prompt.strip() and "\x00" not in prompt:
        assert response.status_code in ((200,) if htmx else (302,))
        assert queued is not None
    else:
        assert response.status_code in ((422,) if htmx else (302,))
        assert queued is None


# --- the list's filters ------------------------------------------------------------------

FILTER_KEYS = [
    "q",
    "state",
    "attention",
    "repo",
    "connection",
    "launched_by",
    "archived",
    "created_after",
    "created_before",
    "page",
    "sort",
]


@PROFILE
@given(
    pairs=st.lists(
        st.tuples(st.one_of(st.sampled_from(FILTER_KEYS), st.text(max_size=8)), TEXT), max_size=8
    )
)
def test_the_list_filters_ignore_what_they_cannot_read(pairs):
    query = QueryDict(mutable=True)
    for key, value in pairs:
        query.appendlist(key, value)
    form = SessionFilterForm(query)
    cleaned = form.cleaned_or_empty()
    assert set(cleaned) <= set(form.fields)
    assert all(isinstance(p, str) for p in form.problems)
    for name in form.errors:
        assert name not in cleaned


@PROFILE
@given(
    pairs=st.lists(
        st.tuples(st.one_of(st.sampled_from(FILTER_KEYS), st.text(max_size=8)), TEXT), max_size=6
    )
)
def test_the_list_page_answers_any_query(client, cast, conn, pairs):
    client.force_login(cast.member)
    query = QueryDict(mutable=True)
    for key, value in pairs:
        query.appendlist(key, value[:2000])
    response = client.get(reverse("sessions_app:session-list") + "?" + query.urlencode())
    assert response.status_code == 200


# --- the sync mapping, fed hostile resources ----------------------------------------------


def _as_read(data: dict[str, Any]) -> Any:
    """The object as the client reads it from the wire (non-finite numbers stay text)."""
    return loads_json(json.dumps(data, default=str).encode())


@PROFILE
@given(data=hostile(SESSION_KEYS))
def test_a_hostile_session_maps_to_a_row(conn, data):
    remote = jr.Session.from_json(_as_read({**data, "id": "4242"}))
    now = timezone.now()
    values = mapping.session_values(remote, now)
    assert values["state"] in SessionState.values
    assert values["next_poll_at"] is None or values["next_poll_at"] >= now
    session = sync.upsert_remote_session(conn, remote)
    assert Session.objects.filter(pk=session.pk, remote_id="4242").exists()
    for row in mapping.output_rows(session, remote):
        assert row.kind in ("pull_request", "change_set", "unknown") or row.kind


@PROFILE
@given(data=hostile(ACTIVITY_KEYS))
def test_a_hostile_activity_maps_to_a_row(conn, data):
    session = Session.objects.filter(connection=conn).first() or SessionFactory(connection=conn)
    remote = jr.Activity.from_json(_as_read({**data, "id": "act-1"}))
    row = mapping.activity_row(session.pk, remote)
    assert row.remote_id == "act-1" and isinstance(row.message, str)
    assert row.create_time is None or row.create_time.tzinfo is not None
    if row.create_time is not None:
        assert dt.datetime(1, 1, 1, tzinfo=dt.UTC) <= row.create_time
    Activity.objects.filter(session=session, remote_id="act-1").delete()
    row.save()
