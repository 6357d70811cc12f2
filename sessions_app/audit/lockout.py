"""The sign-in lockout: which failures count together, and its windows in the audit history.

Failures are counted per parameter set of `AXES_LOCKOUT_PARAMETERS`. A set that names the
account (by default the account *and* the address) locks after `AXES_FAILURE_LIMIT`, so a
stranger elsewhere cannot lock a named person out; an address-only set locks after the
larger `AXES_ADDRESS_FAILURE_LIMIT`, which still stops one address guessing many accounts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_lockout_parameters
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.http import HttpRequest
from django.utils import timezone

from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.models.audit import SignInLockout


def _names(parameter: str | list[str]) -> list[str]:
    return [parameter] if isinstance(parameter, str) else list(parameter)


def _limit_for(parameter: str | list[str]) -> int:
    if "username" in _names(parameter):
        return int(settings.AXES_FAILURE_LIMIT)
    return int(settings.AXES_ADDRESS_FAILURE_LIMIT)


class PortalAxesHandler(AxesDatabaseHandler):
    """Axes' database handler with one limit per parameter set instead of one for all."""

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        # Axes compares this number with AXES_FAILURE_LIMIT, so each set's count is given in
        # units of that limit: it reaches the limit exactly when the set reaches its own.
        base = int(settings.AXES_FAILURE_LIMIT)
        parameters = get_lockout_parameters(request, credentials)
        worst = 0
        locked: set[bool] = set()
        for parameter, attempts in zip(
            parameters, self.get_user_attempts(request, credentials), strict=True
        ):
            failures = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            limit = _limit_for(parameter)
            worst = max(worst, failures * base // limit)
            if failures >= limit:
                locked.add("username" in _names(parameter))
        # Read by the lockout signal handler: an account lockout, while it lasts, stays one
        # even when the attempts it refuses add up to the address limit.
        request.portal_lockout_scope = (  # type: ignore[attr-defined]
            SignInLockout.Scope.ADDRESS if locked == {False} else SignInLockout.Scope.ACCOUNT
        )
        return worst


def _cooloff() -> dt.timedelta:
    return dt.timedelta(hours=float(settings.AXES_COOLOFF_TIME or 0))


def close_finished_lockouts(now: dt.datetime | None = None) -> int:
    """Write the closing entry, with the count, for each window whose lockout has ended."""
    now = now or timezone.now()
    closed = 0
    ended = SignInLockout.objects.filter(closed=False, last_attempt_at__lt=now - _cooloff())
    for window_id in ended.values_list("pk", flat=True):
        with transaction.atomic():
            window = (
                SignInLockout.objects.select_for_update().filter(pk=window_id, closed=False).first()
            )
            if window is None:
                continue
            window.closed = True
            window.save(update_fields=["closed"])
            audit.record(
                AuditAction.AUTH_LOCKOUT_ENDED,
                actor_label=window.username,
                details=_details(window, refused=window.refused),
                ip_address=window.ip_address,
            )
            closed += 1
    return closed


def _details(window: SignInLockout, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"username": window.username}
    if window.scope == SignInLockout.Scope.ADDRESS:
        details = {"limit": "address"}
    return {**details, **extra}


def lockout_seen(request: HttpRequest, username: str, ip_address: str | None) -> bool:
    """Count one attempt in the open window, or open one; True if the window was open."""
    scope = getattr(request, "portal_lockout_scope", SignInLockout.Scope.ACCOUNT)
    key = {
        "scope": scope,
        "username": username[:150] if scope == SignInLockout.Scope.ACCOUNT else "",
        "ip_address": ip_address,
    }
    now = timezone.now()
    close_finished_lockouts(now)
    with transaction.atomic():
        counted = SignInLockout.objects.filter(closed=False, **key).update(
            refused=F("refused") + 1, last_attempt_at=now
        )
        if counted:
            return True
        try:
            with transaction.atomic():
                window = SignInLockout.objects.create(started_at=now, last_attempt_at=now, **key)
        except IntegrityError:
            # Another request opened it a moment ago.
            SignInLockout.objects.filter(closed=False, **key).update(
                refused=F("refused") + 1, last_attempt_at=now
            )
            return True
        audit.record(
            AuditAction.AUTH_LOCKED_OUT,
            actor_label=window.username,
            details=_details(window),
            ip_address=ip_address,
        )
    return False
