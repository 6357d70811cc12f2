"""The demo team, user and connection that `make run` sets up on first start."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from sessions_app.connections import crypto
from sessions_app.models import JulesConnection, Membership, Role, Team

DEMO_USERNAME = "demo"
DEMO_TEAM_SLUG = "demo"
DEMO_CONNECTION_LABEL = "Demo Jules account"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    connection_id: int


def _password_file() -> Path:
    return Path(settings.DATA_DIR) / "demo_login"


def _holds_key(connection: JulesConnection, api_key: str) -> bool:
    if not connection.api_key_encrypted:
        return False
    try:
        return connection.get_api_key() == api_key
    except crypto.DecryptionError:
        return False


def ensure_demo(base_url: str, api_key: str) -> DemoLogin:
    """Create (or reuse) the demo team, its admin user and its Jules connection.

    The password is generated once and kept in DATA_DIR, so a second `make run` prints
    the same login; the connection follows the base URL and key of this run.
    """
    path = _password_file()
    user_model = get_user_model()
    with transaction.atomic():
        team, _ = Team.objects.get_or_create(slug=DEMO_TEAM_SLUG, defaults={"name": "Demo team"})
        user = user_model.objects.filter(username=DEMO_USERNAME).first()
        if user is None or not path.exists():
            password = secrets.token_urlsafe(12)
            if user is None:
                user = user_model.objects.create_user(DEMO_USERNAME, password=password)
            else:
                user.set_password(password)
            user.is_staff = True
            user.is_superuser = True
            user.save()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(password)
            path.chmod(0o600)
        password = path.read_text().strip()
        Membership.objects.update_or_create(team=team, user=user, defaults={"role": Role.ADMIN})
        connection = JulesConnection.objects.filter(team=team, label=DEMO_CONNECTION_LABEL).first()
        if connection is None:
            connection = JulesConnection(team=team, label=DEMO_CONNECTION_LABEL, added_by=user)
        if connection.base_url != base_url or not _holds_key(connection, api_key):
            connection.base_url = base_url
            connection.set_api_key(api_key)
            connection.sync_status = "never"
            connection.last_error = ""
        connection.enabled = True
        connection.save()
    return DemoLogin(DEMO_USERNAME, password, connection.pk)
