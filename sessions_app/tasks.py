"""Celery tasks. Thin by design: they take ids, and call the sync engine or the outbox.

Sync tasks go to the `sync` queue and action tasks to the `actions` queue (see
`julesweb/celery.py`), so a large sync never delays a person's approval or message.

Callers import this module at the top of theirs; the tasks import what they call inside
their bodies, so nothing that a task calls imports back into this module's import.
"""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, time_limit=900, soft_time_limit=840)
def sync_connection(connection_id: int, full: bool = False) -> None:
    """List sessions, re-read due sessions and their new activities for one connection."""
    from sessions_app import sync
    from sessions_app.launch_queue.gate import tick

    sync.sync_connection(connection_id, full=full)
    tick(connection_id)  # Sessions that ended free slots for queued launches at once.


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def sync_sources(connection_id: int) -> None:
    from sessions_app import sync

    sync.sync_sources(connection_id)


@shared_task(acks_late=True, time_limit=120, soft_time_limit=110)
def sync_session(session_id: int) -> None:
    """Re-read one session and its new activities now (after an action, for example)."""
    from sessions_app import sync

    sync.sync_one_session(session_id)


@shared_task(acks_late=True, time_limit=60, soft_time_limit=50)
def schedule_syncs() -> list[int]:
    """Beat's entry point: enqueue the connections whose sync is due; their ids."""
    from sessions_app import sync

    due = sync.due_connections()
    for connection_id in due:
        sync_connection.delay(connection_id)
    return due


@shared_task(acks_late=True, time_limit=120, soft_time_limit=110)
def deliver_action(action_id: str) -> None:
    from sessions_app.outbox.delivery import deliver

    deliver(action_id)


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def sweep_outbox() -> None:
    """Redeliver actions that a lost task or a dead broker left pending."""
    from sessions_app.outbox.delivery import sweep

    sweep()


@shared_task(acks_late=True, time_limit=120, soft_time_limit=110)
def fan_out_events() -> None:
    """Notifications and delivery rows for the events not yet fanned out."""
    from sessions_app.notifications.delivery import fan_out_pending

    fan_out_pending()


@shared_task(acks_late=True, time_limit=60, soft_time_limit=50)
def deliver_notification(delivery_id: str) -> None:
    from sessions_app.notifications.delivery import deliver

    deliver(delivery_id)


@shared_task(acks_late=True, time_limit=120, soft_time_limit=110)
def sweep_notifications() -> None:
    """Record stalls and overdue approvals; redeliver what a lost task left pending."""
    from sessions_app.notifications import delivery, events

    events.scan_waiting()
    delivery.sweep()


@shared_task(acks_late=True, time_limit=60, soft_time_limit=50)
def send_email_digests() -> None:
    """Open the digest of each person, team and period that has ended (one each)."""
    from sessions_app.notifications import digests

    digests.open_due()


@shared_task(acks_late=True, time_limit=60, soft_time_limit=50)
def close_lockouts() -> None:
    """Write the closing audit entry of each sign-in lockout that has ended."""
    from sessions_app.audit.lockout import close_finished_lockouts

    close_finished_lockouts()


@shared_task(
    acks_late=True,
    time_limit=60,
    soft_time_limit=50,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=10,
    max_retries=8,
)
def send_invitation(invitation_id: int) -> None:
    from sessions_app.identity.invitations import invitation_send

    invitation_send(invitation_id)


@shared_task(acks_late=True, time_limit=120, soft_time_limit=110)
def sweep_invitations() -> None:
    from sessions_app.identity.invitations import invitations_unsent

    for invitation_id in invitations_unsent():
        send_invitation.delay(invitation_id)


@shared_task(acks_late=True, time_limit=120, soft_time_limit=110)
def run_due_schedules() -> int:
    """Beat's entry point for schedules: run each due slot once; how many runs were made."""
    from sessions_app.launch_templates.schedules import run_due_schedules as run_due

    return len(run_due())


@shared_task(acks_late=True, time_limit=60, soft_time_limit=50)
def tick_launch_queue() -> int:
    """Start queued launches where a Jules account has room (docs/launch-queue.md)."""
    from sessions_app.launch_queue.gate import tick

    return tick()
