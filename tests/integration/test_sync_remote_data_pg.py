"""The remote-data cases of tests/unit/test_sync_remote_data.py on PostgreSQL, outside a
test transaction, so the writes take the writer thread and PostgreSQL's column limits."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.unit.test_sync_remote_data import (  # noqa: F401 - collected here again
    test_a_reused_id_is_a_new_session_and_the_old_row_keeps_its_history,
    test_it_fits_long_names_and_unknown_values_into_their_columns,
    test_it_skips_a_session_whose_id_it_cannot_use_and_syncs_the_rest,
    test_it_stores_lone_surrogates_in_any_text_as_replacement_characters,
    test_it_stores_times_at_the_calendars_edges_in_any_time_zone,
    test_one_empty_sources_answer_keeps_the_teams_repositories,
    world,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_runs_on_postgresql_with_the_writer_thread():
    from django.db import connection

    from sessions_app.sync.store import store_for

    assert connection.vendor == "postgresql"
    assert store_for().name == "postgresql"
    assert store_for().can_thread()


def test_two_writers_write_a_session_listed_on_two_pages_once(monkeypatch):
    """The pass's two writer threads write pages at once; a session that the listing
    shows on two pages (a listing that shifted between its pages) is written once, with
    its activities once, however the two transactions meet."""
    import threading
    import time

    from jules_simulator import start_simulator
    from sessions_app import sync
    from sessions_app.connections.client import sync_client
    from sessions_app.models import Activity, Session
    from sessions_app.sync import engine
    from tests.factories import ConnectionFactory

    sim = start_simulator(
        api_keys=["pages-key"],
        manual_clock=True,
        seed=5,
        seed_sessions=260,
        activities_per_session=3,
    )
    try:
        connection = ConnectionFactory(base_url=sim.base_url, api_key="pages-key")
        client = sync_client(connection)
        listed: list[list[str]] = []
        previous: list = []
        original = client.list_sessions

        def shifted(**kwargs):
            page = original(**kwargs)
            own = list(page.items)
            # The last five sessions of the page before, again, ahead of this page's own.
            page.items = [*previous[-5:], *own]
            previous[:] = own
            listed.append([s.id for s in page.items])
            return page

        monkeypatch.setattr(client, "list_sessions", shifted)
        threads: set[str] = set()
        write_page = engine.write_page
        first = threading.Event()

        def slow_first_page(*args, **kwargs):
            threads.add(threading.current_thread().name)
            if not first.is_set():
                first.set()
                # Hold the first page's writer so the next page goes to the second one.
                time.sleep(0.5)
            return write_page(*args, **kwargs)

        monkeypatch.setattr(engine, "write_page", slow_first_page)
        report = sync.sync_connection(connection.pk, full=True, client=client)
        client.close()
        jules_counts = {
            remote_id: len(held.activities)
            for remote_id, held in sim.state.account("pages-key").sessions.items()
        }
    finally:
        sim.stop()
    assert not report.errors, report.errors
    assert len(listed) == 3 and len(threads) == 2, (listed, threads)
    assert len(set(listed[1]) & set(listed[0])) == 5
    sessions = Session.objects.filter(connection=connection)
    assert sessions.count() == 260
    assert report.sessions_created == 260
    per_session: dict[str, int] = dict.fromkeys(jules_counts, 0)
    per_session |= Counter(
        Activity.objects.filter(session__connection=connection).values_list(
            "session__remote_id", flat=True
        )
    )
    # Every activity once, as many as Jules holds for each session.
    assert per_session == jules_counts
    assert {s.remote_id: s.activity_count for s in sessions} == jules_counts
