"""The sessions list: filters, counts, pagination, live rows, bulk actions, query count."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.cache import caches
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince

from sessions_app.models import OutboxAction, Session, SessionTransition
from sessions_app.sessions import filters
from sessions_app.sessions.rows import ago
from tests.factories import (
    ActivityFactory,
    ConnectionFactory,
    MembershipFactory,
    SessionFactory,
    SourceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

URL = "/sessions/"
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "session-results"}
# Every request of the list page, whatever its filters, page or size: the signed-in user,
# the Django session, memberships and connections (with their newest session write); with
# a cold cache also the counts per state, the page's rows, and the repositories and people
# for the filter menus.
LIST_QUERIES_WARM = 4
# With a cold cache the header also counts the plans waiting for the user (cached then).
LIST_QUERIES = LIST_QUERIES_WARM + 5


def _titles(html: str) -> list[str]:
    # The link's `title` attribute repeats the text, which the cell may truncate.
    return re.findall(r'<a href="/sessions/\d+/" id="session-link-\d+"[^>]*>([^<]+)</a>', html)


def _days_ago(days: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


@pytest.fixture
def conn(cast):
    return ConnectionFactory(team=cast.team, label="Main account")


@pytest.fixture
def world(cast, conn):
    """Sessions of every sort in the cast's team, and one in another team."""
    second = ConnectionFactory(team=cast.team, label="Second account")
    return {
        "done": SessionFactory(
            connection=conn,
            title="Finished rounding",
            state="COMPLETED",
            create_time=_days_ago(10),
            pr_url="https://github.com/acme/billing/pull/412",
        ),
        "live": SessionFactory(
            connection=conn,
            title="Live refactor",
            state="IN_PROGRESS",
            repo="acme/web",
            starting_branch="develop",
            create_time=_days_ago(3),
            launched_by=cast.member,
        ),
        "waiting": SessionFactory(
            connection=conn,
            title="Needs a yes",
            state="AWAITING_PLAN_APPROVAL",
            create_time=_days_ago(2),
            launched_by=cast.member,
        ),
        "question": SessionFactory(
            connection=second,
            title="",
            prompt="Explain the cache layer\nin detail please",
            state="AWAITING_USER_FEEDBACK",
            create_time=_days_ago(1),
        ),
        "failed": SessionFactory(
            connection=conn,
            title="Broken build",
            state="FAILED",
            create_time=_days_ago(5),
            launched_by=cast.admin,
        ),
        "archived": SessionFactory(
            connection=conn, title="Old archived", state="COMPLETED", archived=True
        ),
        "foreign": SessionFactory(
            connection=ConnectionFactory(team=cast.other_team), title="Globex secret"
        ),
        "second": second,
    }


# --- page and fragment ----------------------------------------------------------------


def test_it_lists_the_teams_sessions_newest_first(client, cast, world):
    client.force_login(cast.viewer)
    html = client.get(URL).content.decode()
    assert _titles(html) == [
        "Explain the cache layer",
        "Needs a yes",
        "Live refactor",
        "Broken build",
        "Finished rounding",
    ]
    assert "Globex secret" not in html and "Old archived" not in html


def test_it_shows_what_a_row_needs(client, cast, world):
    client.force_login(cast.viewer)
    html = client.get(URL).content.decode()
    live = html.split('id="session-{}"'.format(world["live"].pk))[1].split("</tr>")[0]
    assert "In progress" in live and "acme/web" in live and "develop" in live
    assert "member" in live and "3\xa0days ago" in live
    done = html.split('id="session-{}"'.format(world["done"].pk))[1].split("</tr>")[0]
    assert "outside the portal" in done
    assert 'href="https://github.com/acme/billing/pull/412"' in done


def test_it_answers_htmx_with_the_results_and_fresh_counts(client, cast, world):
    client.force_login(cast.viewer)
    response = client.get(URL, {"q": "refactor"}, **HTMX)
    html = response.content.decode()
    assert "<html" not in html and 'id="filters"' not in html
    assert html.lstrip().startswith('<section id="session-results"')
    assert _titles(html) == ["Live refactor"]
    assert 'id="state-count-IN_PROGRESS" hx-swap-oob="true">1<' in html
    assert 'id="state-count-COMPLETED" hx-swap-oob="true">0<' in html
    assert "HX-Request" in response["Vary"]


def test_it_serves_the_full_page_to_other_htmx_targets_and_history_restores(client, cast, world):
    client.force_login(cast.viewer)
    html = client.get(URL, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in html.content.decode()


def test_it_keeps_the_filter_form_filled_from_the_url(client, cast, world):
    client.force_login(cast.viewer)
    html = client.get(
        URL,
        {
            "q": "cache",
            "state": ["FAILED", "QUEUED"],
            "attention": "1",
            "repo": "acme/web",
            "connection": world["second"].pk,
            "launched_by": cast.member.pk,
            "archived": "include",
            "created_after": "2026-01-02",
            "created_before": "2026-12-31",
        },
    ).content.decode()
    assert 'name="q" id="id_q" form="filters" value="cache"' in html
    assert 'value="FAILED" checked' in html and 'value="QUEUED" checked' in html
    assert 'value="COMPLETED" checked' not in html
    assert 'id="id_attention" checked' in html
    assert '<option value="acme/web" selected>' in html
    assert f'<option value="{world["second"].pk}" selected>' in html
    assert f'<option value="{cast.member.pk}" selected>member</option>' in html
    assert '<option value="include" selected>' in html
    assert 'value="2026-01-02"' in html and 'value="2026-12-31"' in html


# --- filters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"state": ["FAILED"]}, ["Broken build"]),
        ({"state": ["FAILED", "COMPLETED"]}, ["Broken build", "Finished rounding"]),
        ({"attention": "1"}, ["Explain the cache layer", "Needs a yes"]),
        (
            {"attention": "1", "state": ["AWAITING_USER_FEEDBACK", "FAILED"]},
            ["Explain the cache layer"],
        ),
        ({"repo": "acme/web"}, ["Live refactor"]),
        ({"launched_by": "none"}, ["Explain the cache layer", "Finished rounding"]),
        ({"archived": "only"}, ["Old archived"]),
        ({"q": "CACHE LAYER"}, ["Explain the cache layer"]),
        ({"q": "yes"}, ["Needs a yes"]),
        ({"q": "rounding", "state": ["FAILED"]}, []),
    ],
)
def test_it_filters(client, cast, world, params, expected):
    client.force_login(cast.viewer)
    assert _titles(client.get(URL, params).content.decode()) == expected


