"""Whether the real services and the browser that some test groups need are here.

Without them a group is skipped with a line saying why; with REQUIRE_SERVICES=1 or
REQUIRE_BROWSER=1 (as on CI) a missing one fails the group instead.
"""

from __future__ import annotations

import os
import shutil

import pytest


def _required(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}


def skips_forbidden() -> bool:
    """Whether this run is CI's, which may skip nothing (see `tests/conftest.py`)."""
    return _required("REQUIRE_SERVICES") or _required("REQUIRE_BROWSER")


def services_problem() -> str | None:
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        return "DATABASE_URL does not name a PostgreSQL database"
    try:
        import psycopg

        db = settings.DATABASES["default"]
        psycopg.connect(
            host=db.get("HOST") or None,
            port=db.get("PORT") or None,
            user=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except Exception as exc:
        return f"PostgreSQL is not reachable ({exc.__class__.__name__})"
    if not settings.REDIS_URL:
        return "REDIS_URL is not set"
    try:
        import redis

        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        return f"Redis is not reachable ({exc.__class__.__name__})"
    return None


def browser_problem() -> str | None:
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "Chromium is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def skip_or_fail(problem: str | None, require_var: str, group: str) -> None:
    if problem is None:
        return
    message = f"{group} tests need {problem.split(' (')[0]}: {problem}"
    if _required(require_var):
        pytest.fail(f"{require_var}=1 but {message}", pytrace=False)
    pytest.skip(message)


def redis_server_problem() -> str | None:
    """Whether a `redis-server` binary is here, for drills that stop and restart their own
    Redis (never the shared one)."""
    if not shutil.which("redis-server"):
        return "the redis-server binary is not installed (apt-get install redis-server)"
    return None
