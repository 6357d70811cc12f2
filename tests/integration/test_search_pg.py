"""Search on PostgreSQL: the generated tsvector, websearch syntax, ts_headline, trigram paths.

The same cases as tests/unit/test_search.py (SQLite, FTS5), on the real database, plus the
sync through the PostgreSQL store and its writer thread.
"""

from __future__ import annotations

import pytest
from django.db import connection

from sessions_app import sync
from sessions_app.models import Session, SessionSearchDocument
from sessions_app.search.query import parse
from sessions_app.search.selectors import search_sessions
from tests.factories import ConnectionFactory
from tests.unit.test_search import WORDS, make_rich_session


@pytest.fixture
def rich(cast):
    assert connection.vendor == "postgresql"
    return make_rich_session(ConnectionFactory(team=cast.team))


@pytest.mark.django_db
@pytest.mark.parametrize(("word", "field"), sorted(WORDS.items()))
def test_it_finds_a_session_by_a_word_of_each_field(cast, rich, word, field):
    [hit] = search_sessions(cast.viewer, parse(word)).hits
    assert hit.session.pk == rich.pk
    assert hit.field == field
    assert "<mark>" in hit.snippet and word in hit.snippet.lower()


@pytest.mark.django_db
def test_it_finds_by_path_prefix_phrase_and_stem_but_never_another_teams(cast, rich):
    theirs = make_rich_session(ConnectionFactory(team=cast.other_team), title="Zanzibar too")

    def found(user, text, path=""):
        return [h.session.pk for h in search_sessions(user, parse(text, path)).hits]

    assert found(cast.member, "path:src/bill") == [rich.pk]
    assert found(cast.member, "path:billing/exporter") == []
    assert found(cast.member, "", "src/billing/ex") == [rich.pk]
    assert found(cast.member, '"pelican is ready"') == [rich.pk]
    assert found(cast.member, '"ready pelican"') == []
    # English stemming: "exporters" finds "exporter".
    assert found(cast.member, "exporters") == [rich.pk]
    assert found(cast.member, "zanzibar -quokka") == []
    assert found(cast.outsider, "zanzibar") == [theirs.pk]
    assert found(cast.admin, "zanzibar") == [rich.pk]
    # Stop words alone and punctuation find nothing, without an error.
    assert found(cast.member, "the and") == [] and found(cast.member, "!!") == []


@pytest.mark.django_db
def test_a_snippet_escapes_everything_but_the_marks(cast):
    from tests.factories import SessionFactory

    session = SessionFactory(
        connection=ConnectionFactory(team=cast.team), title="<b>zanzibar</b> & co"
    )
    from sessions_app.search.documents import index_sessions

    index_sessions([session.pk])
    [hit] = search_sessions(cast.member, parse("zanzibar")).hits
    assert "<mark>zanzibar</mark>&lt;/b&gt; &amp; co" in hit.snippet
    assert "<b>" not in hit.snippet


@pytest.mark.django_db(transaction=True)
def test_the_postgresql_sync_keeps_the_index_in_step(cast):
    from jules_simulator import start_simulator

    sim = start_simulator(
        api_keys=["test-key"],
        manual_clock=True,
        seed=5,
        seed_sessions=150,
        activities_per_session=6,
    )
    try:
        conn = ConnectionFactory(team=cast.team, base_url=sim.base_url, api_key="test-key")
        sync.sync_connection(conn.pk, full=True)
        count = Session.objects.filter(connection=conn).count()
        assert count == 150
        assert SessionSearchDocument.objects.filter(connection=conn).count() == count
        # The new documents (written by COPY) copy what the window walks and filters on.
        copied = set(SessionSearchDocument.objects.values_list("pk", "create_time", "archived"))
        assert copied == set(Session.objects.values_list("pk", "create_time", "archived"))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM sessions_app_sessionsearchdocument "
                "WHERE search_vector IS NOT NULL AND length(search_vector) > 0"
            )
            assert cursor.fetchone()[0] == count
        # Built from the sync's memory on the writer thread, as the cache would build them.
        from sessions_app.search.documents import index_sessions

        assert index_sessions(Session.objects.values_list("pk", flat=True)) == 0
        stamps = dict(SessionSearchDocument.objects.values_list("pk", "indexed_at"))
        sync.sync_connection(conn.pk, full=True)
        assert dict(SessionSearchDocument.objects.values_list("pk", "indexed_at")) == stamps
    finally:
        sim.stop()


@pytest.mark.django_db
def test_the_postgresql_documents_follow_the_session_without_a_rewrite(cast, rich):
    indexed = SessionSearchDocument.objects.get(pk=rich.pk)
    Session.objects.filter(pk=rich.pk).update(archived=True)
    moved = SessionSearchDocument.objects.get(pk=rich.pk)
    assert moved.archived is True
    assert (moved.content_hash, moved.indexed_at) == (indexed.content_hash, indexed.indexed_at)
    assert search_sessions(cast.member, parse('"pelican is ready"')).hits == []
    found = search_sessions(cast.member, parse('"pelican is ready"'), {"archived": "only"})
    assert [h.session.pk for h in found.hits] == [rich.pk]
