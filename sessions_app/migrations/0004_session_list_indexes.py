"""Indexes for the sessions list at 100,000 sessions (docs/performance.md, "List page").

On PostgreSQL the free-text search also gets trigram indexes, when the `pg_trgm` extension
can be created (it is a trusted extension: the database's owner may). Without it the search
still works, by scanning; the migration says so and goes on.
"""

from django.conf import settings
from django.db import migrations, models, transaction

# The expressions match what `icontains` generates on PostgreSQL, so the planner uses them.
TRIGRAM_INDEXES = {
    "session_title_trgm": 'UPPER("title"::text) gin_trgm_ops',
    "session_prompt_trgm": 'UPPER("prompt"::text) gin_trgm_ops',
}


def add_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # noqa: BLE001 - any refusal means: no trigram indexes.
        print(f"\n  pg_trgm is not available ({exc.__class__.__name__}); search will scan.")
        return
    for name, expression in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{name}" ON "sessions_app_session" USING gin ({expression})'
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0003_session_activities_read_for"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="session",
            index=models.Index(
                fields=["-create_time", "-id"],
                include=("team", "archived", "state", "connection", "launched_by"),
                name="session_created_cover",
            ),
        ),
        migrations.AddIndex(
            model_name="session",
            index=models.Index(fields=["connection", "-synced_at"], name="session_conn_synced"),
        ),
        migrations.RunPython(add_trigram_indexes, drop_trigram_indexes),
    ]