def test_it_filters_by_connection_and_launcher(client, cast, world):
    client.force_login(cast.viewer)
    assert _titles(client.get(URL, {"connection": world["second"].pk}).content.decode()) == [
        "Explain the cache layer"
    ]
    html = client.get(URL, {"launched_by": cast.member.pk}).content.decode()
    assert _titles(html) == ["Needs a yes", "Live refactor"]


def test_it_shows_archived_sessions_only_when_asked(client, cast, world):
    client.force_login(cast.viewer)
    assert "Old archived" not in client.get(URL).content.decode()
    assert "Old archived" in client.get(URL, {"archived": "include"}).content.decode()
    assert _titles(client.get(URL, {"archived": "only"}).content.decode()) == ["Old archived"]


def test_it_filters_by_creation_dates_inclusively(client, cast, world):
    client.force_login(cast.viewer)
    after = (_days_ago(3) - dt.timedelta(hours=1)).date().isoformat()
    before = _days_ago(2).date().isoformat()
    html = client.get(URL, {"created_after": after, "created_before": before}).content.decode()
    assert _titles(html) == ["Needs a yes", "Live refactor"]


def test_it_combines_every_filter(client, cast, world):
    client.force_login(cast.viewer)
    params = {
        "q": "refactor",
        "state": ["IN_PROGRESS", "COMPLETED"],
        "repo": "acme/web",
        "connection": world["live"].connection_id,
        "launched_by": cast.member.pk,
        "archived": "include",
        "created_after": _days_ago(4).date().isoformat(),
        "created_before": timezone.now().date().isoformat(),
    }
    assert _titles(client.get(URL, params).content.decode()) == ["Live refactor"]
    params["launched_by"] = cast.admin.pk
    assert _titles(client.get(URL, params).content.decode()) == []


def test_it_never_shows_another_teams_sessions_whatever_the_filters(client, cast, world):
    client.force_login(cast.viewer)
    foreign = world["foreign"]
    html = client.get(URL, {"connection": foreign.connection_id, "archived": "include"})
    assert "Globex secret" not in html.content.decode()


def test_it_counts_each_state_under_the_other_filters(client, cast, world):
    client.force_login(cast.viewer)
    html = client.get(URL, {"state": ["FAILED"], "connection": world["done"].connection_id})
    counts = dict(re.findall(r'id="state-count-(\w+)">(\d+)<', html.content.decode()))
    # The state filter narrows the rows, not the counts beside it; the connection does.
    assert counts["COMPLETED"] == "1" and counts["FAILED"] == "1" and counts["IN_PROGRESS"] == "1"
    assert counts["AWAITING_USER_FEEDBACK"] == "0" and counts["QUEUED"] == "0"


