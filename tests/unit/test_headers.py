"""Headers on every page: the Content-Security-Policy, and no-store once signed in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def _policy(response) -> dict[str, str]:
    return dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
    )


def test_it_sends_a_policy_of_this_origin_only_without_inline_script(client, cast):
    pages = [client.get(reverse("login"))]
    client.force_login(cast.admin)
    for name in ("session-list", "session-launch", "approvals", "team-list", "audit"):
        pages.append(client.get(reverse(f"sessions_app:{name}")))
    pages.append(client.get("/static/js/portal.js"))
    pages.append(client.get("/no-such-page/"))
    for response in pages:
        policy = _policy(response)
        assert policy["default-src"] == "'self'"
        assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
        assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
        assert "unsafe" not in response["Content-Security-Policy"]


def test_it_keeps_inline_script_and_style_out_of_templates():
    # What the policy refuses must not be in the markup, or the page breaks silently.
    inline = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=|hx-on|javascript:")
    found = [
        f"{path.relative_to(TEMPLATES)}: {match.group(0)}"
        for path in TEMPLATES.rglob("*.html")
        # Mail is read by mail clients, under no policy of the portal's, and needs inline style.
        if "email" not in path.relative_to(TEMPLATES).parts
        for match in inline.finditer(path.read_text())
    ]
    assert found == []
    base = (TEMPLATES / "base.html").read_text()
    assert '"includeIndicatorStyles": false' in base and '"allowEval": false' in base


def test_it_forbids_storing_signed_in_pages_and_exports(client, cast):
    client.force_login(cast.admin)
    for url in (
        reverse("sessions_app:session-list"),
        reverse("sessions_app:audit"),
        reverse("sessions_app:audit-export", args=["csv"]),
        reverse("sessions_app:audit-export", args=["json"]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url


def test_it_keeps_the_caching_a_response_chose(client, cast):
    client.force_login(cast.admin)
    static = client.get("/static/js/portal.js")
    assert "no-store" not in static.get("Cache-Control", "")
