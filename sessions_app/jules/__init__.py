"""Everything that speaks the Jules protocol. Knows nothing of Django."""

from __future__ import annotations

from sessions_app.jules.client import DEFAULT_BASE_URL, JulesClient
from sessions_app.jules.errors import (
    AuthError,
    FailedPreconditionError,
    InvalidArgumentError,
    JulesError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    TransientServerError,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "AuthError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "JulesClient",
    "JulesError",
    "MalformedResponseError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "TransientServerError",
]
