"""Launch templates and schedules: variables, versions, fan-out, cron slots across DST,
and slots claimed exactly once (docs/templates.md)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.http import Http404

from sessions_app.access import ActionNotAllowed
from sessions_app.launch_templates import schedules, services, timing
from sessions_app.launch_templates.variables import MissingVariables, render, variables_in
from sessions_app.models import (
    AuditEntry,
    OutboxAction,
    Schedule,
    ScheduleRun,
    TemplateLaunch,
    TemplateVersion,
)
from tests.factories import ConnectionFactory, SessionFactory, SourceFactory

UTC = dt.UTC
BERLIN = "Europe/Berlin"


# --- variables --------------------------------------------------------------------------


def test_it_lists_the_variables_in_order_without_the_builtins():
    names = variables_in("Fix {{ module }} in {{repo}} for {{ ticket }}", "{{ticket}}: {{ date }}")
    assert names == ["module", "ticket"]


def test_it_renders_in_one_pass_and_names_what_is_missing():
    assert render("Fix {{ a }} {{b}}", {"a": "{{ b }}", "b": "x"}) == "Fix {{ b }} x"
    with pytest.raises(MissingVariables) as caught:
        render("Fix {{ a }} and {{ b }}", {"a": "one", "b": "  "})
    assert caught.value.names == ["b"]
    assert str(caught.value) == "Fill in b."


# --- timing -----------------------------------------------------------------------------


def _local(instant: dt.datetime, zone: str = BERLIN) -> str:
    return instant.astimezone(timing.zone(zone)).strftime("%Y-%m-%d %H:%M %Z")


def test_it_runs_a_daily_slot_in_the_spring_gap_after_the_gap_and_once_in_autumn():
    spring = timing.next_runs("30 2 * * *", BERLIN, dt.datetime(2026, 3, 28, 12, tzinfo=UTC), 3)
    assert [_local(s) for s in spring] == [
        "2026-03-29 03:30 CEST",  # 02:30 does not exist that night
        "2026-03-30 02:30 CEST",
        "2026-03-31 02:30 CEST",
    ]
    autumn = timing.next_runs("30 2 * * *", BERLIN, dt.datetime(2026, 10, 24, 12, tzinfo=UTC), 2)
    # 02:30 happens twice on 25 October; the run is at the first one, and only once.
    assert [_local(s) for s in autumn] == ["2026-10-25 02:30 CEST", "2026-10-26 02:30 CET"]
    assert autumn[1] - autumn[0] == dt.timedelta(hours=25)


def test_it_keeps_slots_increasing_and_distinct_through_both_changes():
    for start in (
        dt.datetime(2026, 3, 28, 23, tzinfo=UTC),
        dt.datetime(2026, 10, 24, 23, tzinfo=UTC),
    ):
        slots = timing.next_runs("*/30 * * * *", BERLIN, start, 12)
        assert slots == sorted(set(slots)) and len(slots) == 12
        assert all(s > start for s in slots)


def test_it_turns_cadences_into_expressions_and_refuses_bad_ones():
    at = dt.time(9, 15)
    assert timing.cadence_expression("daily", at=at, weekday=None) == "15 9 * * *"
    assert timing.cadence_expression("weekly", at=at, weekday=1) == "15 9 * * 1"
    assert timing.cadence_expression("cron", at=None, weekday=None, cron=" 0  8 * * 1-5 ") == (
        "0 8 * * 1-5"
    )
    for bad in ("61 * * * *", "* * *", "0 0 30 2 *", "nonsense here a b c"):
        with pytest.raises(timing.BadSchedule):
            timing.check_expression(bad)
    with pytest.raises(timing.BadSchedule):
        timing.zone("Mars/Olympus")
    with pytest.raises(timing.BadSchedule):
        timing.cadence_expression("weekly", at=at, weekday=None)


def test_it_finds_the_latest_due_slot_and_counts_the_missed_ones():
    first = dt.datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    latest, missed = timing.latest_due(
        "*/5 * * * *", "UTC", first, first + dt.timedelta(minutes=62)
    )
    assert latest == first + dt.timedelta(hours=1)
    assert missed == 12
    assert timing.latest_due("*/5 * * * *", "UTC", first, first) == (first, 0)


# --- templates --------------------------------------------------------------------------


@pytest.fixture
def repos(cast):
    connection = ConnectionFactory(team=cast.team, label="Main account")
    sources = [SourceFactory(connection=connection, repo=name) for name in ("api", "web", "cli")]
    return connection, sources


def _content(**overrides):
    fields = {
        "name": "Bump deps",
        "prompt": "Bump {{ package }} to {{ version }} in {{ repo }}",
        "title_pattern": "{{ repo }}: {{ package }} {{ version }}",
        "repositories": (),
        "branch": "",
        "require_plan_approval": True,
        "auto_create_pr": False,
    }
    fields.update(overrides)
    return services.TemplateContent(**fields)


def test_each_save_is_a_new_version_saying_who_and_what_changed(cast, repos):
    template = services.template_create(user=cast.member, team=cast.team, content=_content())
    assert template.current.number == 1 and template.current.author == cast.member
    assert services.template_update(user=cast.admin, template=template, content=_content()) is None
    second = services.template_update(
        user=cast.admin, template=template, content=_content(prompt="Upgrade {{ package }}")
    )
    assert second is not None and second.number == 2 and second.changed == ["prompt"]
    assert second.author == cast.admin
    first = TemplateVersion.objects.get(template=template, number=1)
    assert first.prompt.startswith("Bump")
    with pytest.raises(ValueError, match="immutable"):
        first.prompt = "rewritten"
        first.save()
    actions = list(
        AuditEntry.objects.filter(action__startswith="template.")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["template.create", "template.change"]


def test_viewers_cannot_edit_templates_and_outsiders_get_404(cast):
    with pytest.raises(ActionNotAllowed):
        services.template_create(user=cast.viewer, team=cast.team, content=_content())
    with pytest.raises(Http404):
        services.template_create(user=cast.outsider, team=cast.team, content=_content())


def test_a_name_is_unique_in_the_team(cast):
    services.template_create(user=cast.member, team=cast.team, content=_content())
    with pytest.raises(ActionNotAllowed, match="already has a template"):
        services.template_create(user=cast.member, team=cast.team, content=_content())


def test_it_fans_out_one_session_per_repository_recording_the_version(cast, repos):
    connection, sources = repos
    names = tuple(s.name for s in sources)
    template = services.template_create(
        user=cast.member, team=cast.team, content=_content(repositories=names)
    )
    launches = services.template_launch(
        user=cast.member,
        template=template,
        connection=connection,
        values={"package": "requests", "version": "2.33"},
    )
    assert len(launches) == 3
    actions = OutboxAction.objects.filter(kind="launch").order_by("created_at")
    payloads = [a.payload for a in actions]
    assert [p["source"] for p in payloads] == list(names)
    assert payloads[0]["prompt"] == "Bump requests to 2.33 in acme/api"
    assert payloads[1]["title"] == "acme/web: requests 2.33"
    assert {p["starting_branch"] for p in payloads} == {"main"}
    assert all(launch.version == template.current for launch in launches)
    assert {launch.action_id for launch in launches} == {a.pk for a in actions}


def test_missing_variables_launch_nothing(cast, repos):
    connection, sources = repos
    template = services.template_create(
        user=cast.member, team=cast.team, content=_content(repositories=(sources[0].name,))
    )
    with pytest.raises(MissingVariables) as caught:
        services.template_launch(
            user=cast.member, template=template, connection=connection, values={"package": "x"}
        )
    assert caught.value.names == ["version"]
    assert not OutboxAction.objects.exists() and not TemplateLaunch.objects.exists()


def test_a_repository_the_connection_lacks_launches_nothing(cast, repos):
    _connection, sources = repos
    other = ConnectionFactory(team=cast.team, label="Other account")
    template = services.template_create(
        user=cast.member,
        team=cast.team,
        content=_content(repositories=tuple(s.name for s in sources)),
    )
    with pytest.raises(ActionNotAllowed, match="has not synced acme/api"):
        services.template_launch(
            user=cast.member,
            template=template,
            connection=other,
            values={"package": "x", "version": "1"},
        )
    assert not OutboxAction.objects.exists()


def test_the_session_is_linked_once_the_action_created_it(cast, repos):
    connection, sources = repos
    template = services.template_create(
        user=cast.member, team=cast.team, content=_content(repositories=(sources[0].name,))
    )
    (launch,) = services.template_launch(
        user=cast.member,
        template=template,
        connection=connection,
        values={"package": "x", "version": "1"},
    )
    session = SessionFactory(connection=connection)
    OutboxAction.objects.filter(pk=launch.action_id).update(session=session, status="done")
    assert services.link_launched_sessions() == 1
    launch.refresh_from_db()
    assert launch.session == session


# --- schedules --------------------------------------------------------------------------


@pytest.fixture
def scheduled(cast, repos):
    connection, sources = repos
    template = services.template_create(
        user=cast.member,
        team=cast.team,
        content=_content(repositories=(sources[0].name, sources[1].name)),
    )
    return schedules.schedule_create(
        user=cast.member,
        template=template,
        spec=schedules.ScheduleSpec(
            name="Nightly bump",
            connection=connection,
            cadence="cron",
            cron="0 * * * *",
            timezone=BERLIN,
            variables={"package": "django", "version": "5.2"},
        ),
    )


def _due(schedule, at):
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=at)


def test_a_schedule_shows_its_next_slot_and_refuses_missing_variables(cast, repos, scheduled):
    assert scheduled.next_run_at is not None and scheduled.next_run_at.minute == 0
    with pytest.raises(MissingVariables):
        schedules.schedule_create(
            user=cast.member,
            template=scheduled.template,
            spec=schedules.ScheduleSpec(
                name="Broken", connection=repos[0], cadence="daily", time_of_day=dt.time(9)
            ),
        )


def test_a_due_slot_runs_once_however_many_ticks_see_it(scheduled):
    slot = dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    _due(scheduled, slot)
    now = slot + dt.timedelta(seconds=20)
    first = schedules.run_due_schedules(now=now)
    assert [r.status for r in first] == ["launched"]
    assert schedules.run_due_schedules(now=now) == []
    # A tick that read the schedule before the first one advanced it (a stale reader)
    # finds the slot's row taken.
    _due(scheduled, slot)
    assert schedules.run_due_schedules(now=now) == []
    assert ScheduleRun.objects.filter(schedule=scheduled).count() == 1
    assert OutboxAction.objects.filter(kind="launch").count() == 2  # two repositories
    scheduled.refresh_from_db()
    assert scheduled.next_run_at == dt.datetime(2026, 6, 1, 11, 0, tzinfo=UTC)


def test_slots_missed_while_beat_was_down_run_once_within_the_window(scheduled, settings):
    settings.SCHEDULE_CATCH_UP_HOURS = 24
    _due(scheduled, dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC))
    (run,) = schedules.run_due_schedules(now=dt.datetime(2026, 6, 1, 15, 30, tzinfo=UTC))
    assert run.slot == dt.datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
    assert "5 earlier slots were missed" in run.reason
    # Older than the window: recorded as missed, nothing launched.
    before = OutboxAction.objects.count()
    settings.SCHEDULE_CATCH_UP_HOURS = 1
    Schedule.objects.filter(pk=scheduled.pk).update(cron="0 9 * * *")
    _due(scheduled, dt.datetime(2026, 6, 2, 9, 0, tzinfo=UTC))
    OutboxAction.objects.update(status="failed")
    (late,) = schedules.run_due_schedules(now=dt.datetime(2026, 6, 3, 8, 30, tzinfo=UTC))
    assert late.status == "skipped" and late.reason.startswith("Missed")
    assert OutboxAction.objects.count() == before


def test_it_skips_while_the_previous_run_is_active(scheduled):
    _due(scheduled, dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC))
    (first,) = schedules.run_due_schedules(now=dt.datetime(2026, 6, 1, 10, 0, 5, tzinfo=UTC))
    _due(scheduled, dt.datetime(2026, 6, 1, 11, 0, tzinfo=UTC))
    (second,) = schedules.run_due_schedules(now=dt.datetime(2026, 6, 1, 11, 0, 5, tzinfo=UTC))
    assert second.status == "skipped" and "still on its way" in second.reason
    # Once the first run's sessions rest, the next slot launches again.
    for launch in first.launches.all():
        session = SessionFactory(connection=scheduled.connection, state="COMPLETED")
        OutboxAction.objects.filter(pk=launch.action_id).update(status="done", session=session)
    _due(scheduled, dt.datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    (third,) = schedules.run_due_schedules(now=dt.datetime(2026, 6, 1, 12, 0, 5, tzinfo=UTC))
    assert third.status == "launched"
    assert third.launches.count() == 2


def test_pause_resume_and_run_now(cast, scheduled):
    with pytest.raises(ActionNotAllowed, match="only the schedules they created"):
        schedules.schedule_set_active(user=cast.approver, schedule=scheduled, active=False)
    paused = schedules.schedule_set_active(user=cast.admin, schedule=scheduled, active=False)
    assert not paused.active and paused.next_run_at is None
    assert schedules.run_due_schedules(now=dt.datetime(2030, 1, 1, tzinfo=UTC)) == []
    resumed = schedules.schedule_set_active(user=cast.member, schedule=scheduled, active=True)
    assert resumed.active and resumed.next_run_at is not None
    run = schedules.schedule_run_now(user=cast.member, schedule=resumed)
    assert run.trigger == "manual" and run.status == "launched" and run.actor == cast.member
    with pytest.raises(ActionNotAllowed, match="already ran this minute"):
        schedules.schedule_run_now(user=cast.member, schedule=resumed)
    entries = AuditEntry.objects.filter(action__startswith="schedule.").order_by("seq")
    assert [(e.action, e.actor_label) for e in entries] == [
        ("schedule.create", "member"),
        ("schedule.pause", "admin"),
        ("schedule.resume", "member"),
        ("schedule.run", "member"),
    ]


def test_a_run_as_someone_who_left_fails_with_a_reason(cast, scheduled):
    cast.member.memberships.all().delete()
    _due(scheduled, dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC))
    (run,) = schedules.run_due_schedules(now=dt.datetime(2026, 6, 1, 10, 0, 5, tzinfo=UTC))
    assert run.status == "failed" and "no longer in the team" in run.reason
    assert not OutboxAction.objects.exists()


def test_the_command_ticks_at_a_given_time_and_refuses_a_bad_one(scheduled):
    import io

    from django.core.management import CommandError, call_command

    _due(scheduled, dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC))
    out = io.StringIO()
    call_command("run_due_schedules", "--at", "2026-06-01T10:00:30", stdout=out)
    assert "Nightly bump 2026-06-01 10:00 UTC: Launched." in out.getvalue()
    assert "1 run(s)" in out.getvalue()
    with pytest.raises(CommandError, match="not an ISO 8601 time"):
        call_command("run_due_schedules", "--at", "tomorrow")


@pytest.mark.parametrize("policy", [True, False])
def test_a_scheduled_plan_waits_for_an_approver_as_the_policy_says(cast, repos, policy):
    connection, _sources = repos
    type(cast.team).objects.filter(pk=cast.team.pk).update(require_plan_approval=policy)
    template = services.template_create(
        user=cast.member,
        team=cast.team,
        content=_content(name="Auto", prompt="Tidy", title_pattern="", require_plan_approval=False),
    )
    schedule = schedules.schedule_create(
        user=cast.member,
        template=template,
        spec=schedules.ScheduleSpec(
            name="Hourly", connection=connection, cadence="cron", cron="0 * * * *"
        ),
    )
    _due(schedule, dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC))
    schedules.run_due_schedules(now=dt.datetime(2026, 6, 1, 10, 0, 5, tzinfo=UTC))
    (action,) = OutboxAction.objects.filter(kind="launch")
    assert action.payload["require_plan_approval"] is policy
    assert action.actor == cast.member


def test_removing_the_connection_or_the_team_keeps_or_takes_everything_cleanly(cast, scheduled):
    services.template_launch(
        user=cast.member,
        template=scheduled.template,
        connection=scheduled.connection,
        values={"package": "x", "version": "1"},
    )
    scheduled.connection.delete()
    scheduled.refresh_from_db()
    assert scheduled.connection is None
    _due(scheduled, dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC))
    (run,) = schedules.run_due_schedules(now=dt.datetime(2026, 6, 1, 10, 0, 5, tzinfo=UTC))
    assert run.status == "failed" and "connection was removed" in run.reason
    cast.team.delete()
    assert not Schedule.objects.exists() and not TemplateLaunch.objects.exists()
    assert not TemplateVersion.objects.exists()


def test_a_template_needing_a_new_variable_fails_runs_saying_so(cast, scheduled):
    services.template_update(
        user=cast.member,
        template=scheduled.template,
        content=_content(
            prompt="Bump {{ package }} to {{ version }} for {{ ticket }}",
            repositories=tuple(scheduled.template.current.repositories),
        ),
    )
    scheduled.refresh_from_db()
    assert schedules.schedule_missing_variables(scheduled) == ["ticket"]
    _due(scheduled, dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC))
    (run,) = schedules.run_due_schedules(now=dt.datetime(2026, 6, 1, 10, 0, 5, tzinfo=UTC))
    assert run.status == "failed" and run.reason == "Fill in ticket."
    assert run.version == scheduled.template.current and run.version.number == 2


def test_one_broken_schedule_does_not_hold_up_the_others(cast, repos, scheduled, monkeypatch):
    other = schedules.schedule_create(
        user=cast.member,
        template=scheduled.template,
        spec=schedules.ScheduleSpec(
            name="Second",
            connection=repos[0],
            cadence="cron",
            cron="0 * * * *",
            variables={"package": "x", "version": "1"},
        ),
    )
    Schedule.objects.update(next_run_at=dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC))
    real = schedules.run_schedule

    def broken_first(schedule_id, *, now):
        if schedule_id == scheduled.pk:
            raise RuntimeError("a bug")
        return real(schedule_id, now=now)

    monkeypatch.setattr(schedules, "run_schedule", broken_first)
    runs = schedules.run_due_schedules(now=dt.datetime(2026, 6, 1, 10, 0, 5, tzinfo=UTC))
    assert [r.schedule_id for r in runs] == [other.pk]
    monkeypatch.setattr(schedules, "run_schedule", real)
    # The broken one's slot was not claimed, so the next tick runs it.
    (retried,) = schedules.run_due_schedules(now=dt.datetime(2026, 6, 1, 10, 1, 5, tzinfo=UTC))
    assert retried.schedule_id == scheduled.pk and retried.slot.hour == 10
