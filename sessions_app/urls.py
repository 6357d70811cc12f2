from __future__ import annotations

from django.urls import path

from sessions_app.analytics import urls as analytics_urls
from sessions_app.api import pages as api_pages
from sessions_app.audit import views as audit
from sessions_app.connections import views as connections
from sessions_app.identity import views as identity
from sessions_app.launch_queue import bulk_message
from sessions_app.launch_queue import views as launch_queue
from sessions_app.launch_templates import urls as launch_templates
from sessions_app.notifications import views as notifications
from sessions_app.search import views as search
from sessions_app.sessions.views import approvals, launch, sessions
from sessions_app.teams import views as teams
from sessions_app.web import views as core

app_name = "sessions_app"

urlpatterns = [
    path("", core.home, name="home"),
    path("sessions/", sessions.session_list, name="session-list"),
    path("sessions/new", launch.session_launch, name="session-launch"),
    path("sessions/new/branches", launch.launch_branches, name="launch-branches"),
    path("sessions/bulk", sessions.session_bulk, name="session-bulk"),
    path("sessions/live-rows", sessions.session_live_rows, name="session-live-rows"),
    path("sessions/<int:pk>/", sessions.session_detail, name="session-detail"),
    path("sessions/<int:pk>/live/", sessions.session_live, name="session-live"),
    path("sessions/<int:pk>/approve/", approvals.session_approve, name="session-approve"),
    path("sessions/<int:pk>/message/", sessions.session_message, name="session-message"),
    path("sessions/<int:pk>/archive/", sessions.session_archive, name="session-archive"),
    path("sessions/<int:pk>/delete/", sessions.session_delete, name="session-delete"),
    path(
        "sessions/<int:pk>/patch/<int:output_id>.diff",
        sessions.patch_download,
        name="session-patch",
    ),
    path(
        "sessions/<int:pk>/patch/activity-<int:activity_id>.diff",
        sessions.activity_patch_download,
        name="session-activity-patch",
    ),
    path("actions/<uuid:pk>/", launch.action_status, name="action-status"),
    path("sessions/<int:pk>/history/", audit.session_history, name="session-history"),
    path("approvals/", approvals.approvals_inbox, name="approvals"),
    path("teams/", teams.team_list, name="team-list"),
    path("teams/<slug:slug>/", teams.team_detail, name="team-detail"),
    path("teams/<slug:slug>/invitations/", teams.invitation_create, name="invitation-create"),
    path(
        "teams/<slug:slug>/invitations/<int:invitation_pk>/revoke/",
        teams.invitation_revoke,
        name="invitation-revoke",
    ),
    path(
        "invitations/<int:pk>/accept/",
        teams.invitation_answer,
        {"answer": "accept"},
        name="invitation-accept",
    ),
    path(
        "invitations/<int:pk>/decline/",
        teams.invitation_answer,
        {"answer": "decline"},
        name="invitation-decline",
    ),
    path(
        "teams/<slug:slug>/members/<int:membership_pk>/role/",
        teams.member_role,
        name="member-role",
    ),
    path(
        "teams/<slug:slug>/members/<int:membership_pk>/remove/",
        teams.member_remove,
        name="member-remove",
    ),
    path("teams/<slug:slug>/connections/add/", connections.connection_add, name="connection-add"),
    path("teams/<slug:slug>/policy/", teams.team_policy, name="team-policy"),
    path("connections/<int:pk>/", connections.connection_detail, name="connection-detail"),
    path("connections/<int:pk>/rotate/", connections.connection_rotate, name="connection-rotate"),
    path(
        "connections/<int:pk>/enabled/", connections.connection_enabled, name="connection-enabled"
    ),
    path("notifications/", notifications.notification_list, name="notification-list"),
    path("notifications/count", notifications.notification_count, name="notification-count"),
    path("notifications/<int:pk>/read/", notifications.notification_read, name="notification-read"),
    path(
        "notifications/read-all/",
        notifications.notifications_read_all,
        name="notifications-read-all",
    ),
    path(
        "notifications/preferences/",
        notifications.notification_preferences,
        name="notification-preferences",
    ),
    path(
        "notifications/unsubscribe/<str:token>/",
        notifications.notification_unsubscribe,
        name="notification-unsubscribe",
    ),
    path("teams/<slug:slug>/channels/", notifications.team_channels, name="team-channels"),
    path(
        "teams/<slug:slug>/notification-settings/",
        notifications.team_notification_settings,
        name="team-notification-settings",
    ),
    path("channels/<int:pk>/", notifications.endpoint_detail, name="endpoint-detail"),
    path("channels/<int:pk>/rotate/", notifications.endpoint_rotate, name="endpoint-rotate"),
    path("channels/<int:pk>/enabled/", notifications.endpoint_enabled, name="endpoint-enabled"),
    path(
        "channels/<int:pk>/deliveries/<uuid:delivery_id>/redeliver/",
        notifications.delivery_redeliver,
        name="delivery-redeliver",
    ),
    path("connections/<int:pk>/rename/", connections.connection_rename, name="connection-rename"),
    path("connections/<int:pk>/remove/", connections.connection_remove, name="connection-remove"),
    path("tokens/", api_pages.token_list, name="api-tokens"),
    path("tokens/new", api_pages.token_create, name="api-token-create"),
    path("tokens/<uuid:pk>/revoke", api_pages.token_revoke, name="api-token-revoke"),
    path("teams/<slug:slug>/tokens/", api_pages.team_tokens, name="team-tokens"),
    path("teams/<slug:slug>/tokens/new", api_pages.team_token_create, name="team-token-create"),
    path("audit/", audit.audit_list, name="audit"),
    path("audit/export.<str:fmt>", audit.audit_export, name="audit-export"),
    path("invitations/join/<str:token>/", identity.invitation_join, name="invitation-join"),
    path("teams/<slug:slug>/queue/", launch_queue.team_queue, name="team-queue"),
    path("queue/<uuid:pk>/cancel/", launch_queue.queue_cancel, name="queue-cancel"),
    path("queue/<uuid:pk>/move/", launch_queue.queue_move, name="queue-move"),
    path("connections/<int:pk>/caps/", launch_queue.connection_caps, name="connection-caps"),
    path("sessions/bulk/messages", bulk_message.bulk_message_status, name="bulk-message-status"),
]

# Launch templates and schedules (docs/templates.md).
urlpatterns += launch_templates.urlpatterns

# Search across sessions (docs/search.md).
urlpatterns += [path("search/", search.search, name="search")]
# Analytics (docs/analytics.md).
urlpatterns += analytics_urls.urlpatterns
