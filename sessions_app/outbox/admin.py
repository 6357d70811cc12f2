"""Outbox actions in the operator's admin: read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from sessions_app.models import OutboxAction


@admin.register(OutboxAction)
class OutboxActionAdmin(admin.ModelAdmin):
    """Read-only: an operator sees why an action waits or failed; the outbox delivers it."""

    list_display = ["created_at", "kind", "status", "team", "actor", "attempts", "last_error"]
    list_filter = ["status", "kind"]
    readonly_fields = [f.name for f in OutboxAction._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
