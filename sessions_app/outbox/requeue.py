"""Rows first, tasks second: which due rows the periodic sweeps hand to a task again.

The outbox and the notification deliveries share one shape: a row is pending with a due
time, a task takes its id, and a sweep covers what a lost task or a dead broker left. Each
row records when a task for it was last published (`enqueued_at`, the time that task
becomes runnable), so a sweep publishes only for rows no task is holding: a burst of a
thousand deliveries costs a thousand tasks, not a thousand more every 30 s
(docs/performance.md, "Notifications"). A publish that fails clears the mark, so a dead
broker still loses nothing; a task that Redis lost is published again once its mark is
older than REQUEUE_AFTER.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)

# Longer than any row should wait in the queue behind others (a burst of thousands drains
# in well under a minute), so only a lost task's row is published twice.
REQUEUE_AFTER = dt.timedelta(seconds=120)
BATCH = 500
# A sweep stops after this many, so that it ends well inside its time limit.
MOST_PER_SWEEP = 20_000


def mark_enqueued(model: type[models.Model], ids: Iterable[Any], runnable_at: dt.datetime) -> None:
    """Record that a task for these rows was published (and may run from `runnable_at`)."""
    ids = list(ids)
    if ids:
        model._default_manager.filter(pk__in=ids).update(enqueued_at=runnable_at)


def publish(task: Any, row_id: str, *, countdown: float = 0.0) -> bool:
    """Publish one task for a row; False (logged) when the broker refused it."""
    try:
        if countdown > 0:
            task.apply_async((row_id,), countdown=countdown)
        else:
            task.delay(row_id)
    except Exception:  # A dead broker only delays it until the sweep.
        logger.warning("Could not enqueue %s(%s); the periodic sweep will.", task.name, row_id)
        return False
    return True


def publish_marked(
    model: type[models.Model], task: Any, row_id: str, *, countdown: float = 0.0
) -> bool:
    """Publish one task for a row and record it, so the sweep leaves the row alone."""
    if not publish(task, row_id, countdown=countdown):
        return False
    mark_enqueued(model, [row_id], timezone.now() + dt.timedelta(seconds=countdown))
    return True


def publish_after_commit(model: type[models.Model], task: Any, row_id: str) -> None:
    """`publish_marked` once the current transaction commits (the row exists by then)."""
    transaction.on_commit(lambda: publish_marked(model, task, row_id))


def enqueue_due(
    model: type[models.Model],
    task: Any,
    *,
    pending: str,
    order_by: str,
    now: dt.datetime | None = None,
) -> int:
    """Publish a task for every due pending row that no queued task holds; how many.

    Rows are claimed by marking them in a short transaction (skipping rows another sweep
    has locked), then published; a failed publish clears the mark again.
    """
    now = now or timezone.now()
    stale = now - REQUEUE_AFTER
    unheld = Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)
    total = 0
    while total < MOST_PER_SWEEP:
        with transaction.atomic():
            ids = [
                str(pk)
                for pk in model._default_manager.select_for_update(skip_locked=True)
                .filter(unheld, status=pending, next_attempt_at__lte=now)
                .order_by(order_by)
                .values_list("pk", flat=True)[:BATCH]
            ]
            mark_enqueued(model, ids, now)
        if not ids:
            break
        for n, row_id in enumerate(ids):
            if not publish(task, row_id):
                # The broker is down: the rest waits for the next sweep, unmarked.
                model._default_manager.filter(pk__in=ids[n:]).update(enqueued_at=None)
                return total + n
        total += len(ids)
        if len(ids) < BATCH:
            break
    return total
