"""Contract: sources.list and sources.get."""

from __future__ import annotations

import pytest

from jules import errors
from tests.contract.conftest import SOURCES


def test_it_lists_every_source_across_pages(client):
    first = client.list_sources(page_size=3)
    assert len(first.items) == 3 and first.next_page_token
    everything = list(client.iter_sources(page_size=3))
    assert len(everything) == SOURCES == len({s.name for s in everything})
    assert client.request_count == 1 + 3  # one page above, then three pages of 3, 3, 2
    assert all(s.name == f"sources/{s.id}" and s.id.startswith("github/") for s in everything)


def test_it_lists_sources_with_the_default_page_size(client):
    page = client.list_sources()
    assert len(page.items) == SOURCES and page.next_page_token is None


def test_it_filters_sources_by_name_or_id(client):
    page = client.list_sources(names=["sources/github/acme/web", "github/globex/search"])
    assert {s.name for s in page.items} == {
        "sources/github/acme/web",
        "sources/github/globex/search",
    }
    assert client.list_sources(names=["sources/github/acme/nope"]).items == []


def test_it_gets_a_source_by_name_or_id(client):
    billing = client.get_source("github/acme/billing")
    assert billing.name == "sources/github/acme/billing" and billing.id == "github/acme/billing"
    assert (billing.owner, billing.repo, billing.is_private) == ("acme", "billing", True)
    assert billing.default_branch == "main" and billing.branches == ["main", "release-2026.03"]
    assert client.get_source("sources/github/acme/billing").raw == billing.raw
    public = client.get_source("github/globex/search")
    assert public.is_private is False and public.default_branch == "master"


def test_it_reports_an_unknown_source(client):
    with pytest.raises(errors.NotFoundError):
        client.get_source("github/acme/nope")
