"""The search index: one document per cached session (docs/search.md).

The text of every field a person may search for, kept apart so a result can say where it
matched. On PostgreSQL migration 0016 adds a weighted `search_vector` (a generated
tsvector column, GIN-indexed) and a trigram index on `paths`; on SQLite an FTS5 table
kept by triggers. Neither is a model field: only `sessions_app.search` queries them.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from sessions_app.models.jules import JulesConnection, Session
from sessions_app.models.teams import Team


class SessionSearchDocument(models.Model):
    session = models.OneToOneField(
        Session, on_delete=models.CASCADE, primary_key=True, related_name="search_document"
    )
    # Denormalised for scoping without a join.
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    connection = models.ForeignKey(JulesConnection, on_delete=models.CASCADE, related_name="+")
    # Copied from the session (and kept by a trigger of migration 0016 when the session
    # changes), so the newest-first walk and its LIMIT run on this table alone
    # (docs/search.md#why-common-words-stay-fast).
    create_time = models.DateTimeField(null=True)
    archived = models.BooleanField(default=False)
    title = models.TextField(blank=True)
    prompt = models.TextField(blank=True)
    plan = models.TextField(blank=True)
    agent_messages = models.TextField(blank=True)
    user_messages = models.TextField(blank=True)
    commands = models.TextField(blank=True)
    # One path per line, the column starting and ending with a newline, so that a path
    # prefix is `LIKE '%\nprefix%'` (trigram-indexed on PostgreSQL).
    paths = models.TextField(blank=True)
    patches = models.TextField(blank=True)
    pull_requests = models.TextField(blank=True)
    # sha256 of the fields above: a re-sync that changes none of them writes nothing.
    content_hash = models.CharField(max_length=64)
    indexed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["team"], name="search_doc_team"),
            models.Index(fields=["-create_time", "-session"], name="search_doc_created"),
        ]

    def __str__(self) -> str:
        return f"search document of session {self.session_id}"
