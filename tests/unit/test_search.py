"""Search across sessions on SQLite (FTS5): every field, path prefixes, scoping, the page.

The PostgreSQL half runs in tests/integration/test_search_pg.py with the same cases.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.http import QueryDict
from django.urls import reverse
from django.utils import timezone

from sessions_app import sync
from sessions_app.models import Session, SessionOutput, SessionSearchDocument
from sessions_app.search.documents import index_sessions, patch_paths
from sessions_app.search.forms import SearchForm
from sessions_app.search.query import parse, to_fts5
from sessions_app.search.selectors import marked, scoped_documents, search_sessions
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory

pytestmark = pytest.mark.django_db

PATCH = """diff --git a/src/billing/exporter.py b/src/billing/exporter.py
--- a/src/billing/exporter.py
+++ b/src/billing/exporter.py
@@ -1,2 +1,2 @@
-rounding = "halfeven"
+rounding = "quetzalcoatl"
"""
# A word of each field, and the field the result must name.
WORDS = {
    "zanzibar": "title",
    "quokka": "prompt",
    "marzipan": "plan steps",
    "pelican": "agent message",
    "tangerine": "user message",
    "grepwombat": "bash command or output",
    "quetzalcoatl": "patch",
    "axolotl": "pull request",
}


def make_rich_session(connection, **overrides):
    """A session holding a distinct word in every searchable field."""
    session = SessionFactory(
        connection=connection,
        title=overrides.get("title", "Zanzibar rounding"),
        prompt="Make the quokka exporter round half up",
        create_time=overrides.get("create_time", timezone.now() - dt.timedelta(days=1)),
    )
    ActivityFactory(
        session=session,
        kind="planGenerated",
        originator="agent",
        message="",
        plan_steps=[
            {"id": "1", "title": "Read the marzipan module", "description": "", "index": 0}
        ],
    )
    ActivityFactory(session=session, kind="agentMessaged", message="The pelican is ready.")
    ActivityFactory(
        session=session, kind="userMessaged", originator="user", message="Use tangerine."
    )
    ActivityFactory(
        session=session,
        kind="progressUpdated",
        message="",
        artifacts=[{"kind": "bashOutput", "command": "grep grepwombat -r .", "output": "3 hits"}],
    )
    SessionOutput.objects.create(
        session=session,
        position=0,
        kind=SessionOutput.Kind.PULL_REQUEST,
        url="https://github.com/acme/billing/pull/7",
        title="Axolotl rounding fix",
    )
    SessionOutput.objects.create(
        session=session, position=1, kind=SessionOutput.Kind.CHANGE_SET, patch=PATCH
    )
    index_sessions([session.pk])
    return session


@pytest.fixture
def rich(cast):
    return make_rich_session(ConnectionFactory(team=cast.team))


@pytest.mark.parametrize(("word", "field"), sorted(WORDS.items()))
def test_it_finds_a_session_by_a_word_of_each_field(cast, rich, word, field):
    results = search_sessions(cast.viewer, parse(word))
    assert [hit.session.pk for hit in results.hits] == [rich.pk]
    [hit] = results.hits
    assert hit.field == field
    assert "<mark>" in hit.snippet and word in hit.snippet.lower()


def test_it_finds_sessions_by_a_path_prefix_and_only_by_a_prefix(cast, rich):
    assert [h.session.pk for h in search_sessions(cast.member, parse("path:src/bill")).hits] == [
        rich.pk
    ]
    [hit] = search_sessions(cast.member, parse("", "src/billing/")).hits
    assert hit.field == "file path"
    assert str(hit.snippet) == "<mark>src/billing/</mark>exporter.py"
    # Not a prefix of the path, and paths are case-sensitive.
    assert search_sessions(cast.member, parse("path:billing/exporter")).hits == []
    assert search_sessions(cast.member, parse("path:SRC/billing")).hits == []
    # Words and a path together.
    assert len(search_sessions(cast.member, parse("zanzibar path:src/")).hits) == 1
    assert search_sessions(cast.member, parse("zanzibar path:docs/")).hits == []


def test_it_never_finds_a_session_of_another_team(cast, rich):
    theirs = make_rich_session(ConnectionFactory(team=cast.other_team), title="Zanzibar too")
    mine = search_sessions(cast.admin, parse("zanzibar"))
    assert [h.session.pk for h in mine.hits] == [rich.pk]
    outsider = search_sessions(cast.outsider, parse("zanzibar"))
    assert [h.session.pk for h in outsider.hits] == [theirs.pk]
    assert search_sessions(cast.outsider, parse("path:src/")).matched == 1


def test_it_understands_phrases_exclusions_and_or(cast, rich):
    other = SessionFactory(connection=rich.connection, title="Pelican care", prompt="feed it")
    index_sessions([other.pk])

    def found(text):
        return {h.session.pk for h in search_sessions(cast.member, parse(text)).hits}

    assert found("pelican") == {rich.pk, other.pk}
    assert found('"pelican is ready"') == {rich.pk}
    assert found('"ready pelican"') == set()
    assert found("pelican -zanzibar") == {other.pk}
    assert found("quokka or care") == {rich.pk, other.pk}


@pytest.mark.parametrize(
    "text", ['"unbalanced', "NEAR(a b)", "*", "a AND", "title:x", "^", "-", "or", '"" ""', "\x00"]
)
def test_it_treats_fts_syntax_as_words_and_never_fails(cast, rich, text):
    results = search_sessions(cast.member, parse(text))
    assert results.hits == [] or all(h.session.team_id == cast.team.pk for h in results.hits)


def test_fts_queries_quote_every_term():
    assert to_fts5('fix "half up" -legacy or NEAR') == '("fix" AND "half up") NOT "legacy"' or (
        to_fts5('fix "half up" -legacy or NEAR') == '("fix" AND ("half up" OR "NEAR")) NOT "legacy"'
    )
    assert to_fts5("-only -negative") == ""
    assert to_fts5("a:b") == '"a b"'


def test_it_ranks_a_title_match_above_a_patch_match_and_combines_with_filters(cast, rich):
    newer = SessionFactory(
        connection=rich.connection,
        title="Something else",
        prompt="Nothing",
        state="FAILED",
        create_time=timezone.now(),
    )
    ActivityFactory(session=newer, kind="agentMessaged", message="zanzibar once")
    index_sessions([newer.pk])
    results = search_sessions(cast.member, parse("zanzibar"))
    # The newer session matches only in a message; the title match ranks first.
    assert [h.session.pk for h in results.hits] == [rich.pk, newer.pk]
    assert {s: n for s, _, n in results.facets.states} == {"COMPLETED": 1, "FAILED": 1}
    failed = search_sessions(cast.member, parse("zanzibar"), {"state": ["FAILED"]})
    assert [h.session.pk for h in failed.hits] == [newer.pk]
    assert search_sessions(cast.member, parse("zanzibar"), {"repo": "acme/other"}).hits == []


def test_a_snippet_marks_only_the_matches_and_escapes_the_rest(cast):
    session = SessionFactory(
        connection=ConnectionFactory(team=cast.team),
        title='<img src=x onerror="alert(1)"> zanzibar & \x02co',
    )
    index_sessions([session.pk])
    [hit] = search_sessions(cast.member, parse("zanzibar")).hits
    assert "<img" not in hit.snippet
    assert (
        "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; <mark>zanzibar</mark> &amp;" in hit.snippet
    )
    assert hit.snippet.count("<mark>") == hit.snippet.count("</mark>") == 1
    assert str(marked("a \x02b")) == "a <mark>b</mark>"


def test_unchanged_documents_are_not_rewritten(cast, rich):
    before = SessionSearchDocument.objects.get(pk=rich.pk)
    assert index_sessions([rich.pk]) == 0
    ActivityFactory(session=rich, kind="agentMessaged", message="A new kiwi appears.")
    assert index_sessions([rich.pk]) == 1
    after = SessionSearchDocument.objects.get(pk=rich.pk)
    assert after.content_hash != before.content_hash
    assert search_sessions(cast.member, parse("kiwi")).matched == 1


def test_documents_follow_the_archive_flag_and_time_without_a_rewrite(cast, rich):
    indexed = SessionSearchDocument.objects.get(pk=rich.pk)
    assert (indexed.archived, indexed.create_time) == (False, rich.create_time)
    # The portal's archive writes the session only; the document follows (a trigger).
    Session.objects.filter(pk=rich.pk).update(
        archived=True, create_time=rich.create_time - dt.timedelta(days=40)
    )
    moved = SessionSearchDocument.objects.get(pk=rich.pk)
    assert moved.archived is True
    assert moved.create_time == rich.create_time - dt.timedelta(days=40)
    assert moved.content_hash == indexed.content_hash
    assert index_sessions([rich.pk]) == 0
    assert search_sessions(cast.member, parse("zanzibar")).hits == []
    only = search_sessions(cast.member, parse("zanzibar"), {"archived": "only"})
    assert [h.session.pk for h in only.hits] == [rich.pk]
    assert search_sessions(cast.member, parse("path:src/"), {"archived": "include"}).matched == 1


def test_the_document_window_applies_dates_and_connections(cast, rich):
    other = make_rich_session(
        ConnectionFactory(team=cast.team), create_time=timezone.now() - dt.timedelta(days=10)
    )
    day = timezone.localdate(rich.create_time)

    def found(filters):
        return [h.session.pk for h in search_sessions(cast.member, parse("zanzibar"), filters).hits]

    assert sorted(found({})) == sorted([rich.pk, other.pk])
    assert found({"created_after": day}) == [rich.pk]
    assert found({"created_before": day - dt.timedelta(days=1)}) == [other.pk]
    assert found({"connection": other.connection_id}) == [other.pk]
    # What the page's form sends keeps the walk on the documents.
    form = SearchForm(QueryDict("q=zanzibar&path=src%2F&archived=&state=&created_after="))
    assert scoped_documents(cast.member, form.cleaned_or_empty()) is not None
    assert scoped_documents(cast.member, {"q": "x", "repo": "acme/other"}) is None
    # A filter the document does not hold goes through the sessions, with the same result.
    assert found({"connection": other.connection_id, "repo": other.repo}) == [other.pk]


def test_the_patch_parser_reads_renames_and_new_files():
    patch = (
        "diff --git a/old/name.py b/new/name.py\n--- a/old/name.py\n+++ b/new/name.py\n"
        "diff --git a/added.txt b/added.txt\n--- /dev/null\n+++ b/added.txt\n"
    )
    assert patch_paths(patch) == {"old/name.py", "new/name.py", "added.txt"}


@pytest.fixture
def seeded(cast):
    from jules_simulator import start_simulator

    sim = start_simulator(
        api_keys=["test-key"], manual_clock=True, seed=5, seed_sessions=30, activities_per_session=6
    )
    connection = ConnectionFactory(team=cast.team, base_url=sim.base_url, api_key="test-key")
    yield connection
    sim.stop()


def test_the_sync_keeps_the_index_in_step(seeded, cast):
    sim_connection = seeded
    sync.sync_connection(sim_connection.pk, full=True)
    sessions = Session.objects.filter(connection=sim_connection)
    assert sessions.exists()
    assert SessionSearchDocument.objects.filter(connection=sim_connection).count() == (
        sessions.count()
    )
    # A word of a plan step the simulator wrote finds its session.
    step = next(
        step["title"]
        for steps in sessions.filter(activities__kind="planGenerated").values_list(
            "activities__plan_steps", flat=True
        )
        for step in steps
        if step.get("title")
    )
    word = max(step.split(), key=len).strip(".,:;()'\"`")
    results = search_sessions(cast.member, parse(word))
    assert results.matched >= 1
    # Documents built from the sync's memory are those the cache gives: none is stale.
    ids = list(sessions.values_list("pk", flat=True))
    assert index_sessions(ids) == 0
    # A second sync writes no document (the rest of "writes nothing" is test_sync's).
    stamps = dict(SessionSearchDocument.objects.values_list("pk", "indexed_at"))
    sync.sync_connection(sim_connection.pk, full=True)
    assert dict(SessionSearchDocument.objects.values_list("pk", "indexed_at")) == stamps


def test_the_sync_rewrites_the_documents_of_sessions_that_moved(cast):
    from jules_simulator import start_simulator

    sim = start_simulator(api_keys=["test-key"], manual_clock=True, seed=3)
    try:
        conn = ConnectionFactory(team=cast.team, base_url=sim.base_url, api_key="test-key")
        from jules.client import JulesClient

        client = JulesClient("test-key", sim.base_url)
        remote = client.create_session(
            prompt="Teach the narwhal exporter [sim:question]",
            source="sources/github/acme/billing",
            starting_branch="main",
        )
        session = sync.upsert_remote_session(conn, remote, launched_by=cast.member)
        # Found by its prompt as soon as it is launched.
        assert search_sessions(cast.member, parse("narwhal")).matched == 1
        before = SessionSearchDocument.objects.get(pk=session.pk).content_hash
        for _ in range(4):
            sim.advance(300)
            sync.sync_one_session(session.pk)
        after = SessionSearchDocument.objects.get(pk=session.pk)
        assert after.content_hash != before and after.plan and after.agent_messages
        assert index_sessions([session.pk]) == 0
        step = session.activities.filter(kind="planGenerated").first()
        assert step is not None
        word = max(step.plan_steps[0]["title"].split(), key=len).strip(".,:;()'\"`")
        assert session.pk in {h.session.pk for h in search_sessions(cast.member, parse(word)).hits}
    finally:
        sim.stop()


def test_the_sync_can_leave_the_index_to_a_rebuild(seeded, settings, capsys):
    sim_connection = seeded
    settings.SEARCH_INDEX_ON_SYNC = False
    sync.sync_connection(sim_connection.pk, full=True)
    assert not SessionSearchDocument.objects.exists()
    call_command("rebuild_search_index")
    count = Session.objects.filter(connection=sim_connection).count()
    assert SessionSearchDocument.objects.count() == count > 0
    assert f"Indexed {count} sessions: {count} documents written" in capsys.readouterr().out


def test_the_page_shows_highlighted_results_with_facets_and_keeps_filters(client, cast, rich):
    client.force_login(cast.viewer)
    url = reverse("sessions_app:search")
    html = client.get(url, {"q": "zanzibar", "state": "COMPLETED"}).content.decode()
    assert "<mark>Zanzibar</mark> rounding" in html
    assert 'matched in <strong class="hit-field">title</strong>' in html
    assert 'name="state" value="COMPLETED"' in html  # the filter stays with the next search
    assert "acme/billing" in html
    fragment = client.get(
        url, {"q": "quokka"}, headers={"HX-Request": "true", "HX-Target": "search-results"}
    )
    body = fragment.content.decode()
    assert (
        body.lstrip().startswith('<section id="search-results"') and "<mark>quokka</mark>" in body
    )
    assert (
        "No session of your teams matches"
        in client.get(url, {"q": "nothinglikeit"}).content.decode()
    )
    assert client.get(url, {"q": "x" * 5000, "page": "9" * 40}).status_code == 200


def test_the_header_has_a_search_box(client, cast):
    client.force_login(cast.viewer)
    html = client.get(reverse("sessions_app:session-list")).content.decode()
    assert 'id="header-search"' in html and reverse("sessions_app:search") in html
