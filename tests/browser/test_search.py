"""Search in Chromium (docs/search.md): the header box, highlighted snippets that say where
they matched, facets that narrow the results, and the htmx form with its fallback."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import sign_in
from tests.factories import ConnectionFactory, SessionFactory
from tests.unit.test_search import make_rich_session

pytestmark = pytest.mark.django_db(transaction=True)


def test_search_highlights_matches_and_narrows_by_facets(page, live_server, cast, screenshot):
    connection = ConnectionFactory(team=cast.team, label="Acme Jules")
    rich = make_rich_session(connection, title="Zanzibar <b>rounding</b>")
    failed = make_rich_session(connection, title="Pelican feeding")
    type(failed).objects.filter(pk=failed.pk).update(state="FAILED")
    from sessions_app.search.documents import index_sessions

    index_sessions([failed.pk])
    make_rich_session(ConnectionFactory(team=cast.other_team), title="Globex zanzibar")
    SessionFactory(connection=connection, title="Unrelated work")

    sign_in(page, live_server, "member")
    page.fill("#header-search", "zanzibar")
    page.press("#header-search", "Enter")
    page.wait_for_url(re.compile(r".*/search/\?q=zanzibar$"))
    hits = page.locator(".search-hit")
    assert hits.count() == 1
    hit = hits.first
    assert hit.locator(".hit-title").inner_text() == "Zanzibar <b>rounding</b>"
    assert hit.locator(".snippet mark").all_inner_texts() == ["Zanzibar"]
    # Text that looks like HTML stays text.
    assert "<b>rounding</b>" in hit.locator(".snippet").inner_text()
    assert hit.locator(".hit-field").inner_text() == "title"
    screenshot("search-highlight")

    # The search form runs through htmx: the results change, the page does not reload.
    page.evaluate("window.__kept = true")
    page.fill("#id_q", "pelican")
    page.click("#search-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/search/\?q=pelican$"))
    page.wait_for_function("document.querySelectorAll('.search-hit').length === 2")
    assert page.evaluate("window.__kept") is True
    fields = page.locator(".search-hit .hit-field").all_inner_texts()
    assert sorted(fields) == ["agent message", "title"]

    # A facet narrows the results and keeps the words.
    page.click(".facets a:has-text('Failed')")
    page.wait_for_url(re.compile(r".*q=pelican.*state=FAILED|.*state=FAILED.*q=pelican"))
    assert page.locator(".search-hit").count() == 1
    assert page.locator(".search-hit .hit-title").inner_text() == "Pelican feeding"
    assert page.locator(".filters-in-use").inner_text().startswith("Filters in use: state: FAILED")

    # A path prefix from the same box.
    page.fill("#id_q", "path:src/billing/")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector(".search-hit .hit-field:has-text('file path')")
    assert page.locator(".search-hit .snippet mark").first.inner_text() == "src/billing/"
    assert rich.pk  # the other team's session never showed
    assert "Globex" not in page.content()
