"""Sign-in events go to the audit history."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from sessions_app.audit import chain as audit
from sessions_app.audit import lockout
from sessions_app.audit.actions import AuditAction


@receiver(user_logged_in)
def on_sign_in(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    # A provider sign-in names its method, issuer and subject (identity/views.py).
    details = getattr(request, "portal_sign_in_details", None)
    audit.record(AuditAction.AUTH_SIGN_IN, actor=user, details=details, request=request)


@receiver(user_login_failed)
def on_sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    if request is not None and getattr(request, "portal_refused_during_lockout", False):
        return
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
    """Axes signals on the attempt that locks and on every attempt while the lockout lasts;
    the first opens a window (one entry), the others only count in it."""
    if lockout.lockout_seen(request, username or "", ip_address):
        # Read by on_sign_in_failed, which axes' own receiver runs before.
        request.portal_refused_during_lockout = True  # type: ignore[attr-defined]
