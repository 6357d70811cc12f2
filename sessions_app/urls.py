from __future__ import annotations

from django.urls import path

from sessions_app.views import core, sessions

app_name = "sessions_app"

urlpatterns = [
    path("", core.home, name="home"),
    path("sessions/", sessions.session_list, name="session-list"),
    path("sessions/new", sessions.session_launch, name="session-launch"),
    path("sessions/new/branches", sessions.launch_branches, name="launch-branches"),
    path("sessions/bulk", sessions.session_bulk, name="session-bulk"),
    path("sessions/<int:pk>/", sessions.session_detail, name="session-detail"),
    path("sessions/<int:pk>/row", sessions.session_row, name="session-row"),
    path("sessions/<int:pk>/activities/", sessions.session_activities, name="session-activities"),
    path("sessions/<int:pk>/approve/", sessions.session_approve, name="session-approve"),
    path("sessions/<int:pk>/message/", sessions.session_message, name="session-message"),
    path("sessions/<int:pk>/archive/", sessions.session_archive, name="session-archive"),
    path("sessions/<int:pk>/delete/", sessions.session_delete, name="session-delete"),
    path(
        "sessions/<int:pk>/patch/<int:output_id>.diff",
        sessions.patch_download,
        name="session-patch",
    ),
    path("actions/<uuid:pk>/", sessions.action_status, name="action-status"),
]
