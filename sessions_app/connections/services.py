"""Connection writes: Jules checks a key before anything is saved, status resets, audit.

The team pages and the Django admin (`operator=True`) both write through these.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from jules import errors as jerrors
from jules.client import JulesClient
from sessions_app import access, tasks
from sessions_app.access import ActionNotAllowed
from sessions_app.audit import chain as audit
from sessions_app.audit.actions import AuditAction
from sessions_app.audit.chain import Target
from sessions_app.models import JulesConnection, Team
from sessions_app.models.jules import SyncStatus
from sessions_app.outbox.services import after_commit
from sessions_app.teams.services import acting_role


class KeyRejected(ActionNotAllowed):
    """Jules did not accept an API key (or could not be asked); nothing was saved."""


def _require_admin(actor: Any, team_id: int, doing: str, operator: bool) -> None:
    role = acting_role(actor, team_id, operator=operator)
    access.require(access.may_manage_connections(role, doing))


@sensitive_variables("api_key", "client")
def check_api_key(api_key: str, base_url: str) -> None:
    """Ask Jules whether it accepts the key (one small sources.list); raise KeyRejected if not.

    The key never appears in the message: only the kind of failure and the address.
    """
    try:
        client = JulesClient(
            api_key,
            base_url,
            connect_timeout=settings.JULES_CONNECT_TIMEOUT,
            read_timeout=settings.JULES_READ_TIMEOUT,
            # A person is waiting on the form: a short budget, then a clear answer.
            retry_budget=min(settings.JULES_RETRY_BUDGET, 10.0),
        )
    except ValueError:
        raise KeyRejected(
            "This is not an API key Jules could accept: it has characters other than "
            "letters, digits and punctuation. Nothing was saved."
        ) from None
    try:
        client.list_sources(page_size=1)
    except jerrors.AuthError:
        raise KeyRejected(
            "Jules did not accept this API key (it may be mistyped, revoked or deleted). "
            "Nothing was saved."
        ) from None
    except jerrors.PermissionDeniedError:
        raise KeyRejected("Jules denied access with this API key. Nothing was saved.") from None
    except jerrors.NotFoundError:
        raise KeyRejected(
            f"{base_url} does not look like the Jules API (it answered 404). Nothing was saved."
        ) from None
    except jerrors.JulesError as exc:
        raise KeyRejected(
            f"Could not check the key with Jules at {base_url}: {exc.message} "
            "Nothing was saved; try again in a moment."
        ) from None


def _status_after_new_key(connection: JulesConnection) -> list[str]:
    """A new key: the old key's failure no longer describes the connection."""
    if connection.sync_status not in {SyncStatus.BROKEN, SyncStatus.ERROR}:
        return []
    connection.sync_status = SyncStatus.OK if connection.last_success_at else SyncStatus.NEVER
    connection.last_error = ""
    connection.consecutive_failures = 0
    return ["sync_status", "last_error", "consecutive_failures"]


@sensitive_variables("api_key", "connection")
def connection_add(
    *,
    actor: Any,
    team: Team,
    label: str,
    api_key: str,
    base_url: str,
    enabled: bool = True,
    operator: bool = False,
    key_checked: bool = False,
    request: HttpRequest | None = None,
) -> JulesConnection:
    """Add a Jules account to the team, after Jules confirmed that the key works."""
    _require_admin(actor, team.pk, "add connections", operator)
    label = label.strip()
    api_key = api_key.strip()
    if not label or not api_key:
        raise ActionNotAllowed("A connection needs a label and an API key.")
    if JulesConnection.objects.filter(team=team, label=label).exists():
        raise ActionNotAllowed(f"The team already has a connection called {label!r}.")
    if not key_checked:
        check_api_key(api_key, base_url)
    connection = JulesConnection(
        team=team,
        label=label,
        base_url=base_url,
        added_by=actor if getattr(actor, "is_authenticated", False) else None,
        enabled=enabled,
        sync_status=SyncStatus.NEVER if enabled else SyncStatus.DISABLED,
    )
    connection.set_api_key(api_key)
    try:
        with transaction.atomic():
            connection.save()
            audit.record(
                AuditAction.CONNECTION_ADD,
                actor=actor,
                team=team,
                target=Target.of_connection(connection),
                details={"label": label, "base_url": base_url},
                request=request,
            )
            if enabled:
                after_commit(tasks.sync_connection, connection.pk)
    except IntegrityError:
        raise ActionNotAllowed(f"The team already has a connection called {label!r}.") from None
    return connection


