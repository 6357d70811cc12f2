"""The health endpoint, the home redirect, the favicon and the CSRF failure page."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection as db_connection
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from sessions_app.models import JulesConnection


def _database_status() -> dict[str, Any]:
    try:
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # A dead database is exactly what this endpoint reports.
        return {"ok": False, "error": exc.__class__.__name__}
    return {"ok": True, "vendor": db_connection.vendor}


def _broker_status() -> dict[str, Any]:
    if not settings.REDIS_URL:
        ok = settings.BROKER_DIR.exists() or settings.CELERY_TASK_ALWAYS_EAGER
        return {"ok": ok, "kind": "embedded"}
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
        client.ping()
    except Exception as exc:  # Any failure to reach Redis means the broker is down.
        return {"ok": False, "kind": "redis", "error": exc.__class__.__name__}
    return {"ok": True, "kind": "redis"}


def _sync_status() -> dict[str, Any]:
    try:
        summary = JulesConnection.objects.filter(enabled=True).aggregate(
            last_success=Max("last_success_at")
        )
        broken = JulesConnection.objects.filter(enabled=True, sync_status="broken").count()
    except Exception as exc:  # Reported as unknown; the database check says why.
        return {"ok": False, "error": exc.__class__.__name__}
    last = summary["last_success"]
    return {
        "ok": True,
        "last_success": last.isoformat() if last else None,
        "age_seconds": int((timezone.now() - last).total_seconds()) if last else None,
        "broken_connections": broken,
    }


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database and broker status for load balancers and Docker; no secrets, no login."""
    database = _database_status()
    broker = _broker_status()
    sync = _sync_status() if database["ok"] else {"ok": False}
    healthy = database["ok"] and broker["ok"]
    return JsonResponse(
        {
            "status": "ok" if healthy else "unavailable",
            "database": database,
            "broker": broker,
            "sync": sync,
        },
        status=200 if healthy else 503,
    )


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("sessions_app:session-list")


@login_not_required
@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page links; send them to the icon."""
    return redirect(static("favicon.svg"))


@login_not_required
def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without a valid CSRF token (an old tab, cookies cleared), in the
    portal's look; Django's reason stays in the log, not on the page."""
    return render(request, "403_csrf.html", status=403)
