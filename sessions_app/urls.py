from __future__ import annotations

from django.urls import path

from sessions_app.views import core, sessions

app_name = "sessions_app"

urlpatterns = [
    path("", core.home, name="home"),
    path("sessions/", sessions.session_list, name="session-list"),
]