@sensitive_variables("api_key", "locked")
def connection_rotate_key(
    *,
    actor: Any,
    connection: JulesConnection,
    api_key: str,
    operator: bool = False,
    key_checked: bool = False,
    request: HttpRequest | None = None,
) -> JulesConnection:
    """Replace the connection's key, after Jules confirmed that the new one works."""
    _require_admin(actor, connection.team_id, "rotate API keys", operator)
    api_key = api_key.strip()
    if not api_key:
        raise ActionNotAllowed("Paste the new API key.")
    if not key_checked:
        check_api_key(api_key, connection.base_url)
    with transaction.atomic():
        locked = JulesConnection.objects.select_for_update().get(pk=connection.pk)
        locked.set_api_key(api_key)
        locked.key_rotated_at = timezone.now()
        fields = ["api_key_encrypted", "key_rotated_at", *_status_after_new_key(locked)]
        locked.save(update_fields=fields)
        audit.record(
            AuditAction.CONNECTION_ROTATE,
            actor=actor,
            team=locked.team_id,
            target=Target.of_connection(locked),
            details={"label": locked.label},
            request=request,
        )
        if locked.enabled:
            after_commit(tasks.sync_connection, locked.pk)
    return locked


def connection_set_enabled(
    *,
    actor: Any,
    connection: JulesConnection,
    enabled: bool,
    operator: bool = False,
    request: HttpRequest | None = None,
) -> JulesConnection:
    verb = "enable" if enabled else "disable"
    _require_admin(actor, connection.team_id, f"{verb} connections", operator)
    with transaction.atomic():
        locked = JulesConnection.objects.select_for_update().get(pk=connection.pk)
        if locked.enabled == enabled:
            return locked
        locked.enabled = enabled
        locked.sync_status = (
            SyncStatus.DISABLED
            if not enabled
            else SyncStatus.OK
            if locked.last_success_at
            else SyncStatus.NEVER
        )
        locked.save(update_fields=["enabled", "sync_status"])
        audit.record(
            AuditAction.CONNECTION_ENABLE if enabled else AuditAction.CONNECTION_DISABLE,
            actor=actor,
            team=locked.team_id,
            target=Target.of_connection(locked),
            details={"label": locked.label},
            request=request,
        )
        if enabled:
            after_commit(tasks.sync_connection, locked.pk)
    return locked


def connection_update(
    *,
    actor: Any,
    connection: JulesConnection,
    changes: dict[str, Any],
    operator: bool = False,
    request: HttpRequest | None = None,
) -> JulesConnection:
    """Change plain fields (label, address); the key and `enabled` have services of their own."""
    _require_admin(actor, connection.team_id, "change connections", operator)
    allowed = {"label", "base_url"}
    if set(changes) - allowed:
        raise ActionNotAllowed(f"Only {', '.join(sorted(allowed))} change here.")
    with transaction.atomic():
        locked = JulesConnection.objects.select_for_update().get(pk=connection.pk)
        changed = sorted(k for k, v in changes.items() if getattr(locked, k) != v)
        if not changed:
            return locked
        for name in changed:
            setattr(locked, name, changes[name])
        try:
            with transaction.atomic():
                locked.save(update_fields=changed)
        except IntegrityError:
            raise ActionNotAllowed(
                f"The team already has a connection called {changes.get('label')!r}."
            ) from None
        audit.record(
            AuditAction.CONNECTION_CHANGE,
            actor=actor,
            team=locked.team_id,
            target=Target.of_connection(locked),
            details={"label": locked.label, "changed": changed},
            request=request,
        )
    return locked


def connection_delete(
    *,
    actor: Any,
    connection: JulesConnection,
    operator: bool = False,
    request: HttpRequest | None = None,
) -> None:
    _require_admin(actor, connection.team_id, "remove connections", operator)
    with transaction.atomic():
        audit.record(
            AuditAction.CONNECTION_DELETE,
            actor=actor,
            team=connection.team_id,
            target=Target.of_connection(connection),
            details={"label": connection.label, "sessions": connection.sessions.count()},
            request=request,
        )
        connection.delete()
