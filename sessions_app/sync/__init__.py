"""The sync engine: see `engine` for one pass over a connection.

mapping: remote resources to rows. writers: idempotent bulk upserts and transitions.
engine: claims, phases, cadences and error handling.
"""

from __future__ import annotations

from sessions_app.sync.engine import (
    ConnectionUnusable,
    claim,
    client_for,
    describe_error,
    make_client,
    schedule_due_syncs,
    sync_activities,
    sync_connection,
    sync_one_session,
    sync_sources,
)
from sessions_app.sync.writers import (
    SyncReport,
    upsert_remote_session,
    upsert_sessions,
)

__all__ = [
    "ConnectionUnusable",
    "SyncReport",
    "claim",
    "client_for",
    "describe_error",
    "make_client",
    "schedule_due_syncs",
    "sync_activities",
    "sync_connection",
    "sync_one_session",
    "sync_sources",
    "upsert_remote_session",
    "upsert_sessions",
]
