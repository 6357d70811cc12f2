"""Templates and schedules in the operator's admin: read-only. Teams change them on their
pages, where every change is a version or an audited write (docs/templates.md)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from sessions_app.models import LaunchTemplate, Schedule, ScheduleRun, TemplateVersion


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class VersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = readonly_fields = ("number", "author", "created_at", "changed", "prompt")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LaunchTemplate)
class LaunchTemplateAdmin(ReadOnly):
    list_display = ["name", "team", "current", "updated_at"]
    list_filter = ["team"]
    search_fields = ["name"]
    readonly_fields = [f.name for f in LaunchTemplate._meta.fields]
    inlines = [VersionInline]


@admin.register(Schedule)
class ScheduleAdmin(ReadOnly):
    list_display = ["name", "team", "template", "cron", "timezone", "active", "next_run_at"]
    list_filter = ["active", "team"]
    readonly_fields = [f.name for f in Schedule._meta.fields]


@admin.register(ScheduleRun)
class ScheduleRunAdmin(ReadOnly):
    list_display = ["schedule", "slot", "trigger", "status", "reason"]
    list_filter = ["status", "trigger"]
    readonly_fields = [f.name for f in ScheduleRun._meta.fields]
