"""The search index (docs/search.md): documents, and each database's full-text index.

PostgreSQL: `search_vector`, a generated tsvector weighted per field, with a GIN index;
a trigram index on `paths` for path prefixes (pg_trgm, created by 0004 when allowed).
SQLite: an FTS5 table over the documents, kept by triggers.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models, transaction

TABLE = "sessions_app_sessionsearchdocument"
FTS = "sessions_app_search_fts"
# (column, weight), as in sessions_app/search/fields.py.
WEIGHTED = [
    ("title", "A"),
    ("prompt", "A"),
    ("plan", "B"),
    ("pull_requests", "B"),
    ("agent_messages", "C"),
    ("user_messages", "C"),
    ("paths", "C"),
    ("commands", "D"),
    ("patches", "D"),
]
COLUMNS = ", ".join(column for column, _ in WEIGHTED)
NEW_COLUMNS = ", ".join(f"new.{column}" for column, _ in WEIGHTED)
OLD_COLUMNS = ", ".join(f"old.{column}" for column, _ in WEIGHTED)
# One to_tsvector per weight, over its fields joined: parsing is most of an insert's cost.
GROUPS: dict[str, list[str]] = {}
for _column, _weight in WEIGHTED:
    GROUPS.setdefault(_weight, []).append(_column)
JOINED = {weight: " || ' ' || ".join(columns) for weight, columns in GROUPS.items()}
SESSIONS = "sessions_app_session"
# What a document copies of its session; a trigger follows the session's later changes, so
# no writer of sessions (the sync, the portal's archive) has to remember the documents.
COPIED = ("create_time", "archived", "team_id", "connection_id")
FOLLOW_SET = ", ".join(f"{c} = NEW.{c}" for c in COPIED)
VECTOR = " || ".join(
    f"setweight(to_tsvector('english'::regconfig, {text}), '{weight}')"
    for weight, text in JOINED.items()
)


def forwards(apps, schema_editor):
    run = schema_editor.execute
    if schema_editor.connection.vendor == "postgresql":
        run(
            f'ALTER TABLE "{TABLE}" ADD COLUMN search_vector tsvector '
            f"GENERATED ALWAYS AS ({VECTOR}) STORED"
        )
        run(f'CREATE INDEX search_doc_vector ON "{TABLE}" USING gin (search_vector)')
        changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in COPIED)
        run(
            "CREATE FUNCTION search_doc_follow_session() RETURNS trigger LANGUAGE plpgsql AS "
            f'$$ BEGIN UPDATE "{TABLE}" SET {FOLLOW_SET} WHERE session_id = NEW.id; '
            "RETURN NULL; END $$"
        )
        run(
            f"CREATE TRIGGER search_doc_follow AFTER UPDATE OF {', '.join(COPIED)} "
            f'ON "{SESSIONS}" FOR EACH ROW WHEN ({changed}) '
            "EXECUTE FUNCTION search_doc_follow_session()"
        )
        try:
            with transaction.atomic(using=schema_editor.connection.alias):
                run("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except Exception as exc:  # noqa: BLE001 - any refusal means: path search scans.
            print(f"\n  pg_trgm is not available ({exc.__class__.__name__}); paths will scan.")
            return
        run(f'CREATE INDEX search_doc_paths_trgm ON "{TABLE}" USING gin (paths gin_trgm_ops)')
    elif schema_editor.connection.vendor == "sqlite":
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in COPIED)
        run(
            f"CREATE TRIGGER search_doc_follow AFTER UPDATE OF {', '.join(COPIED)} "
            f'ON "{SESSIONS}" FOR EACH ROW WHEN {changed} BEGIN '
            f'UPDATE "{TABLE}" SET {FOLLOW_SET.replace("NEW.", "new.")} '
            "WHERE session_id = new.id; END"
        )
        run(
            f"CREATE VIRTUAL TABLE {FTS} USING fts5({COLUMNS}, content='{TABLE}', "
            "content_rowid='session_id', tokenize='porter unicode61')"
        )
        run(
            f"CREATE TRIGGER {FTS}_ai AFTER INSERT ON {TABLE} BEGIN "
            f"INSERT INTO {FTS}(rowid, {COLUMNS}) VALUES (new.session_id, {NEW_COLUMNS}); END"
        )
        run(
            f"CREATE TRIGGER {FTS}_ad AFTER DELETE ON {TABLE} BEGIN "
            f"INSERT INTO {FTS}({FTS}, rowid, {COLUMNS}) "
            f"VALUES ('delete', old.session_id, {OLD_COLUMNS}); END"
        )
        run(
            f"CREATE TRIGGER {FTS}_au AFTER UPDATE ON {TABLE} BEGIN "
            f"INSERT INTO {FTS}({FTS}, rowid, {COLUMNS}) "
            f"VALUES ('delete', old.session_id, {OLD_COLUMNS}); "
            f"INSERT INTO {FTS}(rowid, {COLUMNS}) VALUES (new.session_id, {NEW_COLUMNS}); END"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f'DROP TRIGGER IF EXISTS search_doc_follow ON "{SESSIONS}"')
        schema_editor.execute("DROP FUNCTION IF EXISTS search_doc_follow_session()")
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS search_doc_follow")
        for suffix in ("ai", "ad", "au"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {FTS}_{suffix}")
        schema_editor.execute(f"DROP TABLE IF EXISTS {FTS}")


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_app", "0015_launch_queue"),
    ]

    operations = [
        migrations.CreateModel(
            name="SessionSearchDocument",
            fields=[
                (
                    "session",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="search_document",
                        serialize=False,
                        to="sessions_app.session",
                    ),
                ),
                ("title", models.TextField(blank=True)),
                ("prompt", models.TextField(blank=True)),
                ("plan", models.TextField(blank=True)),
                ("agent_messages", models.TextField(blank=True)),
                ("user_messages", models.TextField(blank=True)),
                ("commands", models.TextField(blank=True)),
                ("paths", models.TextField(blank=True)),
                ("patches", models.TextField(blank=True)),
                ("pull_requests", models.TextField(blank=True)),
                ("create_time", models.DateTimeField(null=True)),
                ("archived", models.BooleanField(default=False)),
                ("content_hash", models.CharField(max_length=64)),
                ("indexed_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "connection",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="sessions_app.julesconnection",
                    ),
                ),
                (
                    "team",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="sessions_app.team",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["team"], name="search_doc_team"),
                    models.Index(fields=["-create_time", "-session"], name="search_doc_created"),
                ],
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
