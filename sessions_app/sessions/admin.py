"""Sessions in the operator's admin: read-only; the sync keeps them."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from sessions_app.models import Session


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["display_title", "team", "state", "repo", "create_time"]
    list_filter = ["state", "team"]
    search_fields = ["title", "prompt", "remote_id"]
    readonly_fields = [f.name for f in Session._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
