"""The operator's team admin: every change goes through `teams.services` (audit, the last
admin guard), as on the team pages."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from sessions_app.models import Membership, Role, Team
from sessions_app.teams import services


class MembershipFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        admins = 0
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data and not data.get("DELETE") and data.get("role") == Role.ADMIN:
                admins += 1
        if admins == 0:
            raise ValidationError(
                "A team needs at least one admin: keep or make one member an admin."
            )


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    extra = 1
    autocomplete_fields = ["user"]
    # The provider's groups manage their own memberships (docs/sign-in.md).
    readonly_fields = ["origin"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "require_plan_approval", "forbid_self_approval"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def save_model(self, request: HttpRequest, obj: Team, form: Any, change: bool) -> None:
        if not change:
            services.team_create(actor=request.user, team=obj, request=request)
            return
        wanted = {name: getattr(obj, name) for name in services.POLICY_FIELDS}
        stored = Team.objects.filter(pk=obj.pk).values(*services.POLICY_FIELDS).get()
        for name, value in stored.items():
            setattr(obj, name, value)
        super().save_model(request, obj, form, change)
        services.team_update_policy(
            actor=request.user, team=obj, operator=True, request=request, **wanted
        )
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: Team) -> None:
        services.team_delete(actor=request.user, team=obj, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            services.team_delete(actor=request.user, team=obj, request=request)

    def save_formset(
        self, request: HttpRequest, form: Any, formset: BaseInlineFormSet, change: bool
    ) -> None:
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        team = form.instance
        kept: list[Any] = []
        removed: list[Any] = []
        for row in formset.forms:
            data = getattr(row, "cleaned_data", None) or {}
            if not data or (not row.instance.pk and not row.has_changed()):
                continue
            (removed if data.get("DELETE") else kept).append(row)
        # Adds and promotions before demotions and removals, so the last-admin rule
        # sees the team as it will be.
        kept.sort(key=lambda row: row.cleaned_data["role"] != Role.ADMIN)
        for row in kept:
            role = row.cleaned_data["role"]
            if not row.instance.pk:
                services.membership_add(
                    actor=request.user,
                    team=team,
                    user=row.cleaned_data["user"],
                    role=role,
                    operator=True,
                    request=request,
                )
            elif "role" in row.changed_data:
                membership = Membership.objects.select_related("team").get(pk=row.instance.pk)
                services.membership_change_role(
                    actor=request.user,
                    membership=membership,
                    role=role,
                    operator=True,
                    request=request,
                )
        for row in removed:
            if row.instance.pk:
                membership = Membership.objects.select_related("team").get(pk=row.instance.pk)
                services.membership_remove(
                    actor=request.user, membership=membership, operator=True, request=request
                )
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
