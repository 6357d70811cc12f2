"""Shared set-up for benchmarks: a dedicated PostgreSQL database, migrated and emptied."""

from __future__ import annotations

import os
import socket
import sys
from typing import Any
from urllib.parse import urlsplit

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/jules_bench"


def maintenance_connection(url: str) -> Any:
    """An autocommit connection to the server's `postgres` database, beside `url`'s."""
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username,
        password=parts.password,
        dbname="postgres",
        autocommit=True,
    )


def drop_database(url: str) -> None:
    """Drop the benchmark database at `url` (PostgreSQL), closing Django's connections."""
    from django.db import connections

    connections.close_all()
    with maintenance_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')


def setup_django(database_url: str | None = None, redis_url: str | None = None) -> str:
    """Point Django at the benchmark database (created if missing) and migrate it; with
    `redis_url`, tasks go to that Redis (for real workers), else to no broker at all."""
    url = database_url or os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if urlsplit(url).scheme.startswith("postgres"):
        name = urlsplit(url).path.lstrip("/")
        with maintenance_connection(url) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "julesweb.settings")
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    else:
        os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    sys.argv = [sys.argv[0]]
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return url


def empty_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE sessions_app_activity, sessions_app_sessionoutput, "
            "sessions_app_sessiontransition, sessions_app_session, sessions_app_source, "
            "sessions_app_julesconnection, sessions_app_membership, sessions_app_team, "
            "sessions_app_auditentry, sessions_app_auditchainhead, sessions_app_outboxaction "
            "RESTART IDENTITY CASCADE"
        )


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
