"""Rows derived from the cache, filled for sessions cached before their tables existed.

The sync keeps search documents (docs/search.md) and analytics facts (docs/analytics.md)
current for every session it writes, but an upgraded portal already holds sessions that
no sync will write again. After each `migrate` (the `post_migrate` signal: `make run` and
the compose file's migrate service both run it) the sessions without a document or a
facts row get them, in batches each in its own transaction. Once filled this costs two
index lookups.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, transaction

BATCH = 500


def fill_missing() -> tuple[int, int]:
    """Give every session without a search document or facts row one; how many of each."""
    from sessions_app.analytics.rollup import refresh_facts
    from sessions_app.models import Session
    from sessions_app.search.documents import index_sessions

    documents = facts = 0
    last = 0
    without_document = Session.objects.filter(search_document__isnull=True).order_by("pk")
    while ids := list(without_document.filter(pk__gt=last).values_list("pk", flat=True)[:BATCH]):
        with transaction.atomic():
            documents += index_sessions(ids)
        last = ids[-1]
    last = 0
    without_facts = Session.objects.filter(facts__isnull=True).order_by("pk")
    while ids := list(without_facts.filter(pk__gt=last).values_list("pk", flat=True)[:BATCH]):
        facts += refresh_facts(ids)
        last = ids[-1]
    return documents, facts


def fill_after_migrate(sender: Any, *, using: str = "default", **kwargs: Any) -> None:
    """`post_migrate` receiver: fill what is missing, once the tables exist (a migrate
    backwards may have removed them)."""
    from sessions_app.models import SessionFacts, SessionSearchDocument

    tables = set(connections[using].introspection.table_names())
    needed = {SessionSearchDocument._meta.db_table, SessionFacts._meta.db_table}
    if not needed <= tables or using != "default":
        return
    documents, facts = fill_missing()
    if (documents or facts) and kwargs.get("verbosity", 1):
        print(f"  Filled {documents} search documents and {facts} analytics rows.")
