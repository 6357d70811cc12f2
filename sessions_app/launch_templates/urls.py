"""The template and schedule URLs, added to `sessions_app.urls` (names under its namespace)."""

from __future__ import annotations

from django.urls import path

from sessions_app.launch_templates import views

urlpatterns = [
    path("templates/", views.template_list, name="template-list"),
    path("templates/new", views.template_create, name="template-create"),
    path("templates/<int:pk>/", views.template_detail, name="template-detail"),
    path("templates/<int:pk>/edit", views.template_edit, name="template-edit"),
    path("templates/<int:pk>/launch", views.template_launch, name="template-launch"),
    path("templates/<int:pk>/schedules/new", views.schedule_create, name="schedule-create"),
    path("schedules/", views.schedule_list, name="schedule-list"),
    path("schedules/preview", views.schedule_preview, name="schedule-preview"),
    path("schedules/<int:pk>/", views.schedule_detail, name="schedule-detail"),
    path("schedules/<int:pk>/edit", views.schedule_edit, name="schedule-edit"),
    path("schedules/<int:pk>/active", views.schedule_active, name="schedule-active"),
    path("schedules/<int:pk>/run", views.schedule_run_now, name="schedule-run-now"),
]
