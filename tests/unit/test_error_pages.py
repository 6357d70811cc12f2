"""Error answers in the portal's look: 403, 404, 500, a failed CSRF check, a long query;
the favicon; toasts that can be dismissed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.test import Client
from django.urls import reverse

from tests.factories import SessionFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def test_it_answers_a_forbidden_post_with_the_portals_403_page(client, cast):
    client.force_login(cast.member)
    url = reverse("sessions_app:team-policy", args=[cast.team.slug])
    response = client.post(url, {"forbid_self_approval": "on"})
    html = response.content.decode()
    assert response.status_code == 403
    assert "You may not do that" in html and "Only the team&#x27;s admins may change it." in html
    assert 'class="site-header"' in html and "Sign out" in html


def test_it_answers_an_unknown_address_with_the_portals_404_page(client, cast):
    client.force_login(cast.viewer)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode() and "portal.css" in response.content.decode()


def test_it_answers_outsiders_with_the_same_404_page(client, cast):
    session = SessionFactory(connection__team=cast.team)
    client.force_login(cast.outsider)
    response = client.get(reverse("sessions_app:session-detail", args=[session.pk]))
    assert response.status_code == 404 and "a team you are not in" in response.content.decode()


def test_it_renders_the_500_page_without_any_context():
    from django.template.loader import get_template

    html = get_template("500.html").render()
    assert "Something went wrong" in html and "portal.css" in html


def test_it_explains_a_failed_csrf_check_in_the_portals_look(cast):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.admin)
    url = reverse("sessions_app:team-policy", args=[cast.team.slug])
    response = client.post(url, {"forbid_self_approval": "on"})
    html = response.content.decode()
    assert response.status_code == 403
    assert "This form has expired" in html and "Nothing was changed." in html
    assert "CSRF verification failed" not in html


def test_it_serves_a_favicon_linked_from_every_page(client, cast):
    response = Client().get("/favicon.ico")
    assert response.status_code == 302 and response["Location"].endswith(".svg")
    client.force_login(cast.viewer)
    html = client.get(reverse("sessions_app:session-list")).content.decode()
    assert 'rel="icon"' in html and "favicon" in html
    assert (ROOT / "static" / "favicon.svg").read_text().startswith("<svg")


def test_it_lets_toasts_be_dismissed(client, cast):
    client.force_login(cast.member)
    session = SessionFactory(connection__team=cast.team, state="COMPLETED")
    url = reverse("sessions_app:session-archive", args=[session.pk])
    response = client.post(url, follow=True)
    html = response.content.decode()
    assert 'class="toast toast-error"' in html or 'class="toast toast-success"' in html
    assert 'data-dismiss-toast aria-label="Dismiss"' in html


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_of_long_query(config: list[str]) -> int:
    """Start gunicorn as `make run` and the image do (from the repository), and ask it
    for the list with a 5,000-character search."""
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "julesweb.settings"}
    command = [sys.executable, "-m", "gunicorn", *config, "--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        [*command, "--workers", "1", "julesweb.wsgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                url = f"http://127.0.0.1:{port}/sessions/?q={'x' * 5000}"
                return requests.get(url, allow_redirects=False, timeout=60).status_code
            except requests.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_gunicorn_lets_a_long_search_reach_the_portal():
    # Without the repository's gunicorn.conf.py gunicorn itself answers a bare 414.
    assert _status_of_long_query(["--config", os.devnull]) == 414
    # With it the portal answers (here: the sign-in redirect; signed in, the list says
    # which filter it ignored, as the next test shows).
    assert _status_of_long_query([]) == 302


def test_the_list_says_it_ignored_a_search_too_long(client, cast):
    client.force_login(cast.viewer)
    response = client.get(reverse("sessions_app:session-list"), {"q": "x" * 5000})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Ignored the search title and prompt filter" in html
