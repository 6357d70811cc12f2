"""The template and schedule URLs, added to `sessions_app.urls` (names under its namespace)."""

from __future__ import annotations

from django.urls import path

from sessions_app.launch_templates.views import schedules, templates

urlpatterns = [
    path("templates/", templates.template_list, name="template-list"),
    path("templates/new", templates.template_create, name="template-create"),
    path("templates/<int:pk>/", templates.template_detail, name="template-detail"),
    path("templates/<int:pk>/edit", templates.template_edit, name="template-edit"),
    path("templates/<int:pk>/launch", templates.template_launch, name="template-launch"),
    path("templates/<int:pk>/schedules/new", schedules.schedule_create, name="schedule-create"),
    path("schedules/", schedules.schedule_list, name="schedule-list"),
    path("schedules/preview", schedules.schedule_preview, name="schedule-preview"),
    path("schedules/<int:pk>/", schedules.schedule_detail, name="schedule-detail"),
    path("schedules/<int:pk>/edit", schedules.schedule_edit, name="schedule-edit"),
    path("schedules/<int:pk>/active", schedules.schedule_active, name="schedule-active"),
    path("schedules/<int:pk>/run", schedules.schedule_run_now, name="schedule-run-now"),
]
