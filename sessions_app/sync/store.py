"""Where a sync pass stores what it read: one interface, two implementations.

The engine and the writers never ask which database they talk to; `store_for` does, once
per pass, and hands back the implementation that owns the vendor's bulk statements and the
activity bookkeeping (counts, newest activity, read marks):

- `PostgreSQLStore` (`store_postgresql`): COPY into staging tables and merge statements,
  and writes that may run on a writer thread with its own connection;
- `OrmStore` (`store_orm`): Django's ORM, for SQLite (development, unit tests) and as the
  reference the parity test compares the PostgreSQL store with.

Both give the same rows for the same passes (`tests/integration/test_sync_store_parity.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol

from django.db import connections, models

from jules import resources as jr
from sessions_app.models import JulesConnection, Session, SessionTransition
from sessions_app.sync.store_orm import OrmStore
from sessions_app.sync.store_postgresql import PostgreSQLStore

# Activities read for a session, in the order they came.
Fetched = list[tuple[Session, list[jr.Activity]]]


class SyncStore(Protocol):
    name: str

    def can_thread(self) -> bool:
        """Whether writes may run on a writer thread with a connection of its own."""

    def insert_rows(self, model: type[models.Model], rows: Sequence[models.Model]) -> None:
        """Insert rows; rows that collide with a unique constraint are skipped."""

    def update_rows(
        self, model: type[models.Model], rows: Sequence[models.Model], names: Sequence[str]
    ) -> None:
        """Write the named fields of rows that exist (by primary key)."""

    def insert_sessions(self, rows: Sequence[Session], now: dt.datetime) -> dict[str, int]:
        """Insert new sessions, skipping those another writer inserted first, each inserted
        one with its DISCOVERED transition; (remote id: id) of the rows inserted."""

    def prepare_activities(
        self,
        connection: JulesConnection,
        fetched: Fetched,
        first_sight: set[int],
        booked: set[int],
    ) -> Any:
        """A batch for `apply_activities`, built without a query (it runs while the last
        batch writes). `first_sight`: sessions created by this pass (no activity
        transitions); `booked`: sessions inserted with their bookkeeping already set."""

    def apply_activities(self, batch: Any) -> tuple[int, list[SessionTransition]]:
        """Insert the batch's new activities and move every session's count, newest
        activity and read mark; the number inserted and the transitions to record."""


def store_for(alias: str = "default") -> SyncStore:
    """The store for the database behind `alias`: the only place that asks its vendor."""
    if connections[alias].vendor == "postgresql":
        return PostgreSQLStore()
    return OrmStore()
