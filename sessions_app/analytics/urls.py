"""The analytics URLs, added to `sessions_app.urls` (names under its namespace)."""

from __future__ import annotations

from django.urls import path

from sessions_app.analytics import views

urlpatterns = [
    path("analytics/", views.analytics, name="analytics"),
    path("analytics/<slug:chart>.csv", views.analytics_csv, name="analytics-csv"),
    path("teams/<slug:slug>/analytics/", views.team_analytics, name="team-analytics"),
    path(
        "teams/<slug:slug>/analytics/<slug:chart>.csv",
        views.team_analytics_csv,
        name="team-analytics-csv",
    ),
]
