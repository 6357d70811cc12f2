"""System checks that `check --deploy` runs for the portal's own settings."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def check_field_encryption_key(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if not settings.FIELD_ENCRYPTION_KEYS:
        return [
            Warning(
                "FIELD_ENCRYPTION_KEY is not set; API keys are encrypted with a key derived "
                "from SECRET_KEY, which ties them to it.",
                hint="Generate one with `python manage.py generate_field_key` and set it.",
                id="sessions_app.W001",
            )
        ]
    return []


@register()
def check_field_encryption_key_format(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for index, key in enumerate(settings.FIELD_ENCRYPTION_KEYS):
        try:
            Fernet(key.encode())
        except ValueError:
            errors.append(
                Error(
                    f"FIELD_ENCRYPTION_KEY entry {index + 1} is not a valid Fernet key.",
                    hint="Each key is 32 url-safe base64-encoded bytes; separate keys by commas.",
                    id="sessions_app.E001",
                )
            )
    return errors
