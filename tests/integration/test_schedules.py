"""Schedules on the real PostgreSQL, Redis and Celery workers: every due slot runs exactly
once, whether ticks race, a worker dies mid-way or beat repeats itself (docs/templates.md)."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading

import pytest
from django.db import connection
from django.utils import timezone

from sessions_app.launch_templates import schedules, services
from sessions_app.models import OutboxAction, Schedule, ScheduleRun, TemplateLaunch
from tests.integration.conftest import wait_for

SCHEDULES = 6


def _schedules(cast, connection):
    template = services.template_create(
        user=cast.member,
        team=cast.team,
        content=services.TemplateContent(name="Tidy", prompt="Tidy {{ area }}"),
    )
    made = []
    for n in range(SCHEDULES):
        made.append(
            schedules.schedule_create(
                user=cast.member,
                template=template,
                spec=schedules.ScheduleSpec(
                    name=f"Schedule {n}",
                    connection=connection,
                    cadence="cron",
                    cron="* * * * *",
                    variables={"area": f"area {n}"},
                    skip_if_running=False,
                ),
            )
        )
    return made


def _make_due(minutes_ago: int = 3) -> dt.datetime:
    """Make a slot a few minutes ago due, of an expression whose next slot is a year away,
    so that a test crossing a minute on the wall clock meets no second, legitimate slot."""
    slot = timezone.now().replace(second=0, microsecond=0) - dt.timedelta(minutes=minutes_ago)
    cron = f"{slot.minute} {slot.hour} {slot.day} {slot.month} *"
    Schedule.objects.update(next_run_at=slot, cron=cron)
    return slot


def _assert_once_each(slot_after: dt.datetime) -> None:
    for schedule in Schedule.objects.all():
        runs = list(ScheduleRun.objects.filter(schedule=schedule, slot__gte=slot_after))
        assert len(runs) == 1, (schedule.name, [r.slot for r in runs])
        assert runs[0].status == "launched", runs[0].reason
        assert runs[0].launches.count() == 1
    assert TemplateLaunch.objects.count() == OutboxAction.objects.filter(kind="launch").count()


@pytest.mark.django_db(transaction=True)
def test_racing_ticks_run_each_due_slot_once(cast, sim_connection, caplog):
    _schedules(cast, sim_connection)
    first = _make_due()
    now = timezone.now()
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def tick() -> None:
        try:
            barrier.wait()
            schedules.run_due_schedules(now=now)
        except BaseException as exc:  # Reported below, with the thread's failure.
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=tick) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    # A tick logs and skips a schedule that failed; none may have.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    _assert_once_each(first)
    # A tick that read a stale next slot (the schedule moved back to it) runs nothing again.
    Schedule.objects.update(next_run_at=first)
    schedules.run_due_schedules(now=now)
    _assert_once_each(first)


def test_workers_ticking_through_a_killed_worker_lose_and_double_nothing(
    cast, sim_connection, workers
):
    from sessions_app import tasks

    _schedules(cast, sim_connection)
    first = _make_due()
    # Hourly at the due slot's minute: a slow run that crosses a minute boundary must not
    # make a second, legitimate slot due.
    Schedule.objects.update(cron=f"{first.minute} * * * *")
    w1 = workers.start("w1", queues="actions", concurrency=2)
    workers.start("w2", queues="actions", concurrency=2)
    for _ in range(6):
        tasks.run_due_schedules.delay()
    # One worker dies (SIGKILL: no cleanup) while ticks are in flight; beat goes on ticking.
    workers.kill(w1, signal.SIGKILL)
    for _ in range(4):
        tasks.run_due_schedules.delay()
    wait_for(lambda: ScheduleRun.objects.filter(slot__gte=first).count() >= SCHEDULES, 90)
    # The worker comes back and beat, restarted too, repeats the same minute's ticks.
    workers.start("w1b", queues="actions", concurrency=2)
    for _ in range(4):
        tasks.run_due_schedules.delay()
    wait_for(lambda: not _busy(), 60)
    _assert_once_each(first)
    # The workers delivered each launch to the simulator; the next tick links the sessions.
    wait_for(lambda: not OutboxAction.objects.exclude(status="done").exists(), 90)
    schedules.run_due_schedules(now=first)
    launches = TemplateLaunch.objects.select_related("session")
    assert all(launch.session is not None for launch in launches)
    prompts = sorted(launch.session.prompt for launch in launches)
    assert prompts == sorted(f"Tidy area {n}" for n in range(SCHEDULES))


def _busy() -> bool:
    from julesweb.celery import app

    active = app.control.inspect(timeout=1.0).active() or {}
    reserved = app.control.inspect(timeout=1.0).reserved() or {}
    return any(active.values()) or any(reserved.values())
