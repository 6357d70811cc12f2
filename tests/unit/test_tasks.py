"""The Celery tasks as beat and the web process publish them."""

from __future__ import annotations

from unittest import mock

import pytest

from julesweb.celery import app


def _portal_tasks() -> list[str]:
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if name.startswith("sessions_app."))


def test_every_task_has_a_soft_limit_below_its_hard_limit() -> None:
    names = _portal_tasks()
    assert "sessions_app.tasks.schedule_syncs" in names
    for name in names:
        task = app.tasks[name]
        assert task.time_limit, name
        assert task.soft_time_limit, name
        assert task.soft_time_limit < task.time_limit, name


@pytest.mark.parametrize("entry", sorted(app.conf.beat_schedule))
def test_beat_can_publish_each_scheduled_task(entry: str) -> None:
    """Beat publishes with `apply_async`; a task whose inherited soft limit exceeds its
    own hard limit is refused there, and the schedule silently never runs."""
    task = app.tasks[app.conf.beat_schedule[entry]["task"]]
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with mock.patch.object(task, "run") as run:
            task.apply_async()
    finally:
        app.conf.task_always_eager = eager
    run.assert_called_once_with()
