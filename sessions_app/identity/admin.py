"""The operator's read-only view of the links to the identity provider."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from sessions_app.models import ProviderIdentity


@admin.register(ProviderIdentity)
class ProviderIdentityAdmin(admin.ModelAdmin):
    list_display = ["user", "email", "issuer", "subject", "last_sign_in_at"]
    search_fields = ["user__username", "email", "subject"]
    readonly_fields = [
        "user",
        "issuer",
        "subject",
        "email",
        "groups",
        "created_at",
        "last_sign_in_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Links are made by signing in; deleting one lets the next sign-in make a new account.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
