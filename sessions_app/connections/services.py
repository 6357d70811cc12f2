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
from sessions_app.connections import addresses, crypto
from sessions_app.connections.selectors import removal_summary
from sessions_app.models import JulesConnection, Session, Team
from sessions_app.models.jules import SyncStatus
from sessions_app.outbox.services import after_commit
from sessions_app.teams.services import acting_role


class KeyRejected(ActionNotAllowed):
    """Jules did not accept an API key (or could not be asked); nothing was saved."""


def _require_admin(actor: Any, team_id: int, doing: str, operator: bool) -> None:
    role = acting_role(actor, team_id, operator=operator)
    access.require(access.may_manage_connections(role, doing))


# A person waits on the key check: a short deadline, then a clear answer.
CHECK_SECONDS = 15.0
# Sessions read at the check, to recognise an account already connected under another key.
CHECK_SESSIONS = 20


@sensitive_variables("api_key", "client")
def check_api_key(api_key: str, base_url: str | None = None) -> list[str]:
    """Ask Jules whether it accepts the key; raise KeyRejected if not. Return the ids of
    the account's most recent sessions (to tell whether the account is connected already).

    Only an address the operator allows is asked. The message never holds the key nor
    anything the remote wrote: only the kind of failure.
    """
    base_url = base_url or addresses.default_address()
    addresses.require_allowed(base_url)
    try:
        client = JulesClient(
            api_key,
            base_url,
            connect_timeout=settings.JULES_CONNECT_TIMEOUT,
            read_timeout=settings.JULES_READ_TIMEOUT,
            retry_budget=min(settings.JULES_RETRY_BUDGET, 10.0),
            total_timeout=min(settings.JULES_TOTAL_TIMEOUT, CHECK_SECONDS),
            max_response_bytes=settings.JULES_MAX_RESPONSE_BYTES,
        )
    except ValueError:
        raise KeyRejected(
            "This is not an API key Jules could accept: it has characters other than "
            "letters, digits and punctuation. Nothing was saved."
        ) from None
    with client:
        try:
            client.list_sources(page_size=1)
            sessions = client.list_sessions(page_size=CHECK_SESSIONS).items
        except jerrors.JulesError as exc:
            raise KeyRejected(_check_failure(exc) + " Nothing was saved.") from None
    return [s.id for s in sessions if s.id]


def _check_failure(exc: jerrors.JulesError) -> str:
    """What a failed key check tells the person: the kind of failure, never the remote's
    words (an address could be any service, and its answer is not ours to show)."""
    if isinstance(exc, jerrors.AuthError):
        return "Jules did not accept this API key (it may be mistyped, revoked or deleted)."
    if isinstance(exc, jerrors.PermissionDeniedError):
        return "Jules denied access with this API key."
    if isinstance(exc, jerrors.NotFoundError):
        return "The Jules address does not look like the Jules API (it answered 404)."
    if isinstance(exc, jerrors.DeadlineExceededError):
        seconds = min(settings.JULES_TOTAL_TIMEOUT, CHECK_SECONDS)
        return f"Jules did not finish answering within {seconds:g} s."
    if isinstance(exc, jerrors.ResponseTooLargeError):
        return "Jules' answer was far larger than the Jules API sends; it was not read."
    if isinstance(exc, jerrors.MalformedResponseError):
        return "The answer did not look like the Jules API's."
    if isinstance(exc, jerrors.RateLimitedError):
        return "Jules is limiting the rate of requests; try again in a minute."
    if exc.status is None:
        return "Could not reach Jules (no connection, or no answer in time); try again in a moment."
    return f"Jules refused the check (HTTP {exc.status}); try again in a moment."


def _same_account(
    team: Team, api_key: str, session_ids: list[str], *, exclude: int | None = None
) -> JulesConnection | None:
    """The team's connection that already reaches the key's account, if any.

    The API names no account, so the same key, or one of the account's sessions already
    held by another connection, is what gives it away.
    """
    others = JulesConnection.objects.filter(team=team)
    if exclude is not None:
        others = others.exclude(pk=exclude)
    for other in others:
        try:
            if other.get_api_key() == api_key:
                return other
        except crypto.DecryptionError:
            continue
    if session_ids:
        match = (
            Session.objects.filter(team=team, remote_id__in=session_ids)
            .exclude(connection_id=exclude or 0)
            .select_related("connection")
            .first()
        )
        if match is not None:
            return match.connection
    return None


def refuse_same_account(
    team: Team, api_key: str, session_ids: list[str], *, exclude: int | None = None
) -> None:
    other = _same_account(team, api_key, session_ids, exclude=exclude)
    if other is not None:
        raise ActionNotAllowed(
            f"This Jules account is already connected to the team as {other.label!r}; "
            "connecting it twice would show every session twice. Nothing was saved."
        )


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
    base_url: str | None = None,
    enabled: bool = True,
    operator: bool = False,
    key_checked: bool = False,
    session_ids: list[str] | None = None,
    request: HttpRequest | None = None,
) -> JulesConnection:
    """Add a Jules account to the team, after Jules confirmed that the key works.

    `base_url` defaults to the operator's Jules address; any other must be allowed.
    `key_checked`: the caller ran `check_api_key` and passes the `session_ids` it gave.
    """
    _require_admin(actor, team.pk, "add connections", operator)
    label = label.strip()
    api_key = api_key.strip()
    base_url = (base_url or addresses.default_address()).strip()
    if not label or not api_key:
        raise ActionNotAllowed("A connection needs a label and an API key.")
    addresses.require_allowed(base_url)
    if JulesConnection.objects.filter(team=team, label=label).exists():
        raise ActionNotAllowed(f"The team already has a connection called {label!r}.")
    refuse_same_account(team, api_key, [])
    if not key_checked:
        session_ids = check_api_key(api_key, base_url)
    refuse_same_account(team, api_key, session_ids or [])
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
    session_ids: list[str] | None = None,
    request: HttpRequest | None = None,
) -> JulesConnection:
    """Replace the connection's key, after Jules confirmed that the new one works."""
    _require_admin(actor, connection.team_id, "rotate API keys", operator)
    api_key = api_key.strip()
    if not api_key:
        raise ActionNotAllowed("Paste the new API key.")
    addresses.require_allowed(connection.base_url)
    refuse_same_account(connection.team, api_key, [], exclude=connection.pk)
    if not key_checked:
        session_ids = check_api_key(api_key, connection.base_url)
    refuse_same_account(connection.team, api_key, session_ids or [], exclude=connection.pk)
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
    if "label" in changes:
        changes = {**changes, "label": str(changes["label"]).strip()}
        if not changes["label"]:
            raise ActionNotAllowed("A connection needs a label.")
    if "base_url" in changes:
        addresses.require_allowed(changes["base_url"])
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
    """Remove the connection and everything the portal holds from it (its sessions, their
    activities and outputs, its repositories, its outbox), as `removal_summary` says;
    the audit history stays, with the counts of what went."""
    _require_admin(actor, connection.team_id, "remove connections", operator)
    with transaction.atomic():
        locked = JulesConnection.objects.select_for_update().filter(pk=connection.pk).first()
        if locked is None:
            return
        summary = removal_summary(locked)
        audit.record(
            AuditAction.CONNECTION_DELETE,
            actor=actor,
            team=locked.team_id,
            target=Target.of_connection(locked),
            details={"label": locked.label, **summary._asdict()},
            request=request,
        )
        locked.delete()
