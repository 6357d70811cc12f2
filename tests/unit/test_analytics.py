"""Analytics: each figure on a small data set computed by hand, the rollup kept by the
sync, scoping, the CSV exports (docs/analytics.md)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from jules.client import JulesClient
from sessions_app import sync
from sessions_app.analytics import charts, selectors
from sessions_app.analytics.facts import Event, answer_waits, approval_waits, patch_lines
from sessions_app.analytics.rollup import refresh_facts
from sessions_app.models import OutboxAction, Session, SessionFacts, SessionOutput
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory

pytestmark = pytest.mark.django_db

PATCH = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1,4 @@\n+one\n+two\n+three\n-gone\n kept\n"


def _at(base: dt.datetime, seconds: int) -> dt.datetime:
    return base + dt.timedelta(seconds=seconds)


@pytest.fixture
def base():
    day = timezone.localdate() - dt.timedelta(days=2)
    return timezone.make_aware(dt.datetime.combine(day, dt.time(10)))


@pytest.fixture
def known(cast, base):
    """Four sessions of Acme in the range, one older, one of Globex (numbers in the tests
    are worked out from these by hand)."""
    conn = ConnectionFactory(team=cast.team, label="Main")

    def session(offset, **kwargs):
        return SessionFactory(connection=conn, create_time=_at(base, offset), **kwargs)

    def act(s, kind, offset, **kwargs):
        return ActivityFactory(
            session=s, kind=kind, create_time=_at(s.create_time, offset), **kwargs
        )

    s1 = session(0, repo="acme/billing", launched_by=cast.member, state="COMPLETED")
    act(s1, "planGenerated", 120)
    act(s1, "planApproved", 420)
    act(s1, "agentMessaged", 600)
    act(s1, "userMessaged", 900)
    act(s1, "sessionCompleted", 1800)
    SessionOutput.objects.create(session=s1, position=0, kind="changeSet", patch=PATCH)
    SessionOutput.objects.create(session=s1, position=1, kind="pullRequest", url="https://x/1")
    OutboxAction.objects.create(
        team=cast.team,
        connection=conn,
        session=s1,
        actor=cast.approver,
        kind="approve",
        status="done",
    )
    s2 = session(3600, repo="acme/billing", launched_by=cast.member, state="FAILED")
    act(s2, "planGenerated", 60)
    act(s2, "planGenerated", 200)
    act(s2, "sessionFailed", 600, failure_reason="Tests  failed\n")
    s3 = session(7200, repo="acme/web", launched_by=None, state="COMPLETED")
    act(s3, "planGenerated", 30)
    act(s3, "planApproved", 90)
    act(s3, "progressUpdated", 100)
    act(
        s3,
        "sessionCompleted",
        5000,
        artifacts=[{"kind": "changeSet", "patch": "+a\n+b\n-c\n"}],
    )
    s4 = session(10800, repo="acme/web", launched_by=cast.admin, state="IN_PROGRESS")
    act(s4, "agentMessaged", 10)
    act(s4, "progressUpdated", 20)
    old = SessionFactory(
        connection=conn, create_time=base - dt.timedelta(days=200), state="COMPLETED"
    )
    foreign = SessionFactory(
        connection=ConnectionFactory(team=cast.other_team), create_time=base, state="FAILED"
    )
    refresh_facts(Session.objects.values_list("pk", flat=True))
    return {"s1": s1, "s2": s2, "s3": s3, "s4": s4, "old": old, "foreign": foreign}


def _figures(cast, data=None, days=90):
    end = timezone.localdate()
    return selectors.figures([cast.team.pk], data or {}, end - dt.timedelta(days=days - 1), end)


# --- the pure rules ---------------------------------------------------------------------


def test_patch_lines_counts_changed_lines_not_file_headers():
    assert patch_lines(PATCH) == (3, 1)
    assert patch_lines("") == (0, 0)


def test_an_agent_message_followed_by_other_work_is_no_question(base):
    events = [
        Event("agentMessaged", _at(base, 0)),
        Event("progressUpdated", _at(base, 5)),
        Event("userMessaged", _at(base, 50)),
        Event("agentMessaged", _at(base, 100)),
        Event("userMessaged", _at(base, 160)),
    ]
    assert answer_waits(events) == [60]


def test_each_approval_waits_since_the_plan_before_it(base):
    events = [
        Event("planGenerated", _at(base, 0)),
        Event("planGenerated", _at(base, 100)),
        Event("planApproved", _at(base, 130)),
        Event("planApproved", _at(base, 500)),
    ]
    assert approval_waits(events) == [30]


# --- the rollup rows ----------------------------------------------------------------------


def test_the_rollup_row_holds_each_fact(known, cast):
    f1 = SessionFacts.objects.get(session=known["s1"])
    assert (f1.seconds_to_plan, f1.seconds_awaiting_approval) == (120, 300)
    assert (f1.seconds_awaiting_answers, f1.seconds_duration) == (300, 1800)
    assert (f1.lines_added, f1.lines_removed, f1.has_pr) == (3, 1, True)
    assert f1.approved_by == cast.approver and f1.plans_generated == 1
    assert not f1.outside_portal
    f2 = SessionFacts.objects.get(session=known["s2"])
    assert (f2.plans_generated, f2.failure_reason, f2.seconds_duration) == (2, "Tests failed", 600)
    assert f2.seconds_awaiting_approval is None
    f3 = SessionFacts.objects.get(session=known["s3"])
    assert f3.outside_portal and f3.approved_by is None
    assert (f3.lines_added, f3.lines_removed, f3.seconds_duration) == (2, 1, 5000)
    f4 = SessionFacts.objects.get(session=known["s4"])
    assert (f4.seconds_to_plan, f4.seconds_awaiting_answers, f4.seconds_duration) == (
        None,
        None,
        None,
    )
    assert f1.created_day == timezone.localdate() - dt.timedelta(days=2)


def test_a_refresh_that_changes_nothing_writes_nothing(known):
    assert refresh_facts(Session.objects.values_list("pk", flat=True)) == 0
    Session.objects.filter(pk=known["s4"].pk).update(state="COMPLETED")
    assert refresh_facts([known["s4"].pk, known["s1"].pk]) == 1
    assert SessionFacts.objects.get(session=known["s4"]).state == "COMPLETED"


def test_the_backfill_command_fills_missing_rows(known, capsys):
    SessionFacts.objects.all().delete()
    call_command("analytics_backfill")
    assert SessionFacts.objects.count() == Session.objects.count() == 6
    assert "6 sessions read; 6 rollup rows written" in capsys.readouterr().out
    call_command("analytics_backfill", "--team", "acme")
    assert "5 sessions read; 0 rollup rows written" in capsys.readouterr().out


# --- the figures --------------------------------------------------------------------------


def test_the_figures_of_the_known_sessions(known, cast):
    f = _figures(cast)
    assert (f.total, f.completed, f.failed, f.with_pr, f.outside, f.regenerated) == (
        4,
        2,
        1,
        1,
        1,
        1,
    )
    assert (f.lines_added, f.lines_removed) == (5, 2)
    assert f.averages["seconds_to_plan"] == pytest.approx(70)
    assert f.averages["seconds_duration"] == pytest.approx(7400 / 3)
    hist = dict(f.histograms["seconds_to_plan"])
    assert (hist["under 1 min"], hist["1-5 min"], hist["5-15 min"]) == (1, 2, 0)
    assert dict(f.histograms["seconds_awaiting_approval"])["5-15 min"] == 1
    assert dict(f.histograms["seconds_awaiting_approval"])["1-5 min"] == 1
    assert dict(f.histograms["seconds_awaiting_answers"])["5-15 min"] == 1
    assert sum(n for _, n in f.histograms["seconds_awaiting_answers"]) == 1
    durations = dict(f.histograms["seconds_duration"])
    assert (durations["5-15 min"], durations["15-60 min"], durations["1-4 h"]) == (1, 1, 1)
    assert dict(f.histograms["plans_generated"]) == {
        "no plan": 1,
        "1 plan": 2,
        "2 plans": 1,
        "3 plans": 0,
        "4 or more": 0,
    }
    assert dict(f.histograms["change_size"])["1-10 lines"] == 2
    assert f.per_day == {
        timezone.localdate() - dt.timedelta(days=2): {"COMPLETED": 2, "FAILED": 1, "IN_PROGRESS": 1}
    }
    repos = {g.label: (g.total, g.completed, g.failed, g.with_pr) for g in f.repositories}
    assert repos == {"acme/billing": (2, 1, 1, 1), "acme/web": (2, 1, 0, 0)}
    people = {g.label: (g.total, g.completed, g.failed) for g in f.people}
    assert people == {"member": (2, 1, 1), "Outside the portal": (1, 1, 0), "admin": (1, 0, 0)}
    approvers = {g.label: (g.total, g.average) for g in f.approvers}
    assert approvers == {"approver": (1, 300), "In Jules or automatically": (1, 60)}
    assert [(g.label, g.total) for g in f.failures] == [("Tests failed", 1)]


def test_the_charts_state_the_rates(known, cast):
    by_slug = {c.slug: c for c in charts.all_charts(_figures(cast), weekly=False, by_team=False)}
    overview = {row[0]: row[1] for row in by_slug["overview"].rows}
    assert overview == {
        "Success rate": 66.7,
        "Pull request rate": 25.0,
        "Launched outside the portal": 25.0,
        "Plans regenerated": 25.0,
    }
    repos = {row[0]: row for row in by_slug["repositories"].rows}
    assert repos["acme/billing"][4:] == (50.0, 1, 50.0)
    assert repos["acme/web"][4:] == (100.0, 0, 0.0)
    # 90 days, one column each; the longest bar is the largest value.
    assert len(by_slug["sessions"].columns) == 90
    assert max(b.width for b in by_slug["repositories"].bars) == charts.BAR_AREA
    assert "teams" not in by_slug


def test_the_lists_filters_and_the_range_apply(known, cast):
    assert _figures(cast, {"repo": "acme/web"}).total == 2
    assert _figures(cast, {"launched_by": "none"}).total == 1
    assert _figures(cast, {"launched_by": str(cast.member.pk)}).total == 2
    assert _figures(cast, {"state": ["FAILED"]}).total == 1
    assert _figures(cast, {"q": "nothing like this"}).total == 0
    Session.objects.filter(pk=known["s1"].pk).update(archived=True)
    assert _figures(cast, {}).total == 4
    assert _figures(cast, {"archived": "hide"}).total == 3
    assert _figures(cast, days=365).total == 5
    assert _figures(cast, days=1).total == 0


def test_weekly_periods_add_up_the_days(known, cast):
    figures = _figures(cast, days=365)
    chart = charts.sessions_chart(figures, weekly=True)
    assert sum(row[-1] for row in chart.rows) == 5
    assert all(dt.date.fromisoformat(row[0]).weekday() == 0 for row in chart.rows)


# --- pages, scoping, CSV ------------------------------------------------------------------


def test_the_team_page_shows_charts_with_their_tables(client, cast, known):
    client.force_login(cast.viewer)
    page = client.get(reverse("sessions_app:team-analytics", args=["acme"]))
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('role="img"') == len(
        charts.all_charts(_figures(cast), weekly=False, by_team=False)
    )
    assert '<th scope="row">acme/billing</th>' in html
    assert "Tests failed" in html


def test_outsiders_get_404_and_the_cross_team_page_stays_in_their_teams(client, cast, known):
    client.force_login(cast.outsider)
    assert client.get(reverse("sessions_app:team-analytics", args=["acme"])).status_code == 404
    csv_url = reverse("sessions_app:team-analytics-csv", args=["acme", "overview"])
    assert client.get(csv_url).status_code == 404
    own = client.get(reverse("sessions_app:analytics-csv", args=["overview"]))
    # Globex holds one failed session: nothing of Acme's four.
    rows = list(csv.reader(io.StringIO(own.content.decode())))
    assert rows[1] == ["Success rate", "0.0", "of 1 ended"]


def test_the_cross_team_page_adds_a_chart_per_team(client, cast, known):
    from tests.factories import MembershipFactory

    MembershipFactory(team=cast.other_team, user=cast.member, role="viewer")
    client.force_login(cast.member)
    response = client.get(reverse("sessions_app:analytics-csv", args=["teams"]))
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert [r[:4] for r in rows[1:]] == [["Acme", "4", "2", "1"], ["Globex", "1", "0", "1"]]


def test_the_csv_guards_cells_against_formulas(client, cast, known):
    SessionFacts.objects.filter(session=known["s2"]).update(failure_reason="=HYPERLINK(1)")
    client.force_login(cast.member)
    response = client.get(reverse("sessions_app:team-analytics-csv", args=["acme", "failures"]))
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [["reason", "sessions"], ["'=HYPERLINK(1)", "1"]]


def test_bad_input_gets_a_message_not_a_500(client, cast, known):
    client.force_login(cast.member)
    page = client.get(
        reverse("sessions_app:team-analytics", args=["acme"]),
        {"created_after": "not a date", "connection": "99999", "state": "BOGUS", "per": "year"},
    )
    assert page.status_code == 200
    assert "Ignored" in page.content.decode()
    csv_url = reverse("sessions_app:team-analytics-csv", args=["acme", "overview"])
    refused = client.get(csv_url, {"created_after": "not a date"})
    assert refused.status_code == 400
    assert b"Nothing was exported" in refused.content
    missing = reverse("sessions_app:team-analytics-csv", args=["acme", "nonsense"])
    assert client.get(missing).status_code == 404
    # A person in no team has no cross-team page.
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="loner"))
    assert client.get(reverse("sessions_app:analytics")).status_code == 404


# --- kept by the sync ---------------------------------------------------------------------


def test_the_sync_keeps_the_rollup_current(simulator, sim_connection, cast):
    client = JulesClient("test-key", simulator.base_url)
    remote = client.create_session(
        prompt="Add tests",
        source="sources/github/acme/billing",
        starting_branch="main",
        require_plan_approval=True,
        automation_mode="AUTO_CREATE_PR",
    )
    launched = sync.upsert_remote_session(sim_connection, remote, launched_by=cast.member)
    facts = SessionFacts.objects.get(session=launched)
    assert facts.launched_by == cast.member and not facts.outside_portal
    simulator.advance(70)
    sync.sync_one_session(launched.pk)
    facts.refresh_from_db()
    assert facts.state == "AWAITING_PLAN_APPROVAL"
    assert facts.plans_generated == 1 and facts.seconds_to_plan is not None
    # A re-sync of an unchanged session leaves its row alone.
    stamp = facts.computed_at
    sync.sync_one_session(launched.pk)
    facts.refresh_from_db()
    assert facts.computed_at == stamp
    client.approve_plan(remote.id)
    simulator.advance(900)
    sync.sync_one_session(launched.pk)
    facts.refresh_from_db()
    assert facts.state == "COMPLETED" and facts.computed_at > stamp
    assert facts.seconds_awaiting_approval is not None
    assert facts.has_pr and facts.lines_added > 0
    assert facts.seconds_duration is not None


def test_a_full_sync_writes_a_row_per_session_and_a_resync_writes_none(cast):
    from jules_simulator import start_simulator

    sim = start_simulator(
        api_keys=["test-key"], manual_clock=True, seed=3, seed_sessions=40, activities_per_session=5
    )
    try:
        conn = ConnectionFactory(team=cast.team, base_url=sim.base_url, api_key="test-key")
        sync.sync_connection(conn.pk, full=True)
        assert SessionFacts.objects.filter(connection=conn).count() == 40
        stamps = dict(SessionFacts.objects.values_list("session_id", "computed_at"))
        expected = {s.pk: s.state for s in Session.objects.filter(connection=conn)}
        assert dict(SessionFacts.objects.values_list("session_id", "state")) == expected
        # The rows made from what the sync held in memory are those the stored rows give.
        assert refresh_facts(expected) == 0
        assert SessionFacts.objects.filter(plans_generated__gt=0, lines_added__gt=0).exists()
        from sessions_app.models import JulesConnection

        JulesConnection.objects.filter(pk=conn.pk).update(last_full_sync_at=None)
        sync.sync_connection(conn.pk, full=True)
        assert dict(SessionFacts.objects.values_list("session_id", "computed_at")) == stamps
        # Deleted on Jules: the row says so.
        gone = Session.objects.filter(connection=conn).first()
        JulesClient("test-key", sim.base_url).delete_session(gone.remote_id)
        JulesConnection.objects.filter(pk=conn.pk).update(last_full_sync_at=None)
        sync.sync_connection(conn.pk, full=True)
        assert SessionFacts.objects.get(session=gone).deleted_remotely is True
    finally:
        sim.stop()


def test_cached_figures_follow_every_rollup_change(known, cast, django_assert_num_queries):
    end = timezone.localdate()
    start = end - dt.timedelta(days=89)
    first = selectors.cached_figures([cast.team.pk], {}, start, end)
    # A hit costs the version's one query, not the seven of the figures.
    with django_assert_num_queries(1):
        assert selectors.cached_figures([cast.team.pk], {}, start, end) == first
    Session.objects.filter(pk=known["s4"].pk).update(state="FAILED")
    refresh_facts([known["s4"].pk])
    again = selectors.cached_figures([cast.team.pk], {}, start, end)
    assert (first.failed, again.failed) == (1, 2)


def test_the_range_stays_clear_of_the_calendars_edges(client, cast, known):
    client.force_login(cast.member)
    url = reverse("sessions_app:team-analytics", args=["acme"])
    for after, before in [
        ("0001-01-01", "0001-01-01"),
        ("9999-12-30", "9999-12-31"),
        ("", "0001-01-02"),
    ]:
        page = client.get(url, {"created_after": after, "created_before": before, "per": "week"})
        assert page.status_code == 200
        assert "Dates are kept between 1900-01-01 and 9000-12-31." in page.content.decode()


def test_a_session_deleted_from_the_portal_says_so_in_the_rollup(
    simulator, sim_connection, cast, django_capture_on_commit_callbacks
):
    from sessions_app.sessions import services

    remote = JulesClient("test-key", simulator.base_url).create_session(
        prompt="Tidy up", source="sources/github/acme/billing", starting_branch="main"
    )
    session = sync.upsert_remote_session(sim_connection, remote, launched_by=cast.member)
    assert SessionFacts.objects.get(session=session).deleted_remotely is False
    with django_capture_on_commit_callbacks(execute=True):
        services.session_delete(user=cast.admin, session=session)
    facts = SessionFacts.objects.get(session=session)
    assert facts.deleted_remotely is True
    day = facts.created_day
    assert selectors.figures([cast.team.pk], {"state": ["DELETED"]}, day, day).total == 1
    assert selectors.figures([cast.team.pk], {"state": ["QUEUED"]}, day, day).total == 0
