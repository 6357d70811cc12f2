"""Opening outbox actions: the row and its audit entry in the caller's transaction, and
delivery enqueued once that transaction commits (docs/architecture.md, "Durable actions")."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from sessions_app import tasks
from sessions_app.audit import chain as audit
from sessions_app.audit.actions import session_action
from sessions_app.audit.chain import Target
from sessions_app.models import JulesConnection, OutboxAction, Session
from sessions_app.outbox import requeue

logger = logging.getLogger(__name__)


def after_commit(task: Any, *args: Any) -> None:
    """Enqueue a task once the current transaction commits, tolerating a dead broker."""

    def send() -> None:
        # A dead broker must not lose the work: the rows are committed and the outbox
        # sweep (or the sync schedule) picks them up, so the failure is logged, not raised.
        try:
            task.delay(*args)
        except Exception:  # The broker being down is exactly the case handled here.
            logger.warning("Could not enqueue %s%r; the periodic sweep will.", task.name, args)

    transaction.on_commit(send)


def open_action(
    *,
    user: Any,
    session: Session | None,
    connection: JulesConnection,
    kind: str,
    payload: dict[str, Any],
    details: dict[str, Any],
    request: HttpRequest | None,
) -> OutboxAction:
    """The outbox row and its audit entry; call inside a transaction."""
    action = OutboxAction.objects.create(
        team_id=connection.team_id,
        connection=connection,
        session=session,
        actor=user,
        kind=kind,
        payload=payload,
    )
    audit.record(
        session_action(kind),
        actor=user,
        team=connection.team_id,
        target=Target.of_session(session) if session else Target.of_connection(connection),
        details={**details, "action_id": str(action.id)},
        request=request,
    )
    requeue.publish_after_commit(OutboxAction, tasks.deliver_action, str(action.id))
    return action
