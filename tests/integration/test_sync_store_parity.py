"""Both sync stores, on PostgreSQL, write the same rows for the same passes.

Two connections of two teams read one simulator account; the clock only moves between the
passes, so both see the same answers. One syncs through `PostgreSQLStore` (COPY, merge
statements, the writer thread), the other through `OrmStore`; after every pass every row
of the tables the sync writes is compared, with ids mapped to remote ids and the
connection's own columns (team, connection, the wall-clock stamps) left out.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.db import models

from jules.client import JulesClient
from jules_simulator import start_simulator
from sessions_app import sync
from sessions_app.models import (
    Activity,
    AuditEntry,
    JulesConnection,
    Session,
    SessionOutput,
    SessionTransition,
    Source,
)
from sessions_app.sync.store_orm import OrmStore
from sessions_app.sync.store_postgresql import PostgreSQLStore
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db(transaction=True)
KEY = "parity-key"
# Columns that name the connection or the moment of writing, not what was written.
OWN = {"id", "team", "connection", "synced_at", "next_poll_at", "observed_at"}


def _rows(model: type[models.Model], connection: JulesConnection) -> Counter[tuple[Any, ...]]:
    remote_ids = dict(Session.objects.filter(connection=connection).values_list("id", "remote_id"))
    queryset: models.QuerySet[Any]
    if model is Session:
        queryset = Session.objects.filter(connection=connection)
    elif model is Source:
        queryset = Source.objects.filter(connection=connection)
    else:
        queryset = model._default_manager.filter(session__connection=connection)
    names = [f.attname for f in model._meta.concrete_fields if f.name not in OWN]
    rows: Counter[tuple[Any, ...]] = Counter()
    for values in queryset.values(*names):
        if "session_id" in values:
            values["session_id"] = remote_ids[values["session_id"]]
        rows[tuple(sorted((k, repr(v)) for k, v in values.items()))] += 1
    return rows


def _audit(connection: JulesConnection) -> Counter[tuple[Any, ...]]:
    remote_ids = {
        str(pk): remote_id
        for pk, remote_id in Session.objects.filter(connection=connection).values_list(
            "id", "remote_id"
        )
    }
    return Counter(
        (action, remote_ids.get(target_id), label, repr(sorted(details.items())))
        for action, target_id, label, details in AuditEntry.objects.filter(
            team=connection.team, action__startswith="sync."
        ).values_list("action", "target_id", "target_label", "details")
    )


def _assert_same(a: JulesConnection, b: JulesConnection) -> None:
    for model in (Session, Activity, SessionOutput, SessionTransition, Source):
        rows_a, rows_b = _rows(model, a), _rows(model, b)
        assert rows_a, f"no {model.__name__} rows to compare"
        assert rows_a == rows_b, (
            f"{model.__name__}: only PostgreSQLStore {list(rows_a - rows_b)[:2]}, "
            f"only OrmStore {list(rows_b - rows_a)[:2]}"
        )
    assert _audit(a) == _audit(b)


def test_both_stores_write_the_same_rows_for_the_same_passes(cast):
    sim = start_simulator(
        host="127.0.0.1",
        api_keys=[KEY],
        manual_clock=True,
        seed=17,
        seed_sessions=240,
        activities_per_session=6,
    )
    try:
        pg = ConnectionFactory(team=cast.team, base_url=sim.base_url, api_key=KEY)
        orm = ConnectionFactory(team=cast.other_team, base_url=sim.base_url, api_key=KEY)

        def both(**options: Any) -> None:
            reports = []
            for connection, store in ((pg, PostgreSQLStore()), (orm, OrmStore())):
                JulesConnection.objects.filter(pk=connection.pk).update(last_list_at=None)
                report = sync.sync_connection(connection.pk, store=store, **options)
                assert report.errors == []
                reports.append(report)
            counts = [
                (r.sessions_created, r.sessions_updated, r.activities_created, r.transitions)
                for r in reports
            ]
            assert counts[0] == counts[1]
            _assert_same(pg, orm)

        # The initial sync.
        both(full=True)
        # A re-sync with changes: new sessions that move through plans, questions,
        # failures and pull requests.
        client = JulesClient(KEY, sim.base_url)
        created = [
            client.create_session(
                prompt=f"Task {n} [sim:{scenario}]",
                source="sources/github/acme/billing",
                starting_branch="main",
                require_plan_approval=n % 2 == 0,
                automation_mode="AUTO_CREATE_PR",
            )
            for n, scenario in enumerate(["happy", "question", "failure step=1", "happy"] * 3)
        ]
        sim.advance(90)
        both(full=True)
        # New activities of known sessions, read incrementally by a pass that is not full.
        for remote in created:
            if client.get_session(remote.id).state == "AWAITING_PLAN_APPROVAL":
                client.approve_plan(remote.id)
        sim.advance(1200)
        both()
        # A deletion on Jules.
        client.delete_session(created[0].id)
        sim.advance(5)
        both(full=True)
        assert Session.objects.filter(connection=pg, deleted_remotely=True).count() == 1
        assert Activity.objects.filter(session__connection=pg).count() > 240 * 6
    finally:
        sim.stop()
