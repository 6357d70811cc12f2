"""The Celery application shared by the web process, workers and beat."""

from __future__ import annotations

import os
import sys
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "julesweb.settings")

app = Celery("julesweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    # Unacknowledged until done, and re-queued when a worker dies, so that a killed worker
    # loses no sync or action; every task is idempotent, so a re-run is harmless.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_time_limit=900,
    task_soft_time_limit=840,
    task_default_queue="sync",
    # Two queues, so that a large sync never delays a person's approval or message.
    task_routes={
        "sessions_app.tasks.deliver_action": {"queue": "actions"},
        "sessions_app.tasks.sweep_outbox": {"queue": "actions"},
        # Notifications share the actions queue; each send is held to a short deadline.
        "sessions_app.tasks.fan_out_events": {"queue": "actions"},
        "sessions_app.tasks.deliver_notification": {"queue": "actions"},
        "sessions_app.tasks.sweep_notifications": {"queue": "actions"},
        "sessions_app.tasks.send_email_digests": {"queue": "actions"},
        "sessions_app.tasks.send_invitation": {"queue": "actions"},
        "sessions_app.tasks.sweep_invitations": {"queue": "actions"},
        "sessions_app.tasks.run_due_schedules": {"queue": "actions"},
        "sessions_app.tasks.tick_launch_queue": {"queue": "actions"},
        "sessions_app.tasks.*": {"queue": "sync"},
    },
    worker_hijack_root_logger=False,
    broker_connection_timeout=3,
    # A web request that enqueues a task while the broker is down must not hang or fail:
    # a publish retries once, then gives up (in 0.3 s when Redis is down, about 6 s when
    # it hangs, with the socket timeouts of settings.CELERY_BROKER_TRANSPORT_OPTIONS), the
    # caller logs it, and the outbox sweep delivers the action once the broker is back
    # (docs/reliability.md, the Redis drill). The retry is what survives a Redis restart
    # with stale pooled connections.
    task_publish_retry_policy={
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    },
)
app.conf.beat_schedule = {
    # The scheduler runs often and cheaply; each connection's own cadences (in settings)
    # decide whether a sync is due, so the beat schedule needs no per-connection entries.
    # Every second, so a connection's changes pass (SYNC_CHANGES_SECONDS) starts on time.
    "schedule-syncs": {"task": "sessions_app.tasks.schedule_syncs", "schedule": 1.0},
    "sweep-outbox": {"task": "sessions_app.tasks.sweep_outbox", "schedule": 30.0},
    "sweep-notifications": {"task": "sessions_app.tasks.sweep_notifications", "schedule": 30.0},
    "close-lockouts": {"task": "sessions_app.tasks.close_lockouts", "schedule": 60.0},
    "send-email-digests": {"task": "sessions_app.tasks.send_email_digests", "schedule": 60.0},
    "sweep-invitations": {"task": "sessions_app.tasks.sweep_invitations", "schedule": 60.0},
    # Each due slot is claimed by a unique row, so extra or restarted beats double nothing.
    "run-due-schedules": {"task": "sessions_app.tasks.run_due_schedules", "schedule": 60.0},
    # Starts queued launches as slots free: docs/launch-queue.md
    "tick-launch-queue": {"task": "sessions_app.tasks.tick_launch_queue", "schedule": 2.0},
}
app.autodiscover_tasks()


# Workers hand the GIL over every millisecond instead of every five: the sync's writer
# thread wakes from each round trip to PostgreSQL while the downloading threads are busy,
# and would otherwise wait up to the whole interval each time (docs/performance.md).
WORKER_SWITCH_INTERVAL = 0.001


def apply_worker_settings() -> None:
    """What a process that runs syncs sets for itself: a worker, `jules_sync`, a benchmark."""
    sys.setswitchinterval(WORKER_SWITCH_INTERVAL)


@worker_init.connect
@worker_process_init.connect
def _on_worker_start(**kwargs: Any) -> None:
    apply_worker_settings()


@worker_init.connect
def _lower_sync_priority(sender: Any = None, **kwargs: Any) -> None:
    """A sync-only worker yields the CPU to the web server (docs/operations.md#cpu-priority-of-the-sync);
    its pool processes, forked later, inherit the priority."""
    from django.conf import settings

    from julesweb.priority import lower_sync_priority

    if sender is not None:
        lower_sync_priority(sender.app.amqp.queues.consume_from, settings.SYNC_WORKER_NICE)
