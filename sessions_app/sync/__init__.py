"""The sync: one pass over a connection reconciles what Jules says into the cache tables.

engine: claims, phases, cadences and error handling. mapping: remote resources to rows,
and which remote records the portal can store. writers: idempotent upserts and the
transitions they observe. store: where rows go, `PostgreSQLStore` (COPY and merge
statements) or `OrmStore` (SQLite), chosen once per pass. pipeline: the writer thread.
The clients and error wording live in `sessions_app.connections.client`; the tasks that
run a pass, in `sessions_app.tasks` (the sync never imports them).
"""

from __future__ import annotations

from sessions_app.sync.engine import (
    claim,
    due_connections,
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
    "SyncReport",
    "claim",
    "due_connections",
    "sync_activities",
    "sync_connection",
    "sync_one_session",
    "sync_sources",
    "upsert_remote_session",
    "upsert_sessions",
]