def test_it_ignores_bad_filter_values_with_a_message(client, cast, world):
    client.force_login(cast.viewer)
    response = client.get(
        URL,
        {
            "state": ["BOGUS", "FAILED"],
            "created_after": "not-a-date",
            "created_before": "2026-13-45",
            "connection": "abc",
            "launched_by": "x'; DROP",
            "archived": "sometimes",
            "page": "x",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Ignored unknown state BOGUS." in html
    assert "Ignored the created from filter" in html
    assert "Ignored the connection filter" in html
    assert "Ignored the launched by filter" in html
    # The valid part of the state filter still applies.
    assert _titles(html) == ["Broken build"]


def test_it_explains_an_impossible_date_range(client, cast, world):
    client.force_login(cast.viewer)
    html = client.get(URL, {"created_after": "2026-05-02", "created_before": "2026-05-01"})
    assert "The end date is before the start date." in html.content.decode()


# --- pagination -----------------------------------------------------------------------


def test_it_pages_by_fifty_and_keeps_the_filters_in_the_links(client, cast, conn):
    start = timezone.now()
    for n in range(120):
        SessionFactory(
            connection=conn,
            title=f"Task {n:03d}",
            state="FAILED" if n % 2 else "COMPLETED",
            create_time=start - dt.timedelta(minutes=n),
        )
    client.force_login(cast.viewer)
    first = client.get(URL, {"q": "task", "state": "COMPLETED"}).content.decode()
    assert len(_titles(first)) == 50 and _titles(first)[0] == "Task 000"
    assert "60 sessions, page 1 of 2" in first
    assert 'href="?q=task&amp;state=COMPLETED&amp;page=2"' in first
    second = client.get(URL, {"q": "task", "state": "COMPLETED", "page": "2"}).content.decode()
    assert _titles(second) == [f"Task {n:03d}" for n in range(100, 120, 2)]
    assert 'href="?q=task&amp;state=COMPLETED&amp;page=1"' in second
    beyond = client.get(URL, {"q": "task", "state": "COMPLETED", "page": "99"}).content.decode()
    assert _titles(beyond) == _titles(second)
    # A form sent without script carries its empty fields; the page links leave them out.
    plain = client.get(URL, {"q": "task", "state": "COMPLETED", "repo": "", "archived": ""})
    assert 'href="?q=task&amp;state=COMPLETED&amp;page=2"' in plain.content.decode()


# --- live rows ------------------------------------------------------------------------


LIVE_ROWS = "/sessions/live-rows"


def _row_tag(html: str, session: Session) -> str:
    return html.split(f'id="session-{session.pk}"')[1].split(">")[0]


def _live(html: str) -> dict[int, str]:
    """What portal.js sends: each live row's id and the digest it shows."""
    return {
        int(pk): v for pk, v in re.findall(r'<tr id="session-(\d+)"[^>]*data-live="(\w+)"', html)
    }


def _rows_param(live: dict[int, str]) -> dict[str, str]:
    return {"rows": ",".join(f"{pk}:{v}" for pk, v in live.items())}


def _answered(html: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'<tr id="session-(\d+)"', html)}


def test_it_marks_only_rows_that_can_still_change_and_polls_once_for_all(client, cast, world):
    client.force_login(cast.viewer)
    html = client.get(URL).content.decode()
    assert set(_live(html)) == {world[n].pk for n in ("live", "waiting", "question")}
    for name in ("done", "failed"):
        assert "data-live" not in _row_tag(html, world[name])
    # No row polls itself: one poller for the page.
    assert "hx-trigger" not in "".join(re.findall(r"<tr [^>]*>", html))
    assert html.count('hx-trigger="every 5s"') == 1
    assert (
        f'id="session-live-rows" class="poller" hidden data-live-rows\n      hx-get="{LIVE_ROWS}"'
        in html
    )


def test_it_has_no_poller_when_no_row_can_change(client, cast, conn):
    SessionFactory(connection=conn, state="COMPLETED")
    client.force_login(cast.viewer)
    html = client.get(URL).content.decode()
    assert "session-live-rows" not in html and "every 5s" not in html


def test_it_answers_204_while_no_live_row_has_changed(client, cast, world):
    client.force_login(cast.member)
    live = _live(client.get(URL).content.decode())
    assert client.get(LIVE_ROWS, _rows_param(live), **HTMX).status_code == 204


def test_it_answers_only_the_changed_rows_out_of_band(client, cast, world):
    client.force_login(cast.member)
    live = _live(client.get(URL).content.decode())
    Session.objects.filter(pk=world["live"].pk).update(state="AWAITING_USER_FEEDBACK")
    response = client.get(LIVE_ROWS, _rows_param(live), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and _answered(html) == {world["live"].pk}
    assert "Awaiting feedback" in html and 'hx-swap-oob="true"' in _row_tag(html, world["live"])
    # The checkbox is preserved across the swap, so a ticked box stays ticked.
    assert f'id="select-{world["live"].pk}" hx-preserve' in html
    # With the new digest, the row is unchanged again.
    live.update(_live(html))
    assert client.get(LIVE_ROWS, _rows_param(live), **HTMX).status_code == 204


def test_it_drops_a_row_that_stops_being_live_and_stops_with_286(client, cast, world):
    client.force_login(cast.member)
    live = _live(client.get(URL).content.decode())
    Session.objects.filter(pk=world["live"].pk).update(state="COMPLETED")
    response = client.get(LIVE_ROWS, _rows_param(live), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and _answered(html) == {world["live"].pk}
    # Its row no longer names a digest, so the page stops sending it.
    assert "data-live" not in _row_tag(html, world["live"])
    Session.objects.filter(pk__in=live).update(state="COMPLETED")
    last = client.get(LIVE_ROWS, _rows_param(live), **HTMX)
    assert last.status_code == 286
    assert _answered(last.content.decode()) == set(live)
    assert client.get(LIVE_ROWS, {"rows": ""}, **HTMX).status_code == 286


def test_it_answers_only_the_rows_the_person_may_see(client, cast, world):
    other = world["foreign"]
    Session.objects.filter(pk=other.pk).update(state="IN_PROGRESS")
    client.force_login(cast.member)
    live = _live(client.get(URL).content.decode())
    asked = {**live, other.pk: "0" * 16, world["live"].pk: "0" * 16}
    response = client.get(LIVE_ROWS, _rows_param(asked), **HTMX)
    assert response.status_code == 200
    assert _answered(response.content.decode()) == {world["live"].pk}
    client.force_login(cast.outsider)
    assert client.get(LIVE_ROWS, _rows_param(live), **HTMX).status_code == 404


@pytest.mark.parametrize(
    "rows, message",
    [
        ("12", "session:version pairs"),
        ("x:0123456789abcdef", "session:version pairs"),
        ("12:short", "session:version pairs"),
        ("12:0123456789ABCDEF", "session:version pairs"),
        ("12:0123456789abcdef:1", "session:version pairs"),
        ("9" * 30 + ":0123456789abcdef", "session:version pairs"),
        (",".join(f"{n}:0123456789abcdef" for n in range(1, 102)), "At most 100 rows"),
    ],
)
def test_it_refuses_a_malformed_live_rows_poll_with_400(client, cast, world, rows, message):
    client.force_login(cast.member)
    response = client.get(LIVE_ROWS, {"rows": rows}, **HTMX)
    assert response.status_code == 400 and message in response.content.decode()


def test_it_takes_a_hundred_rows_with_the_same_few_queries(
    client, cast, conn, django_assert_max_num_queries
):
    sessions = [SessionFactory(connection=conn, state="IN_PROGRESS") for _ in range(100)]
    client.force_login(cast.member)
    for count in (1, 100):
        asked = {"rows": ",".join(f"{s.pk}:{'0' * 16}" for s in sessions[:count])}
        with django_assert_max_num_queries(5):
            response = client.get(LIVE_ROWS, asked, **HTMX)
        assert response.status_code == 200 and len(_answered(response.content.decode())) == count


def test_it_sends_a_live_rows_poll_opened_directly_to_the_list(client, cast, world):
    client.force_login(cast.viewer)
    response = client.get(LIVE_ROWS, {"rows": f"{world['live'].pk}:{'0' * 16}"})
    assert response.status_code == 302 and response["Location"] == URL


# --- bulk actions ---------------------------------------------------------------------


def test_it_offers_no_bulk_actions_or_checkboxes_to_viewers(client, cast, world):
    client.force_login(cast.viewer)
    html = client.get(URL).content.decode()
    assert 'id="bulk"' not in html and 'name="ids"' not in html
    asked = {"rows": f"{world['live'].pk}:{'0' * 16}"}
    row = client.get(LIVE_ROWS, asked, **HTMX)
    assert row.status_code == 200 and 'name="ids"' not in row.content.decode()


def test_it_offers_a_member_checkboxes_only_on_the_sessions_they_may_archive(client, cast, world):
    client.force_login(cast.member)
    html = client.get(URL).content.decode()
    boxes = set(map(int, re.findall(r'name="ids" value="(\d+)"', html)))
    # A member archives only what they launched, and approves nothing.
    assert boxes == {world["live"].pk, world["waiting"].pk}
    client.force_login(cast.approver)
    html = client.get(URL).content.decode()
    assert len(re.findall(r'name="ids" value="(\d+)"', html)) == 5


def test_it_offers_approving_only_to_approvers(client, cast, world):
    client.force_login(cast.member)
    html = client.get(URL).content.decode()
    assert 'id="bulk"' in html and 'value="approve"' not in html
    client.force_login(cast.approver)
    assert 'value="approve"' in client.get(URL).content.decode()


def test_it_bulk_archives_the_selected_sessions_and_goes_back_to_the_filters(
    client, cast, world, django_capture_on_commit_callbacks
):
    client.force_login(cast.admin)
    ids = [world["done"].pk, world["failed"].pk, world["foreign"].pk]
    response = client.post(
        reverse("sessions_app:session-bulk"),
        {"action": "archive", "ids": ids, "query": "state=FAILED&state=COMPLETED"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/sessions/?state=FAILED&state=COMPLETED"
    archived = set(Session.objects.filter(archived=True).values_list("title", flat=True))
    assert archived == {"Finished rounding", "Broken build", "Old archived"}
    assert OutboxAction.objects.filter(kind="archive").count() == 2
    page = client.get(response["Location"]).content.decode()
    assert "Archived 2 sessions." in page


def test_it_reports_which_sessions_a_bulk_action_refused(client, cast, world):
    for name in ("waiting", "live"):
        ActivityFactory(session=world[name], kind="planGenerated", plan_id=f"{name:x<32}")
    client.force_login(cast.approver)
    response = client.post(
        reverse("sessions_app:session-bulk"),
        {"action": "approve", "ids": [world["waiting"].pk, world["live"].pk]},
        follow=True,
    )
    html = response.content.decode()
    assert "Approved 1 session." in html
    assert "Live refactor: The session is not waiting for plan approval." in html
    assert OutboxAction.objects.filter(kind="approve").count() == 1


def test_it_counts_only_the_approvals_a_bulk_action_made(client, cast, world):
    """A plan approved long ago, its session since completed: nothing to do, and said so."""
    old = world["done"]
    ActivityFactory(session=old, kind="planGenerated", plan_id="o" * 32)
    OutboxAction.objects.create(
        team=cast.team,
        connection=old.connection,
        session=old,
        actor=cast.admin,
        kind="approve",
        payload={"plan_id": "o" * 32},
        status="done",
    )
    ActivityFactory(session=world["waiting"], kind="planGenerated", plan_id="w" * 32)
    client.force_login(cast.approver)
    response = client.post(
        reverse("sessions_app:session-bulk"),
        {"action": "approve", "ids": [old.pk, world["waiting"].pk]},
        follow=True,
    )
    html = response.content.decode()
    assert "Approved 1 session." in html
    assert "Skipped Finished rounding: its plan was already approved by admin." in html
    assert OutboxAction.objects.filter(kind="approve").count() == 2
    response = client.post(
        reverse("sessions_app:session-bulk"), {"action": "approve", "ids": [old.pk]}, follow=True
    )
    html = response.content.decode()
    assert "Approved 1 session" not in html and "Approved no session." in html


def test_it_skips_sessions_already_in_the_state_a_bulk_action_asks_for(client, cast, world):
    client.force_login(cast.admin)
    Session.objects.filter(pk=world["done"].pk).update(archived=True)
    response = client.post(
        reverse("sessions_app:session-bulk"),
        {"action": "archive", "ids": [world["done"].pk, world["failed"].pk]},
        follow=True,
    )
    html = response.content.decode()
    assert "Archived 1 session." in html and "it was already archived." in html
    assert OutboxAction.objects.filter(kind="archive").count() == 1


def test_it_refuses_bulk_actions_to_viewers(client, cast, world):
    client.force_login(cast.viewer)
    client.post(
        reverse("sessions_app:session-bulk"), {"action": "archive", "ids": [world["done"].pk]}
    )
    assert not Session.objects.get(pk=world["done"].pk).archived


def test_it_asks_to_select_something_first(client, cast, world):
    client.force_login(cast.admin)
    response = client.post(reverse("sessions_app:session-bulk"), {"action": "archive"}, follow=True)
    assert "Select at least one session first." in response.content.decode()


# --- empty states and problems --------------------------------------------------------


def test_it_says_what_to_do_without_a_team(client, db):
    user = UserFactory(username="loner")
    client.force_login(user)
    assert "You are not in a team yet." in client.get(URL).content.decode()


def test_it_links_to_the_team_page_without_a_connection(client, cast):
    client.force_login(cast.member)
    html = client.get(URL).content.decode()
    assert "Your team has no Jules connection yet" in html
    assert 'href="/teams/acme/"' in html


def test_it_invites_a_launch_when_there_are_no_sessions(client, cast, conn):
    client.force_login(cast.member)
    html = client.get(URL).content.decode()
    assert "No sessions yet." in html and 'href="/sessions/new"' in html
    # A viewer cannot launch, so is not invited to.
    client.force_login(cast.viewer)
    html = client.get(URL).content.decode()
    assert "No sessions yet." in html and 'href="/sessions/new"' not in html


def test_it_offers_to_clear_filters_that_match_nothing(client, cast, world):
    client.force_login(cast.member)
    html = client.get(URL, {"q": "nothing matches this"}).content.decode()
    assert "No sessions match these filters." in html


def _break_both(conn, world):
    conn.sync_status = "broken"
    conn.last_error = "Jules did not accept the API key."
    conn.save()
    world["second"].sync_status = "error"
    world["second"].last_error = "Jules could not be reached: connection refused."
    world["second"].save()


def test_it_warns_about_broken_connections_in_one_notice_and_keeps_the_list(
    client, cast, world, conn
):
    _break_both(conn, world)
    client.force_login(cast.viewer)
    html = client.get(URL).content.decode()
    # One compact notice naming both, not a banner each with its own advice.
    assert html.count('class="alert') == 1 and html.count('id="sync-notice"') == 1
    notice = html.split('id="sync-notice"')[1].split("</div>")[0]
    assert "2 connections are not syncing" in notice
    assert "Main account (Acme)" in notice and "Jules did not accept the API key." in notice
    assert "Second account (Acme)" in notice and "connection refused" in notice
    assert "Key refused" in notice and "Unreachable" in notice
    # A viewer cannot fix it and gets no link to a page of admin tools.
    assert "/teams/acme/" not in notice and "from a team admin" in notice
    assert "Finished rounding" in html


def test_it_links_admins_to_the_team_page_from_the_notice(client, cast, world, conn):
    _break_both(conn, world)
    client.force_login(cast.admin)
    notice = client.get(URL).content.decode().split('id="sync-notice"')[1].split("</div>")[0]
    assert 'href="/teams/acme/"' in notice


def test_it_escapes_titles_and_prompts(client, cast, conn):
    SessionFactory(connection=conn, title="<script>alert(1)</script>")
    client.force_login(cast.viewer)
    html = client.get(URL).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- cost -----------------------------------------------------------------------------


def _count(client, params=None):
    with CaptureQueriesContext(db_connection) as queries:
        response = client.get(URL, params or {})
    assert response.status_code == 200
    return len(queries)


@pytest.fixture
def many(cast, conn):
    """260 sessions over two connections, three launchers and three states, some sharing
    a creation time (the id breaks the tie) and some without one."""
    other = UserFactory(username="someone")
    MembershipFactory(team=cast.team, user=other, role="member")
    second = ConnectionFactory(team=cast.team, label="Second account")
    start = timezone.now()
    for n in range(260):
        SessionFactory(
            connection=second if n % 40 == 0 else conn,
            title=f"Task {n:03d}" + (" tidy" if n % 5 == 0 else ""),
            launched_by=[cast.member, other, None][n % 3],
            state=["IN_PROGRESS", "COMPLETED", "AWAITING_PLAN_APPROVAL"][n % 3],
            pr_url="https://github.com/acme/billing/pull/1" if n % 2 else "",
            create_time=None if n % 97 == 0 else start - dt.timedelta(minutes=n // 3),
        )
    return {"other": other, "second": second}


# Pages and filters the query count must not depend on: first, middle and last pages
# (the last ones are read from the end of the list), with and without filters.
COST_CASES = [
    {},
    {"page": "3"},
    {"page": "6"},
    {"state": ["IN_PROGRESS", "COMPLETED"], "archived": "include"},
    {"state": ["IN_PROGRESS", "COMPLETED"], "archived": "include", "page": "2"},
    {"state": ["IN_PROGRESS", "COMPLETED"], "archived": "include", "page": "4"},
    {"q": "tidy", "page": "2"},
    {"attention": "1", "launched_by": "none", "page": "9"},
    {"repo": "acme/billing", "created_after": "2020-01-01", "page": "5"},
]


def _clear_caches():
    for alias in ("default", "local"):
        caches[alias].clear()


@pytest.fixture
def same_minute(monkeypatch):
    """Cached rows last a minute at most; a test that counts queries must not see one end."""
    monkeypatch.setattr("sessions_app.sessions.views.sessions._minute", lambda: "fixed")


@pytest.mark.parametrize("params", COST_CASES)
def test_it_runs_a_constant_number_of_queries(client, cast, many, same_minute, params):
    client.force_login(cast.admin)
    _clear_caches()
    # Cold: the counts per state and the menus are read.
    assert _count(client, params) == LIST_QUERIES
    # Warm: they come from the cache, and nothing else changes.
    assert _count(client, params) == LIST_QUERIES_WARM


def _all_pages(client, params):
    titles, number = [], 1
    while True:
        html = client.get(URL, {**params, "page": str(number)}).content.decode()
        titles += _titles(html)
        if f"page={number + 1}" not in html:
            return titles
        number += 1


@pytest.mark.parametrize(
    "params", [{}, {"state": ["COMPLETED", "IN_PROGRESS"]}, {"q": "tidy"}, {"launched_by": "none"}]
)
def test_it_shows_every_session_once_in_order_across_the_pages(client, cast, many, params):
    client.force_login(cast.viewer)
    qs = Session.objects.filter(team=cast.team, archived=False)
    if "state" in params:
        qs = qs.filter(state__in=params["state"])
    if "q" in params:
        qs = qs.filter(title__icontains=params["q"])
    if "launched_by" in params:
        qs = qs.filter(launched_by__isnull=True)
    # The database's own order (where sessions without a creation time go differs).
    expected = [s.display_title for s in qs.order_by("-create_time", "-id")]
    assert len(expected) > 50
    assert _all_pages(client, params) == expected


def _state_counts(html):
    return dict(re.findall(r'id="state-count-(\w+)">(\d+)<', html))


def _discover(conn):
    """What the sync does when it finds a session: the row and its transition."""
    new = SessionFactory(
        connection=conn, state="COMPLETED", title="Just synced", create_time=timezone.now()
    )
    SessionTransition.objects.create(team=conn.team, session=new, kind="discovered")
    return new


def test_it_serves_the_counts_from_the_cache_until_a_count_moves(
    client, cast, many, conn, same_minute
):
    client.force_login(cast.admin)
    _clear_caches()
    assert _state_counts(client.get(URL).content.decode())["COMPLETED"] == "87"
    # The sync discovers a session: the row and its transition, in one transaction.
    new = _discover(conn)
    html = client.get(URL).content.decode()
    assert _state_counts(html)["COMPLETED"] == "88"
    assert "Just synced" in _titles(html)
    # Archiving here renews the team's stamp.
    other = Session.objects.filter(team=cast.team, state="COMPLETED").exclude(pk=new.pk)[0]
    client.post(
        reverse("sessions_app:session-bulk"),
        {"action": "archive", "ids": [new.pk, other.pk]},
    )
    html = client.get(URL).content.decode()
    assert _state_counts(html)["COMPLETED"] == "86"
    assert "Just synced" not in _titles(html)
    html = client.get(URL, {"state": "COMPLETED"}).content.decode()
    assert "86 sessions, page 1 of 2" in html
    # A change behind the portal's back shows once the cache expires.
    Session.objects.filter(team=cast.team, state="IN_PROGRESS").update(state="FAILED")
    assert _state_counts(client.get(URL).content.decode())["IN_PROGRESS"] == "87"
    _clear_caches()
    assert _state_counts(client.get(URL).content.decode())["IN_PROGRESS"] == "0"


def test_it_refreshes_rows_but_keeps_counts_when_a_sync_write_moves_no_count(
    client, cast, many, same_minute
):
    client.force_login(cast.admin)
    _clear_caches()
    client.get(URL)
    # New activities: the sync rewrites the session (and its `synced_at`), no transition.
    newest = Session.objects.filter(team=cast.team).exclude(create_time=None)
    newest = newest.order_by("-create_time", "-id")[0]
    Session.objects.filter(pk=newest.pk).update(
        title="Retitled by the agent", synced_at=timezone.now()
    )
    with CaptureQueriesContext(db_connection) as queries:
        html = client.get(URL).content.decode()
    assert "Retitled by the agent" in _titles(html)
    # The rows were read again, the counts were not.
    assert len(queries) == LIST_QUERIES_WARM + 1
    assert not any("COUNT(" in q["sql"] for q in queries.captured_queries)


def test_it_keeps_counts_and_rows_for_a_moment_while_a_connection_syncs(
    client, cast, many, conn, same_minute, monkeypatch
):
    clock = [1000.0]
    monkeypatch.setattr("sessions_app.sessions.filters._now", lambda: clock[0])
    conn.sync_status = "syncing"
    conn.save(update_fields=["sync_status"])
    client.force_login(cast.admin)
    _clear_caches()
    assert _state_counts(client.get(URL).content.decode())["COMPLETED"] == "87"
    # A large sync writes a new session and its transition a moment later.
    new = _discover(conn)
    clock[0] += filters.SYNC_SETTLE / 2
    with CaptureQueriesContext(db_connection) as queries:
        html = client.get(URL).content.decode()
    # Within the settle time: neither counted nor rendered again.
    assert _state_counts(html)["COMPLETED"] == "87"
    assert "Just synced" not in _titles(html)
    assert len(queries) == LIST_QUERIES_WARM
    clock[0] += filters.SYNC_SETTLE
    html = client.get(URL).content.decode()
    assert _state_counts(html)["COMPLETED"] == "88"
    assert "Just synced" in _titles(html)
    # The portal's own writes show at once, sync or not.
    client.post(reverse("sessions_app:session-bulk"), {"action": "archive", "ids": [new.pk]})
    html = client.get(URL).content.decode()
    assert _state_counts(html)["COMPLETED"] == "87"
    assert "Just synced" not in _titles(html)


def test_it_counts_again_at_once_once_the_sync_has_finished(
    client, cast, many, conn, same_minute, monkeypatch
):
    monkeypatch.setattr("sessions_app.sessions.filters._now", lambda: 1000.0)
    client.force_login(cast.admin)
    _clear_caches()
    client.get(URL)
    _discover(conn)
    # No connection syncing: no settle time, the same instant shows the new session.
    html = client.get(URL).content.decode()
    assert _state_counts(html)["COMPLETED"] == "88"
    assert "Just synced" in _titles(html)


def test_it_refreshes_cached_rows_every_minute(client, cast, conn, monkeypatch):
    SessionFactory(connection=conn, title="Aging", create_time=_days_ago(0.01))
    client.force_login(cast.viewer)
    monkeypatch.setattr("sessions_app.sessions.views.sessions._minute", lambda: "one")
    assert "14\xa0minutes ago" in client.get(URL).content.decode()
    later = _days_ago(-0.01)
    monkeypatch.setattr("sessions_app.sessions.views.sessions.timezone.now", lambda: later)
    assert "14\xa0minutes ago" in client.get(URL).content.decode()
    monkeypatch.setattr("sessions_app.sessions.views.sessions._minute", lambda: "two")
    assert "28\xa0minutes ago" in client.get(URL).content.decode()


def test_it_offers_a_newly_synced_repository_at_once(client, cast, conn):
    SourceFactory(connection=conn, owner="acme", repo="old")
    client.force_login(cast.viewer)
    assert '<option value="acme/old"' in client.get(URL).content.decode()
    SourceFactory(connection=conn, owner="acme", repo="fresh")
    conn.last_sources_sync_at = timezone.now()
    conn.save(update_fields=["last_sources_sync_at"])
    assert '<option value="acme/fresh"' in client.get(URL).content.decode()


def test_it_says_how_long_ago_as_django_does():
    now = timezone.now()
    for delta in [
        dt.timedelta(0),
        dt.timedelta(seconds=59),
        dt.timedelta(minutes=1),
        dt.timedelta(minutes=61),
        dt.timedelta(hours=2, minutes=59),
        dt.timedelta(days=1, minutes=5),
        dt.timedelta(days=6, hours=23),
        dt.timedelta(days=8, hours=5),
        dt.timedelta(days=27, hours=23, minutes=59),
        dt.timedelta(days=28),
        dt.timedelta(days=400),
        dt.timedelta(minutes=-5),
    ]:
        assert ago(now - delta, now) == timesince(now - delta, now), delta


def test_it_links_only_web_addresses_as_pull_requests(client, cast, conn):
    SessionFactory(connection=conn, title="Sneaky", pr_url="javascript:alert(1)")
    SessionFactory(connection=conn, title="Honest", pr_url="https://github.com/a/b/pull/1")
    client.force_login(cast.viewer)
    html = client.get(URL).content.decode()
    assert "javascript:" not in html
    assert 'href="https://github.com/a/b/pull/1"' in html


def test_it_takes_dates_at_the_edges_of_the_calendar(client, cast, world):
    client.force_login(cast.viewer)
    html = client.get(URL, {"created_after": "0001-01-01", "created_before": "9999-12-31"})
    assert len(_titles(html.content.decode())) == 5


def test_it_ignores_ids_too_large_for_the_database(client, cast, world):
    client.force_login(cast.admin)
    huge = "9" * 30
    response = client.get(URL, {"connection": huge, "launched_by": "9" * 20})
    assert response.status_code == 200
    assert "Ignored the connection filter" in response.content.decode()
    response = client.post(reverse("sessions_app:session-bulk"), {"action": "archive", "ids": huge})
    assert response.status_code == 302


# --- one definition of a row's cells --------------------------------------------------


def test_it_changes_a_rows_digest_with_any_cell():
    import dataclasses

    from sessions_app.sessions.rows import Row, TimeCell

    moment = TimeCell("2026-01-01T10:00:00+00:00", "3\xa0days ago", "2026-01-01 10:00 UTC")
    row = Row(
        pk=1,
        state="IN_PROGRESS",
        state_label="In progress",
        attention=False,
        polls=True,
        archived=False,
        deleted=False,
        title="A title",
        repo="acme/web",
        branch="main",
        launcher="member",
        created=moment,
        active=moment,
        pr_url="",
        selectable=True,
        may_bulk=True,
    )
    changed = {
        int: 2,
        str: "something else",
        bool: None,  # flipped below
        TimeCell: dataclasses.replace(moment, text="4\xa0days ago"),
    }
    for cell in dataclasses.fields(Row):
        value = getattr(row, cell.name)
        new = not value if isinstance(value, bool) else changed[type(value)]
        other = dataclasses.replace(row, **{cell.name: new})
        assert other.version != row.version, cell.name


def test_it_renders_rows_from_their_cells_only(cast, conn):
    from sessions_app.sessions.rows import render_rows, rows_for

    session = SessionFactory(connection=conn, title="Tidy <b>up</b>", repo="acme/web")
    session = Session.objects.select_related("launched_by").get(pk=session.pk)
    [row] = rows_for([session], {}, may_bulk=False)
    html = render_rows([row])
    assert "Tidy &lt;b&gt;up&lt;/b&gt;" in html and "<b>" not in html
    # The full title is in the link's title attribute, for the cell that truncates it.
    assert 'title="Tidy &lt;b&gt;up&lt;/b&gt;"' in html
    # Nothing the cells do not hold reaches the markup: a changed session, same cells.
    session.prompt = "Changed, but not shown"
    assert render_rows(rows_for([session], {}, may_bulk=False)) == html


def test_it_says_just_now_rather_than_zero_minutes(client, cast, conn):
    SessionFactory(connection=conn, title="Fresh", create_time=timezone.now())
    # The demo's clock runs ahead: a time in the future reads "just now" too.
    SessionFactory(
        connection=conn,
        title="From the future",
        create_time=timezone.now() + dt.timedelta(minutes=3),
    )
    client.force_login(cast.viewer)
    html = client.get(URL).content.decode()
    assert html.count(">just now</time>") == 2
    assert "0\xa0minutes" not in html


def test_it_shows_one_unit_of_time_to_keep_a_row_on_one_line(client, cast, conn):
    SessionFactory(connection=conn, title="Older", create_time=_days_ago(17.5))
    client.force_login(cast.viewer)
    html = client.get(URL).content.decode()
    assert ">2\xa0weeks ago</time>" in html


# --- what a role cannot use is not offered --------------------------------------------


def test_it_offers_launching_only_to_those_who_may(client, cast, world):
    client.force_login(cast.viewer)
    html = client.get(URL).content.decode()
    assert 'href="/sessions/new"' not in html
    assert 'href="/sessions/new"' not in client.get("/teams/").content.decode()
    client.force_login(cast.member)
    html = client.get(URL).content.decode()
    assert html.count('href="/sessions/new"') == 2  # the navigation and the button
    assert 'href="/sessions/new"' in client.get("/teams/").content.decode()


# --- sessions deleted on Jules --------------------------------------------------------


def test_it_counts_sessions_deleted_on_jules_apart_from_their_last_state(
    client, cast, world, same_minute
):
    client.force_login(cast.viewer)
    _clear_caches()
    assert _state_counts(client.get(URL).content.decode())["COMPLETED"] == "1"
    # The sync marks a session deleted, with its transition, in one transaction.
    Session.objects.filter(pk=world["done"].pk).update(deleted_remotely=True)
    SessionTransition.objects.create(
        team=cast.team, session=world["done"], kind="deleted", from_state="COMPLETED"
    )
    html = client.get(URL).content.decode()
    counts = _state_counts(html)
    assert counts["COMPLETED"] == "0" and counts["DELETED"] == "1"
    assert "5 sessions" in html
    assert "Finished rounding" in _titles(html)
    done = html.split(f'id="session-{world["done"].pk}"')[1].split("</tr>")[0]
    assert ">Deleted</span>" in done and ">Completed</span>" not in done
    assert _titles(client.get(URL, {"state": "COMPLETED"}).content.decode()) == []
    html = client.get(URL, {"state": "DELETED"}).content.decode()
    assert _titles(html) == ["Finished rounding"] and "1 session." in html


def test_it_excludes_a_deleted_session_from_needing_attention(client, cast, world):
    Session.objects.filter(pk=world["waiting"].pk).update(deleted_remotely=True)
    client.force_login(cast.viewer)
    html = client.get(URL, {"attention": "1"}).content.decode()
    assert _titles(html) == ["Explain the cache layer"]


def test_it_recounts_once_the_outbox_has_deleted_a_session(
    client, cast, simulator, sim_connection, django_capture_on_commit_callbacks
):
    from jules.client import JulesClient
    from sessions_app import sync
    from sessions_app.outbox import delivery
    from sessions_app.sessions import services

    remote = JulesClient("test-key", simulator.base_url).create_session(
        prompt="Doomed", source="sources/github/acme/billing", starting_branch="main"
    )
    session = sync.upsert_remote_session(sim_connection, remote)
    client.force_login(cast.admin)
    _clear_caches()
    assert _state_counts(client.get(URL).content.decode())["DELETED"] == "0"
    action = services.session_delete(user=cast.admin, session=session)
    # Deleting asks Jules through the outbox; the counts are stale until it has.
    assert delivery.deliver(str(action.pk)) == "done"
    counts = _state_counts(client.get(URL).content.decode())
    assert counts["DELETED"] == "1" and sum(map(int, counts.values())) == 1


# --- bad values are named or ignored, never a 500 -------------------------------------


def test_it_names_a_connection_filter_that_is_not_one_of_the_users(client, cast, world):
    client.force_login(cast.viewer)
    for value in ("999", str(world["foreign"].connection_id)):
        html = client.get(URL, {"connection": value}).content.decode()
        assert "Ignored the connection filter: no such connection in your teams." in html
        # Ignored, not applied: the list shows every session.
        assert len(_titles(html)) == 5


@pytest.mark.parametrize("value", ["²", "٣", "1²", "9" * 5000, "-1", " 1 2"])
def test_it_takes_no_odd_number_for_an_id(client, cast, world, value):
    client.force_login(cast.admin)
    for name in ("connection", "launched_by"):
        response = client.get(URL, {name: value})
        assert response.status_code == 200
        assert f"Ignored the {name.replace('_', ' ')} filter" in response.content.decode()
    response = client.get(URL, {"page": value})
    assert response.status_code == 200
    response = client.post(
        reverse("sessions_app:session-bulk"), {"action": "archive", "ids": [value]}, follow=True
    )
    assert response.status_code == 200
    assert "Select at least one session first." in response.content.decode()
    live = world["live"]
    response = client.get(
        reverse("sessions_app:session-live", args=[live.pk]), {"after": value}, **HTMX
    )
    assert response.status_code == 400
    response = client.get(reverse("sessions_app:launch-branches"), {"source": value})
    assert response.status_code == 200


def test_it_acts_on_the_good_ids_of_a_bulk_request_and_says_some_were_not(
    client, cast, world, django_capture_on_commit_callbacks
):
    client.force_login(cast.admin)
    response = client.post(
        reverse("sessions_app:session-bulk"),
        {"action": "archive", "ids": [str(world["done"].pk), "²", "9" * 5000]},
        follow=True,
    )
    html = response.content.decode()
    assert "Archived 1 session." in html
    assert "Some of the selected values were not session numbers." in html


def test_it_launches_from_no_odd_repository_number(client, cast, conn):
    client.force_login(cast.member)
    for value in ("²", "9" * 5000):
        response = client.post(
            reverse("sessions_app:session-launch"),
            {"connection": conn.pk, "source": value, "prompt": "Do it"},
        )
        assert response.status_code == 200
        assert "Pick a repository this connection has synced." in response.content.decode()
