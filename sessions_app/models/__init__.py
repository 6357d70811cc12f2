"""The portal's tables, one module per concern.

teams: who may see and do what. jules: the cache of everything the Jules API says.
audit: the append-only history. outbox: user actions on their way to the service.
"""

from __future__ import annotations

from sessions_app.models.api import ApiToken, IdempotentAnswer, Scope
from sessions_app.models.audit import AuditChainHead, AuditEntry
from sessions_app.models.jules import (
    Activity,
    ActivityKind,
    JulesConnection,
    Session,
    SessionOutput,
    SessionState,
    SessionTransition,
    Source,
)
from sessions_app.models.outbox import OutboxAction
from sessions_app.models.teams import Membership, Role, Team

__all__ = [
    "Activity",
    "ActivityKind",
    "ApiToken",
    "AuditChainHead",
    "AuditEntry",
    "IdempotentAnswer",
    "JulesConnection",
    "Membership",
    "OutboxAction",
    "Role",
    "Scope",
    "Session",
    "SessionOutput",
    "SessionState",
    "SessionTransition",
    "Source",
    "Team",
]
