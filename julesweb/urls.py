from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from sessions_app.api.urls import urls as api_urls
from sessions_app.web import views as core

urlpatterns = [
    path("healthz", core.healthz, name="healthz"),
    path("favicon.ico", core.favicon, name="favicon"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", api_urls()),
    path("", include("sessions_app.urls")),
]
