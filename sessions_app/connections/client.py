"""How the portal reaches Jules for a connection: the clients of the sync and the outbox,
and the words a person reads when talking to Jules went wrong.

The sync and the outbox both come here, so a timeout, a retry budget or an error message
is defined once (docs/architecture.md).
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.conf import settings

from jules import errors as jerrors
from jules.client import JulesClient
from jules.inflight import InFlight
from sessions_app.connections import addresses, crypto
from sessions_app.models import JulesConnection

# Jules' answers to a create over an account's cap (docs/jules-api.md#quotas-and-rate-limits).
QUOTA_REASONS = frozenset({"DAILY_SESSION_LIMIT", "CONCURRENT_SESSION_LIMIT"})


class ConnectionUnusable(Exception):
    """The connection cannot sync until a person acts (a rejected or undecryptable key)."""


class OutboxClient(JulesClient):
    """A client that resends a write only when the first attempt surely did not arrive.

    The plain client also resends approvePlan, archive, unarchive and delete after a
    timeout or a 5xx, as idempotent calls; but the first attempt may have taken effect, and
    then a resent approvePlan is refused (the plan is no longer awaiting approval) and a
    resent archive reaches Jules twice. The outbox retries those itself, checking first.
    """

    def _may_retry(
        self, error: jerrors.JulesError, method: str, idempotent: bool, retries: int, malformed: int
    ) -> bool:
        if method != "GET" and not error.not_applied:
            return False
        if error.reason in QUOTA_REASONS:
            return False  # The launch queue waits for room instead: docs/launch-queue.md
        return super()._may_retry(error, method, idempotent, retries, malformed)


C = TypeVar("C", bound=JulesClient)


def client_for(connection: JulesConnection, client_class: type[C], **options: Any) -> C:
    """A client for the connection with the timeouts and retry budget of settings, if its
    address is still one the operator allows."""
    if not addresses.is_allowed(connection.base_url):
        raise ConnectionUnusable(addresses.unusable_reason(connection.base_url))
    try:
        key = connection.get_api_key()
    except crypto.DecryptionError as exc:
        raise ConnectionUnusable(str(exc)) from exc
    return client_class(
        key,
        connection.base_url,
        connect_timeout=settings.JULES_CONNECT_TIMEOUT,
        read_timeout=settings.JULES_READ_TIMEOUT,
        retry_budget=settings.JULES_RETRY_BUDGET,
        total_timeout=settings.JULES_TOTAL_TIMEOUT,
        max_response_bytes=settings.JULES_MAX_RESPONSE_BYTES,
        **options,
    )


def sync_client(connection: JulesConnection) -> JulesClient:
    """The sync's client: thousands of requests to one host, so the proxy settings are
    read once, not per call."""
    client = client_for(connection, JulesClient, environment_once=True)
    # GETs in flight adapt to how Jules answers, up to the ceiling (jules/inflight.py).
    client.inflight = InFlight(
        ceiling=settings.JULES_SYNC_MAX_IN_FLIGHT, start=settings.JULES_SYNC_CONCURRENCY
    )
    return client


def outbox_client(connection: JulesConnection) -> OutboxClient:
    """The outbox's client for a connection, with the timeouts and budget of settings."""
    return client_for(connection, OutboxClient)


def describe_error(exc: BaseException) -> str:
    """Words a person understands for what went wrong talking to Jules."""
    if isinstance(exc, jerrors.AuthError):
        return (
            "Jules rejected this connection's API key (it may be revoked, deleted or mistyped). "
            "An admin can set a new key for the connection in the admin; syncing is paused until then."
        )
    if isinstance(exc, jerrors.PermissionDeniedError):
        return "Jules denied access with this API key. Check the account's access in Jules."
    if isinstance(exc, jerrors.RateLimitedError):
        return "Jules is limiting the rate of requests; the portal backs off and tries again."
    if isinstance(exc, jerrors.TransientServerError):
        return (
            "Jules could not be reached or answered with a server error; "
            "the portal tries again shortly."
        )
    if isinstance(exc, jerrors.MalformedResponseError):
        return "Jules sent a response the portal could not read; the portal tries again shortly."
    if isinstance(exc, ConnectionUnusable):
        return str(exc)
    if isinstance(exc, jerrors.JulesError):
        return f"Jules answered with an error: {exc}"
    return f"The sync failed unexpectedly ({exc.__class__.__name__}); see the worker log."


def describe_action_error(exc: jerrors.JulesError) -> str:
    """`describe_error` for an action a person asked for (launch, message, approve...)."""
    if isinstance(exc, jerrors.FailedPreconditionError):
        return f"Jules refused: {exc.message}"
    if isinstance(exc, jerrors.NotFoundError):
        return "Jules no longer knows this session (was it deleted?)."
    if isinstance(exc, jerrors.InvalidArgumentError):
        return f"Jules rejected the request: {exc.message}"
    return describe_error(exc)
