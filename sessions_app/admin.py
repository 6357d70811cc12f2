"""The Django admin: each concern registers its own models (`<concern>/admin.py`)."""

from sessions_app.audit import admin as audit_admin
from sessions_app.connections import admin as connections_admin
from sessions_app.identity import admin as identity_admin
from sessions_app.launch_queue import admin as launch_queue_admin
from sessions_app.launch_templates import admin as launch_templates_admin
from sessions_app.outbox import admin as outbox_admin
from sessions_app.sessions import admin as sessions_admin
from sessions_app.teams import admin as teams_admin

__all__ = [
    "audit_admin",
    "connections_admin",
    "identity_admin",
    "launch_queue_admin",
    "launch_templates_admin",
    "outbox_admin",
    "sessions_admin",
    "teams_admin",
]
