"""Audit entries in the operator's admin: read-only, no bulk delete."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from sessions_app.models import AuditEntry, SignInLockout


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["seq", "created_at", "actor_label", "team", "action", "target_label"]
    list_filter = ["action"]
    search_fields = ["actor_label", "target_label", "action"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    actions = None  # No bulk "delete selected".

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SignInLockout)
class SignInLockoutAdmin(admin.ModelAdmin):
    """Open lockouts with their live count; axes' own admin pages unlock people."""

    list_display = ["started_at", "scope", "username", "ip_address", "refused", "closed"]
    list_filter = ["closed", "scope"]
    search_fields = ["username", "ip_address"]
    readonly_fields = [f.name for f in SignInLockout._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
