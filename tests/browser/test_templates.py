"""Launch templates and schedules in Chromium: a template with variables fanned out over
three repositories; a schedule created with its next runs previewed, edited, paused,
resumed, and a run appearing once the clock reaches its slot (docs/templates.md)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from sessions_app.launch_templates import schedules, services
from sessions_app.models import LaunchTemplate, OutboxAction, Schedule, ScheduleRun
from tests.browser.conftest import sign_in
from tests.factories import ConnectionFactory, SessionFactory, SourceFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def repos(cast):
    connection = ConnectionFactory(team=cast.team, label="Acme Jules")
    return connection, [SourceFactory(connection=connection, repo=n) for n in ("api", "web", "cli")]


def test_a_template_with_variables_fans_out_over_three_repositories(
    page, live_server, cast, repos, screenshot
):
    sign_in(page, live_server, "member")
    page.click("nav >> text=Templates")
    page.click("text=New template")
    page.fill("#id_name", "Bump a dependency")
    page.fill("#id_prompt", "Bump {{ package }} to {{ version }} in {{ repo }}")
    page.fill("#id_title_pattern", "{{ repo }}: {{ package }} {{ version }}")
    page.select_option("#id_repositories", [s.name for s in repos[1]])
    page.click("button:has-text('Save template')")
    page.wait_for_selector("h1:has-text('Bump a dependency')")
    page.wait_for_selector(".toast >> text=Saved Bump a dependency as version 1.")

    page.click("text=Run across repositories")
    assert page.locator("input[name=repositories]:checked").count() == 3
    page.fill("#id_var_package", "requests")
    page.click("button:has-text('Launch one per repository')")
    # A missing variable is a form error, and nothing is launched.
    page.wait_for_selector("text=Fill in version.")
    assert page.input_value("#id_var_package") == "requests"
    assert not OutboxAction.objects.exists()
    page.fill("#id_var_version", "2.33")
    page.click("button:has-text('Launch one per repository')")
    page.wait_for_selector(".toast >> text=Launched 3 sessions")
    assert page.locator("#launches .launch-row").count() == 3
    titles = sorted(a.payload["title"] for a in OutboxAction.objects.filter(kind="launch"))
    assert titles == [f"acme/{r}: requests 2.33" for r in ("api", "cli", "web")]
    # Delivery creates the sessions; the list, which polls meanwhile, links each one.
    for action in OutboxAction.objects.filter(kind="launch"):
        session = SessionFactory(connection=repos[0], title=action.payload["title"])
        OutboxAction.objects.filter(pk=action.pk).update(status="done", session=session)
    page.wait_for_selector("#launches >> text=acme/web: requests 2.33")
    assert page.locator("#launches a:has-text('requests 2.33')").count() == 3
    screenshot("template-fan-out")

    # Search on the list filters as one types.
    page.click("nav >> text=Templates")
    page.fill("#id_q", "no such thing")
    page.wait_for_selector("text=No template matches")
    page.fill("#id_q", "requests nothing")
    page.fill("#id_q", "{{ version }}")
    page.wait_for_selector("#template-results >> text=Bump a dependency")


def test_a_schedule_is_created_edited_paused_resumed_and_runs_on_time(
    page, live_server, cast, repos, screenshot
):
    template = services.template_create(
        user=cast.member,
        team=cast.team,
        content=services.TemplateContent(
            name="Nightly tidy", prompt="Tidy {{ area }}", repositories=(repos[1][0].name,)
        ),
    )
    sign_in(page, live_server, "member")
    page.goto(f"{live_server.url}/templates/{template.pk}/")
    page.click("text=New schedule")
    page.fill("#id_name", "Tidy every weekday")
    page.select_option("#id_cadence", "cron")
    page.fill("#id_cron", "15 6 * * 1-5")
    page.fill("#id_timezone", "Europe/Berlin")
    page.dispatch_event("#id_timezone", "change")
    page.wait_for_selector("#schedule-preview >> text=15 6 * * 1-5 in Europe/Berlin")
    assert page.locator("#schedule-preview li").count() == 5
    page.fill("#id_cron", "99 6 * * *")
    page.wait_for_selector("#schedule-preview >> text=not a cron expression")
    page.fill("#id_cron", "15 6 * * 1-5")
    page.fill("#id_var_area", "docs")
    page.click("button:has-text('Save schedule')")
    page.wait_for_selector(".toast >> text=Scheduled Tidy every weekday.")
    schedule = Schedule.objects.get()
    assert schedule.cron == "15 6 * * 1-5"

    page.click("#schedule-state >> text=Edit")
    page.select_option("#id_cadence", "daily")
    page.fill("#id_time_of_day", "07:45")
    page.click("button:has-text('Save schedule')")
    page.wait_for_selector("text=45 7 * * *")
    # Next runs read in the schedule's zone (December in Berlin: CET).
    page.wait_for_selector(".next-runs >> text=07:45 CET")
    url = page.url

    page.click("button:has-text('Pause')")
    page.wait_for_selector("#schedule-status >> text=Paused")
    page.wait_for_selector("text=None while paused.")
    assert page.url == url  # Swapped in place.
    assert not Schedule.objects.get().active
    page.click("button:has-text('Resume')")
    page.wait_for_selector("#schedule-status >> text=Active")
    schedule.refresh_from_db()
    assert schedule.active and schedule.next_run_at is not None
    assert schedule.next_run_at.astimezone(dt.UTC).minute == 45

    # Beat's tick when the clock reaches the slot (the hook the task calls every minute).
    slot = schedule.next_run_at
    assert schedules.run_due_schedules(now=slot - dt.timedelta(seconds=30)) == []
    (run,) = schedules.run_due_schedules(now=slot + dt.timedelta(seconds=5))
    assert run.slot == slot and run.status == "launched"
    # The history, which polls while the schedule is active, shows the run without a reload.
    page.wait_for_selector("#runs .run-launched >> text=On schedule")
    assert page.url == url
    assert page.locator("#runs .run-row").count() == 1
    screenshot("schedule-run")

    page.click("button:has-text('Run now')")
    page.wait_for_selector("#runs .run-row >> nth=1")
    assert ScheduleRun.objects.filter(trigger="manual").count() == 1
    assert re.search(r"Run now by member", page.inner_text("#runs"))
    assert LaunchTemplate.objects.get().launches.count() == 2
