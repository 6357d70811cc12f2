"""System checks of the provider's settings, so a typo fails at start, not at sign-in."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from sessions_app.identity import mapping
from sessions_app.identity.config import is_allowed


@register()
def check_oidc_settings(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    try:
        mapping.parse(settings.OIDC_GROUP_ROLES)
    except mapping.MappingError as exc:
        errors.append(Error(str(exc), id="sessions_app.E101"))
    issuer = settings.OIDC_ISSUER
    if issuer and not is_allowed(issuer, issuer):
        errors.append(
            Error(
                f"OIDC_ISSUER {issuer} is not an address the portal may use.",
                hint="Use the provider's HTTPS address, or list it in OIDC_ALLOWED_URLS.",
                id="sessions_app.E102",
            )
        )
    if issuer and not settings.OIDC_CLIENT_ID:
        errors.append(
            Error("OIDC_ISSUER is set but OIDC_CLIENT_ID is not.", id="sessions_app.E103")
        )
    return errors
