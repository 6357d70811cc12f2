"""The Django admin: the operator's tools for teams, members and connections, alongside the
team pages. Changes made here are audited like the same changes made on the team pages; a
connection's API key is write-only and, like on the team pages, Jules must accept it before
it is saved. Audit entries and outbox actions are read-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from sessions_app import tasks
from sessions_app.audit import chain as audit
from sessions_app.audit.chain import Target
from sessions_app.models import (
    AuditEntry,
    JulesConnection,
    Membership,
    OutboxAction,
    Session,
    Team,
)
from sessions_app.models.jules import SyncStatus
from sessions_app.sessions import services

POLICY_FIELDS = ("require_plan_approval", "forbid_self_approval")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


def _user_target(membership: Membership) -> Target:
    username = membership.user.get_username()
    return Target("user", str(membership.user_id), username)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "require_plan_approval", "forbid_self_approval"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def save_model(self, request: HttpRequest, obj: Team, form: Any, change: bool) -> None:
        before = {}
        if change:
            before = dict(Team.objects.filter(pk=obj.pk).values(*POLICY_FIELDS).get())
        super().save_model(request, obj, form, change)
        after = {name: getattr(obj, name) for name in POLICY_FIELDS}
        target = Target("team", str(obj.pk), obj.name)
        if not change:
            audit.record(
                "team.create",
                actor=request.user,
                team=obj,
                target=target,
                details={"name": obj.name, "slug": obj.slug, "policy": after},
                request=request,
            )
        elif before != after:
            audit.record(
                "policy.change",
                actor=request.user,
                team=obj,
                target=target,
                details={"before": before, "after": after},
                request=request,
            )

    def delete_model(self, request: HttpRequest, obj: Team) -> None:
        _audit_team_removed(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            _audit_team_removed(request, obj)
        super().delete_queryset(request, queryset)

    def save_formset(
        self, request: HttpRequest, form: Any, formset: BaseInlineFormSet, change: bool
    ) -> None:
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        # What each changed row was before the save, for the role change's "from".
        roles_before = {
            m.pk: m.role
            for m in Membership.objects.filter(
                pk__in=[f.instance.pk for f in formset.forms if f.instance.pk]
            )
        }
        super().save_formset(request, form, formset, change)
        team = form.instance
        for membership in formset.new_objects:
            audit.record(
                "member.add",
                actor=request.user,
                team=team,
                target=_user_target(membership),
                details={"username": membership.user.get_username(), "role": membership.role},
                request=request,
            )
        for membership, fields in formset.changed_objects:
            before = roles_before.get(membership.pk, "")
            if "role" in fields and before != membership.role:
                audit.record(
                    "member.role_change",
                    actor=request.user,
                    team=team,
                    target=_user_target(membership),
                    details={
                        "username": membership.user.get_username(),
                        "from": before,
                        "to": membership.role,
                    },
                    request=request,
                )
        for membership in formset.deleted_objects:
            audit.record(
                "member.remove",
                actor=request.user,
                team=team,
                target=_user_target(membership),
                details={"username": membership.user.get_username(), "role": membership.role},
                request=request,
            )


def _audit_team_removed(request: HttpRequest, obj: Team) -> None:
    audit.record(
        "team.delete",
        actor=request.user,
        team=obj,
        target=Target("team", str(obj.pk), obj.name),
        details={"name": obj.name, "slug": obj.slug},
        request=request,
    )


class ConnectionForm(forms.ModelForm):
    api_key = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        strip=True,
        help_text="Write-only: leave empty to keep the stored key. Jules is asked whether a "
        "new key works before it is saved; it is encrypted at rest.",
    )

    class Meta:
        model = JulesConnection
        fields = ["team", "label", "base_url", "enabled"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        key = data.get("api_key") or ""
        base_url = data.get("base_url")
        if not self.instance.pk and not key:
            self.add_error("api_key", "A new connection needs an API key.")
            return data
        if self.errors or not base_url:
            return data
        if not key and self.instance.pk and base_url != self.instance.base_url:
            # A new address: the stored key must work there too.
            key = self.instance.get_api_key()
        if key:
            try:
                services.check_api_key(key, base_url)
            except services.KeyRejected as exc:
                field = "api_key" if data.get("api_key") else "base_url"
                self.add_error(field, str(exc))
        return data


@admin.register(JulesConnection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm

    # An error report (DEBUG page, mail to ADMINS) shows the POST data: not the key.
    @method_decorator(sensitive_post_parameters("api_key"))
    def changeform_view(self, *args: Any, **kwargs: Any) -> Any:
        return super().changeform_view(*args, **kwargs)

    list_display = ["label", "team", "enabled", "sync_status", "last_success_at"]
    readonly_fields = [
        "sync_status",
        "last_success_at",
        "last_error",
        "sync_done",
        "sync_total",
        "key_rotated_at",
    ]

    def save_model(
        self, request: HttpRequest, obj: JulesConnection, form: Any, change: bool
    ) -> None:
        key = form.cleaned_data.get("api_key")
        if key:
            obj.set_api_key(key)
            obj.last_error = ""
            obj.consecutive_failures = 0
            if change:
                obj.key_rotated_at = timezone.now()
        if not change and request.user.is_authenticated:
            obj.added_by = request.user
        if not obj.enabled:
            obj.sync_status = SyncStatus.DISABLED
        elif key or "enabled" in form.changed_data:
            obj.sync_status = SyncStatus.OK if obj.last_success_at else SyncStatus.NEVER
        super().save_model(request, obj, form, change)
        target = Target("connection", str(obj.pk), obj.label)
        recorded: list[tuple[str, dict[str, Any]]] = []
        if not change:
            recorded.append(("connection.add", {"label": obj.label, "base_url": obj.base_url}))
        else:
            if key:
                recorded.append(("connection.rotate", {"label": obj.label}))
            if "enabled" in form.changed_data:
                verb = "enable" if obj.enabled else "disable"
                recorded.append((f"connection.{verb}", {"label": obj.label}))
            other = sorted(set(form.changed_data) - {"api_key", "enabled"})
            if other:
                recorded.append(("connection.change", {"label": obj.label, "changed": other}))
        for action, details in recorded:
            audit.record(
                action,
                actor=request.user,
                team=obj.team_id,
                target=target,
                details=details,
                request=request,
            )
        if obj.enabled and (key or not change or "enabled" in form.changed_data):
            services._after_commit(tasks.sync_connection, obj.pk)

    def delete_model(self, request: HttpRequest, obj: JulesConnection) -> None:
        _audit_connection_removed(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            _audit_connection_removed(request, obj)
        super().delete_queryset(request, queryset)


def _audit_connection_removed(request: HttpRequest, obj: JulesConnection) -> None:
    audit.record(
        "connection.delete",
        actor=request.user,
        team=obj.team_id,
        target=Target("connection", str(obj.pk), obj.label),
        details={"label": obj.label, "sessions": obj.sessions.count()},
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
    actions = None  # No bulk "delete selected".

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
