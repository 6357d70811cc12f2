"""The foundation: settings, sign-in, the layout, /healthz, and the deploy check."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from cryptography.fernet import Fernet
from django.urls import reverse

from sessions_app.connections import crypto
from tests.factories import DEFAULT_PASSWORD, ConnectionFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]


def _settings_variables() -> set[str]:
    source = (ROOT / "julesweb" / "settings.py").read_text()
    names = set(re.findall(r'env(?:bool|int|float|list)?\("([A-Z_]+)"', source))
    names |= set(re.findall(r'secret\("([A-Z_]+)"', source))
    return names


def test_it_documents_every_setting_in_env_example_and_readme():
    names = _settings_variables()
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "FIELD_ENCRYPTION_KEY"} <= names
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    missing_example = sorted(n for n in names if not re.search(rf"^#? ?{n}=", example, re.M))
    missing_readme = sorted(n for n in names if f"`{n}`" not in readme)
    assert missing_example == []
    assert missing_readme == []


@pytest.mark.django_db
def test_it_serves_healthz_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert set(body) == {"status", "database", "broker", "sync"}


@pytest.mark.django_db
def test_it_reports_a_dead_database_as_503(client):
    with mock.patch(
        "sessions_app.web.views._database_status", return_value={"ok": False, "error": "X"}
    ):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


@pytest.mark.django_db
def test_it_keeps_secrets_out_of_healthz(client):
    ConnectionFactory(api_key="super-secret-key-123")
    response = client.get("/healthz")
    assert b"super-secret-key-123" not in response.content
    assert b"api_key" not in response.content


@pytest.mark.django_db
def test_it_requires_login_for_every_page_but_login(client):
    response = client.get(reverse("sessions_app:session-list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert client.get(reverse("login")).status_code == 200


@pytest.mark.django_db
def test_it_signs_in_and_shows_the_layout(client):
    UserFactory(username="alice")
    response = client.post(
        reverse("login"), {"username": "alice", "password": DEFAULT_PASSWORD}, follow=True
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "alice" in html
    assert 'hx-headers=\'{"X-CSRFToken"' in html
    assert "htmx" in html and "portal.css" in html
    assert "cdn" not in html.lower()


@pytest.mark.django_db
def test_it_rejects_a_wrong_password_with_a_message(client):
    UserFactory(username="bob")
    response = client.post(reverse("login"), {"username": "bob", "password": "wrong"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()


@pytest.mark.django_db
def test_it_signs_out_with_post(client):
    user = UserFactory(username="carol")
    client.force_login(user)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("sessions_app:session-list")).status_code == 302


@pytest.mark.django_db
def test_it_turns_messages_into_an_htmx_event(client, rf):
    from django.contrib import messages
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.http import HttpResponse

    from sessions_app.web.middleware import HtmxMessagesMiddleware

    def view(request):
        messages.success(request, "Plan approved <b>")
        return HttpResponse("fragment")

    request = rf.get("/", HTTP_HX_REQUEST="true")
    request.session = {}
    request._messages = FallbackStorage(request)
    request.htmx = True
    response = HtmxMessagesMiddleware(view)(request)
    payload = json.loads(response["HX-Trigger"])
    assert payload["messages"] == [{"level": "success", "text": "Plan approved <b>"}]


def test_it_encrypts_and_rotates_api_keys(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    token = crypto.encrypt("jules-key")
    assert "jules-key" not in token
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(token) == "jules-key"
    rotated = crypto.rotate(token)
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == "jules-key"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)


def _manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 20 + "-production-secret-with-enough-entropy-0123456789",
    "ALLOWED_HOSTS": "portal.example.com",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "SESSION_COOKIE_SECURE": "1",
    "CSRF_COOKIE_SECURE": "1",
}


def test_it_passes_check_deploy_with_production_values(tmp_path):
    env = {
        **PRODUCTION,
        "DATA_DIR": str(tmp_path),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_it_warns_on_check_deploy_without_production_values(tmp_path):
    env = {"DEBUG": "1", "DATA_DIR": str(tmp_path)}
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS" in result.stdout + result.stderr


def test_it_refuses_to_start_without_a_secret_key_in_production(tmp_path):
    env = {"DEBUG": "0", "DATA_DIR": str(tmp_path), "SECRET_KEY": "", "SECRET_KEY_FILE": ""}
    result = _manage(["check"], env)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
