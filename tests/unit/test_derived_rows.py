"""Sessions cached before search and analytics existed get their rows after a migrate."""

from __future__ import annotations

from django.core.management import call_command

from sessions_app.models import SessionFacts, SessionSearchDocument
from sessions_app.runtime.derived import fill_missing
from sessions_app.search.query import parse
from sessions_app.search.selectors import search_sessions
from tests.factories import ConnectionFactory, SessionFactory


def test_it_fills_the_rows_of_sessions_cached_before_their_tables_after_a_migrate(cast):
    old = SessionFactory(connection=ConnectionFactory(team=cast.team), title="Quagmire upgrade")
    SessionSearchDocument.objects.filter(session=old).delete()
    SessionFacts.objects.filter(session=old).delete()
    assert search_sessions(cast.member, parse("quagmire")).hits == []

    call_command("migrate", interactive=False, verbosity=0)

    assert SessionSearchDocument.objects.filter(session=old).exists()
    assert SessionFacts.objects.filter(session=old).exists()
    assert [h.session.pk for h in search_sessions(cast.member, parse("quagmire")).hits] == [old.pk]
    # Once filled, nothing is left to do.
    assert fill_missing() == (0, 0)
