"""The Django admin: the operator's way to manage teams, members and connections until the
team pages land. API keys are write-only here; audit entries are read-only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from sessions_app import audit
from sessions_app.audit import Target
from sessions_app.models import (
    AuditEntry,
    JulesConnection,
    Membership,
    OutboxAction,
    Session,
    Team,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "require_plan_approval", "forbid_self_approval"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


class ConnectionForm(forms.ModelForm):
    api_key = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Write-only: leave empty to keep the stored key. It is encrypted at rest.",
    )

    class Meta:
        model = JulesConnection
        fields = ["team", "label", "base_url", "enabled"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.instance.pk and not data.get("api_key"):
            self.add_error("api_key", "A new connection needs an API key.")
        return data


@admin.register(JulesConnection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ["label", "team", "enabled", "sync_status", "last_success_at"]
    readonly_fields = ["sync_status", "last_success_at", "last_error", "sync_done", "sync_total"]

    def save_model(
        self, request: HttpRequest, obj: JulesConnection, form: Any, change: bool
    ) -> None:
        key = form.cleaned_data.get("api_key")
        if key:
            obj.set_api_key(key)
            obj.sync_status = "never"
            obj.last_error = ""
        super().save_model(request, obj, form, change)
        action = (
            "connection.rotate"
            if change and key
            else "connection.add"
            if not change
            else "connection.change"
        )
        audit.record(
            action,
            actor=request.user,
            team=obj.team_id,
            target=Target("connection", str(obj.pk), obj.label),
            request=request,
        )


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["display_title", "team", "state", "repo", "create_time"]
    list_filter = ["state", "team"]
    search_fields = ["title", "prompt", "remote_id"]
    readonly_fields = [f.name for f in Session._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


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


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["seq", "created_at", "actor_label", "team", "action", "target_label"]
    list_filter = ["action"]
    search_fields = ["actor_label", "target_label", "action"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
