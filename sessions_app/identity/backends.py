"""The account backend: Django's, with passwords refused when PASSWORD_SIGN_IN=0."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from sessions_app.identity.config import password_sign_in


class PasswordBackend(ModelBackend):
    """Also the backend that provider sign-ins are recorded under, for `get_user`."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if not password_sign_in():
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
