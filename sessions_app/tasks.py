"""Celery tasks. Thin by design: they take ids, and call the sync engine or the outbox.

Sync tasks go to the `sync` queue and action tasks to the `actions` queue (see
`julesweb/celery.py`), so a large sync never delays a person's approval or message.
"""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, time_limit=900, soft_time_limit=840)
def sync_connection(connection_id: int, full: bool = False) -> None:
    """List sessions, re-read due sessions and their new activities for one connection."""
    from sessions_app import sync

    sync.sync_connection(connection_id, full=full)


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
def schedule_syncs() -> None:
    """Beat's entry point: enqueue the connections whose sync is due."""
    from sessions_app import sync

    sync.schedule_due_syncs()


@shared_task(acks_late=True, time_limit=120, soft_time_limit=110)
def deliver_action(action_id: str) -> None:
    from sessions_app.outbox.delivery import deliver

    deliver(action_id)


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def sweep_outbox() -> None:
    """Redeliver actions that a lost task or a dead broker left pending."""
    from sessions_app.outbox.delivery import sweep

    sweep()


@shared_task(acks_late=True, time_limit=60, soft_time_limit=50)
def close_lockouts() -> None:
    """Write the closing audit entry of each sign-in lockout that has ended."""
    from sessions_app.audit.lockout import close_finished_lockouts

    close_finished_lockouts()
