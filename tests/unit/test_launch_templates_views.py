"""The template and schedule pages through the test client (docs/templates.md)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from sessions_app.launch_templates import schedules
from sessions_app.models import (
    LaunchTemplate,
    LaunchTicket,
    OutboxAction,
    Schedule,
    ScheduleRun,
    TemplateLaunch,
)
from tests.factories import ConnectionFactory, SessionFactory, SourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sources(cast):
    connection = ConnectionFactory(team=cast.team, label="Main account")
    return connection, [SourceFactory(connection=connection, repo=n) for n in ("api", "web", "cli")]


def _create(client, cast, sources, **extra):
    data = {
        "team": cast.team.pk,
        "name": "Bump",
        "prompt": "Bump {{ package }} in {{ repo }}",
        "title_pattern": "{{ repo }}: bump {{ package }}",
        "repositories": [s.name for s in sources[1]],
        "require_plan_approval": "on",
        **extra,
    }
    return client.post(reverse("sessions_app:template-create"), data)


def test_it_creates_searches_and_fans_out_a_template(client, cast, sources):
    client.force_login(cast.member)
    response = _create(client, cast, sources)
    template = LaunchTemplate.objects.get()
    assert response.status_code == 302
    listing = client.get(reverse("sessions_app:template-list"), {"q": "bump {{ package"})
    assert "Bump" in listing.content.decode()
    assert (
        "Bump"
        not in client.get(
            reverse("sessions_app:template-list"), {"q": "nothing like it"}
        ).content.decode()
    )
    url = reverse("sessions_app:template-launch", args=[template.pk])
    page = client.get(url).content.decode()
    assert "Launch one per repository" in page and 'name="var_package"' in page
    missing = client.post(url, {"connection": sources[0].pk, "repositories": [sources[1][0].name]})
    assert missing.status_code == 200 and "Fill in package." in missing.content.decode()
    assert not OutboxAction.objects.exists()
    done = client.post(
        url,
        {
            "connection": sources[0].pk,
            "repositories": [s.name for s in sources[1]],
            "var_package": "requests",
        },
    )
    assert done.status_code == 302 and done["Location"].endswith("#launches")
    assert TemplateLaunch.objects.count() == 3
    titles = sorted(a.payload["title"] for a in OutboxAction.objects.all())
    assert titles == [
        "acme/api: bump requests",
        "acme/cli: bump requests",
        "acme/web: bump requests",
    ]
    detail_url = reverse("sessions_app:template-detail", args=[template.pk])
    detail = client.get(detail_url).content.decode()
    assert detail.count('class="launch-row"') == 3
    # The launches poll while they are on their way, and stop once Jules has them.
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "launches"}
    polled = client.get(detail_url, **headers)
    assert polled.status_code == 200 and 'hx-trigger="every 3s"' in polled.content.decode()
    for action in OutboxAction.objects.all():
        session = SessionFactory(
            connection=sources[0], title=f"Made for {action.payload['source']}"
        )
        OutboxAction.objects.filter(pk=action.pk).update(status="done", session=session)
    last = client.get(detail_url, **headers)
    assert last.status_code == 286 and "every 3s" not in last.content.decode()
    assert last.content.decode().count("Made for sources/github/acme/") == 3


def test_editing_makes_a_version_and_the_session_page_names_it(client, cast, sources):
    client.force_login(cast.member)
    _create(client, cast, sources, repositories=[sources[1][0].name])
    template = LaunchTemplate.objects.get()
    edit = reverse("sessions_app:template-edit", args=[template.pk])
    client.post(
        edit,
        {
            "name": "Bump",
            "prompt": "Upgrade {{ package }}",
            "repositories": [sources[1][0].name],
            "require_plan_approval": "on",
        },
    )
    template.refresh_from_db()
    assert template.current.number == 2
    assert set(template.current.changed) == {"prompt", "title_pattern"}
    detail = client.get(reverse("sessions_app:template-detail", args=[template.pk]))
    assert "changed prompt, title pattern</summary>" in detail.content.decode()
    client.post(
        reverse("sessions_app:template-launch", args=[template.pk]),
        {"connection": sources[0].pk, "repositories": [sources[1][0].name], "var_package": "x"},
    )
    launch = TemplateLaunch.objects.get()
    session = SessionFactory(connection=sources[0])
    OutboxAction.objects.filter(pk=launch.action_id).update(session=session, status="done")
    page = client.get(reverse("sessions_app:session-detail", args=[session.pk])).content.decode()
    assert "From template" in page and "Bump</a> v2" in page


def test_save_as_template_carries_the_launch_form_over(client, cast, sources):
    client.force_login(cast.member)
    response = client.post(
        reverse("sessions_app:template-create"),
        {
            "from_launch": "1",
            "connection": sources[0].pk,
            "source": sources[1][2].pk,
            "branch": "develop",
            "prompt": "Tidy the README",
            "title": "Docs",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200 and not LaunchTemplate.objects.exists()
    assert "Tidy the README" in html and 'value="develop"' in html
    assert f'value="{sources[1][2].name}" selected' in html


def test_a_schedule_previews_saves_pauses_resumes_and_runs_now(client, cast, sources):
    client.force_login(cast.member)
    _create(client, cast, sources)
    template = LaunchTemplate.objects.get()
    preview = client.get(
        reverse("sessions_app:schedule-preview"),
        {"cadence": "weekly", "time_of_day": "07:30", "weekday": "1", "timezone": "Europe/Berlin"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "30 7 * * 1 in Europe/Berlin" in preview and preview.count("<li>") == 5
    # Shown in the schedule's zone: 07:30 in Berlin, whatever the portal's zone.
    assert re.search(r"Mon \d{4}-\d\d-\d\d 07:30 CES?T", preview)
    bad = client.get(
        reverse("sessions_app:schedule-preview"), {"cadence": "cron", "cron": "99 * * * *"}
    ).content.decode()
    assert "not a cron expression" in bad
    form = {
        "name": "Weekly bump",
        "connection": sources[0].pk,
        "cadence": "cron",
        "cron": "0 6 * * 1-5",
        "timezone": "Europe/Berlin",
        "var_package": "django",
        "skip_if_running": "on",
    }
    new = reverse("sessions_app:schedule-create", args=[template.pk])
    assert "Fill in package." in client.post(new, {**form, "var_package": ""}).content.decode()
    shown = client.post(new, {**form, "preview": "1"})
    assert shown.status_code == 200 and not Schedule.objects.exists()
    assert client.post(new, form).status_code == 302
    schedule = Schedule.objects.get()
    assert schedule.cron == "0 6 * * 1-5" and schedule.next_run_at is not None
    edit = reverse("sessions_app:schedule-edit", args=[schedule.pk])
    client.post(edit, {**form, "cadence": "daily", "time_of_day": "05:45"})
    schedule.refresh_from_db()
    assert schedule.cron == "45 5 * * *"
    active = reverse("sessions_app:schedule-active", args=[schedule.pk])
    paused = client.post(active, {"active": "0"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Resume" in paused and "None while paused" in paused
    resumed = client.post(active, {"active": "1"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Pause" in resumed
    client.post(reverse("sessions_app:schedule-run-now", args=[schedule.pk]))
    run = ScheduleRun.objects.get()
    assert run.status == "launched" and run.launches.count() == 3
    detail = client.get(
        reverse("sessions_app:schedule-detail", args=[schedule.pk])
    ).content.decode()
    assert "Run now" in detail and "run-launched" in detail
    # The history polls: unchanged is a 204, a new run a fresh fragment, paused the last one.
    detail_url = reverse("sessions_app:schedule-detail", args=[schedule.pk])
    version = re.search(r"/schedules/\d+/\?v=([0-9a-f]+)", detail)
    assert version is not None
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "runs"}
    assert client.get(detail_url, {"v": version[1]}, **headers).status_code == 204
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=run.slot.replace(year=2020))
    schedules.run_due_schedules()
    fresh = client.get(detail_url, {"v": version[1]}, **headers)
    assert fresh.status_code == 200 and fresh.content.decode().count("run-row") == 2
    for launch in TemplateLaunch.objects.all():
        OutboxAction.objects.filter(pk=launch.action_id).update(status="failed")
    client.post(active, {"active": "0"})
    assert client.get(detail_url, {"v": version[1]}, **headers).status_code == 286


def test_someone_elses_schedule_is_read_only_for_a_member(client, cast, sources):
    client.force_login(cast.admin)
    _create(client, cast, sources)
    template = LaunchTemplate.objects.get()
    client.post(
        reverse("sessions_app:schedule-create", args=[template.pk]),
        {
            "name": "Admin's",
            "connection": sources[0].pk,
            "cadence": "daily",
            "time_of_day": "09:00",
            "timezone": "UTC",
            "var_package": "x",
        },
    )
    schedule = Schedule.objects.get()
    client.force_login(cast.member)
    page = client.get(reverse("sessions_app:schedule-detail", args=[schedule.pk])).content.decode()
    assert "Run now" not in page
    response = client.post(
        reverse("sessions_app:schedule-active", args=[schedule.pk]), {"active": "0"}
    )
    assert response.status_code == 403
    schedule.refresh_from_db()
    assert schedule.active


def test_the_operator_reads_templates_schedules_and_runs_in_the_admin(client, cast, sources):
    from tests.factories import UserFactory

    client.force_login(cast.member)
    _create(client, cast, sources)
    template = LaunchTemplate.objects.get()
    client.force_login(UserFactory(username="operator", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:sessions_app_launchtemplate_change", args=[template.pk]))
    assert page.status_code == 200 and "Bump {{ package }}" in page.content.decode()
    for name in ("launchtemplate", "schedule", "schedulerun"):
        assert client.get(reverse(f"admin:sessions_app_{name}_changelist")).status_code == 200
        assert client.get(reverse(f"admin:sessions_app_{name}_add")).status_code == 403
    edit = reverse("admin:sessions_app_launchtemplate_change", args=[template.pk])
    assert client.post(edit, {"name": "Renamed"}).status_code == 403
    assert LaunchTemplate.objects.get().name == "Bump"


def test_the_pages_read_a_constant_number_of_queries(client, cast, sources):
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(cast.member)
    _create(client, cast, sources)
    template = LaunchTemplate.objects.get()
    schedule = schedules.schedule_create(
        user=cast.member,
        template=template,
        spec=schedules.ScheduleSpec(
            name="Often",
            connection=sources[0],
            cadence="cron",
            cron="* * * * *",
            variables={"package": "x"},
            skip_if_running=False,
        ),
    )
    urls = [
        reverse("sessions_app:schedule-detail", args=[schedule.pk]),
        reverse("sessions_app:template-detail", args=[template.pk]),
        reverse("sessions_app:template-list"),
        reverse("sessions_app:schedule-list"),
    ]

    def counts():
        # Each round starts from the same cold cache: a warm-up would hold only for the
        # header's count's time to live, which a slow machine outlasts.
        cache.clear()
        found = []
        for url in urls:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200
            found.append(len(queries))
        return found

    def run(minute):
        Schedule.objects.filter(pk=schedule.pk).update(
            next_run_at=timezone.now().replace(second=0, microsecond=0, year=2030, minute=minute)
        )
        schedules.run_due_schedules(
            now=timezone.now().replace(second=30, microsecond=0, year=2030, minute=minute)
        )

    run(0)
    few = counts()
    for minute in range(1, 8):
        run(minute)
    assert ScheduleRun.objects.count() == 8 and TemplateLaunch.objects.count() == 24
    assert counts() == few


def test_a_fan_out_may_start_each_session_on_any_connection_with_its_repository(
    client, cast, sources
):
    client.force_login(cast.member)
    _create(client, cast, sources)
    template = LaunchTemplate.objects.get()
    url = reverse("sessions_app:template-launch", args=[template.pk])
    assert 'name="any_connection"' in client.get(url).content.decode()
    data = {"connection": sources[0].pk, "var_package": "requests"}
    client.post(url, {**data, "repositories": [sources[1][0].name]})
    client.post(url, {**data, "repositories": [sources[1][1].name], "any_connection": "on"})
    tickets = {
        t.action.payload["source"]: t.any_connection
        for t in LaunchTicket.objects.select_related("action")
    }
    assert tickets == {sources[1][0].name: False, sources[1][1].name: True}
