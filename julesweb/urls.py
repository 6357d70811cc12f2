from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from sessions_app.api.urls import urls as api_urls
from sessions_app.identity import views as identity
from sessions_app.web import views as core

urlpatterns = [
    path("healthz", core.healthz, name="healthz"),
    path("favicon.ico", core.favicon, name="favicon"),
    path("accounts/login/", identity.SignInView.as_view(), name="login"),
    path("accounts/logout/", identity.sign_out, name="logout"),
    path("accounts/oidc/login/", identity.oidc_start, name="oidc-login"),
    path("accounts/oidc/callback/", identity.oidc_callback, name="oidc-callback"),
    path("admin/", admin.site.urls),
    path("api/v1/", api_urls()),
    path("", include("sessions_app.urls")),
]
