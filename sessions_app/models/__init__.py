"""The portal's tables, one module per concern.

teams: who may see and do what. jules: the cache of everything the Jules API says.
audit: the append-only history. outbox: user actions on their way to the service.
notifications: events and their delivery to people and other systems.
"""

from __future__ import annotations

from sessions_app.models.analytics import SessionFacts
from sessions_app.models.api import ApiToken, IdempotentAnswer, Scope
from sessions_app.models.audit import AuditChainHead, AuditEntry, SignInLockout
from sessions_app.models.identity import ProviderIdentity, UsedNonce
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
from sessions_app.models.launch_queue import LaunchCaps, LaunchTicket
from sessions_app.models.notifications import (
    Channel,
    Delivery,
    DigestPreference,
    Endpoint,
    Event,
    EventKind,
    Notification,
    NotificationPreference,
    TeamNotificationSettings,
)
from sessions_app.models.outbox import OutboxAction
from sessions_app.models.search import SessionSearchDocument
from sessions_app.models.teams import Invitation, Membership, Role, Team
from sessions_app.models.templates import (
    LaunchTemplate,
    Schedule,
    ScheduleRun,
    TemplateLaunch,
    TemplateVersion,
)

__all__ = [
    "Activity",
    "ActivityKind",
    "ApiToken",
    "AuditChainHead",
    "AuditEntry",
    "Channel",
    "Delivery",
    "DigestPreference",
    "Endpoint",
    "Event",
    "EventKind",
    "IdempotentAnswer",
    "Invitation",
    "JulesConnection",
    "LaunchCaps",
    "LaunchTemplate",
    "LaunchTicket",
    "Membership",
    "Notification",
    "NotificationPreference",
    "OutboxAction",
    "ProviderIdentity",
    "Role",
    "Schedule",
    "ScheduleRun",
    "Scope",
    "Session",
    "SessionFacts",
    "SessionOutput",
    "SessionSearchDocument",
    "SessionState",
    "SessionTransition",
    "SignInLockout",
    "Source",
    "Team",
    "TeamNotificationSettings",
    "TemplateLaunch",
    "TemplateVersion",
    "UsedNonce",
]
