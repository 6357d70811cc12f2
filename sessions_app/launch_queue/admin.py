"""The launch queue in the operator's admin: read-only. Caps change on the connection's
page, through the audited service (docs/launch-queue.md)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from sessions_app.models import LaunchCaps, LaunchTicket


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LaunchCaps)
class LaunchCapsAdmin(ReadOnly):
    list_display = [
        "connection",
        "tier",
        "daily_cap",
        "concurrent_cap",
        "learned_daily_cap",
        "learned_concurrent_cap",
        "max_in_flight",
    ]
    readonly_fields = [f.name for f in LaunchCaps._meta.fields]


@admin.register(LaunchTicket)
class LaunchTicketAdmin(ReadOnly):
    list_display = ["created_at", "team", "connection", "launcher", "status", "wait_reason"]
    list_filter = ["status", "wait_reason"]
    readonly_fields = [f.name for f in LaunchTicket._meta.fields]
