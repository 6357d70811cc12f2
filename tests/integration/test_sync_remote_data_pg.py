"""The remote-data cases of tests/unit/test_sync_remote_data.py on PostgreSQL, outside a
test transaction, so the writes take the writer thread and PostgreSQL's column limits."""

from __future__ import annotations

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
