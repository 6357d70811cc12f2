"""Sign-in events go to the audit history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models import Q
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.models import AuditEntry


@receiver(user_logged_in)
def on_sign_in(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    audit.record(AuditAction.AUTH_SIGN_IN, actor=user, request=request)


@receiver(user_login_failed)
def on_sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # The password is never recorded: django already masks it, and only the name is kept.
    username = str(credentials.get("username", ""))[:150]
    audit.record(
        AuditAction.AUTH_SIGN_IN_FAILED,
        actor_label=username,
        details={"username": username},
        request=request,
    )


@receiver(user_locked_out)
def on_locked_out(
    sender: Any, request: HttpRequest, username: str | None, ip_address: str | None, **kwargs: Any
) -> None:
    """The lockout itself, once: axes signals again on every attempt while it lasts, and
    those attempts are already recorded as failed sign-ins."""
    since = timezone.now() - dt.timedelta(hours=float(settings.AXES_COOLOFF_TIME or 0))
    same = Q(details__username=username or "")
    if ip_address:
        same |= Q(ip_address=ip_address)
    if AuditEntry.objects.filter(
        same, action=AuditAction.AUTH_LOCKED_OUT, created_at__gte=since
    ).exists():
        return
    audit.record(
        AuditAction.AUTH_LOCKED_OUT,
        actor_label=(username or "")[:150],
        details={"username": username or ""},
        ip_address=ip_address,
    )
