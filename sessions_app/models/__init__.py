"""The portal's tables, one module per concern.

teams: who may see and do what. jules: the cache of everything the Jules API says.
audit: the append-only history. outbox: user actions on their way to the service.
"""

from __future__ import annotations

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
from sessions_app.models.teams import Invitation, Membership, Role, Team

__all__ = [
    "Activity",
    "ActivityKind",
    "AuditChainHead",
    "AuditEntry",
    "Invitation",
    "JulesConnection",
    "Membership",
    "OutboxAction",
    "Role",
    "Session",
    "SessionOutput",
    "SessionState",
    "SessionTransition",
    "Source",
    "Team",
]
