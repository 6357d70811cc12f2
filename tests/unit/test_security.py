"""CSRF on every POST, API keys kept out of pages, logs and exports, text rendered inert."""

from __future__ import annotations

import logging

import pytest
import requests
from django.test import Client
from django.urls import reverse

from sessions_app.audit.chain import Target
from sessions_app.models import AuditEntry, JulesConnection, Membership, OutboxAction
from sessions_app.outbox import delivery as actions
from sessions_app.sessions import services
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-live-7f3a9c1e5b2d4068"
XSS = "<script>alert('x')</script>"


def _post_urls(cast, connection, session):
    team = cast.team
    viewer = Membership.objects.get(team=team, user=cast.viewer)
    return {
        reverse("sessions_app:invitation-create", args=[team.slug]): {
            "email": "newcomer@example.com",
            "role": "viewer",
        },
        reverse("sessions_app:member-role", args=[team.slug, viewer.pk]): {"role": "admin"},
        reverse("sessions_app:member-remove", args=[team.slug, viewer.pk]): {},
        reverse("sessions_app:connection-add", args=[team.slug]): {"label": "x", "api_key": "k"},
        reverse("sessions_app:connection-rename", args=[connection.pk]): {"label": "y"},
        reverse("sessions_app:connection-remove", args=[connection.pk]): {},
        reverse("sessions_app:team-policy", args=[team.slug]): {"forbid_self_approval": "on"},
        reverse("sessions_app:connection-enabled", args=[connection.pk]): {"enabled": "0"},
        reverse("sessions_app:connection-rotate", args=[connection.pk]): {"api_key": "k"},
        reverse("sessions_app:session-approve", args=[session.pk]): {},
        reverse("sessions_app:session-launch"): {"connection": connection.pk, "prompt": "x"},
        reverse("sessions_app:session-message", args=[session.pk]): {"prompt": "x"},
        reverse("sessions_app:session-archive", args=[session.pk]): {},
        reverse("sessions_app:session-delete", args=[session.pk]): {},
        reverse("sessions_app:session-bulk"): {"action": "approve", "ids": [session.pk]},
        reverse("login"): {"username": "admin", "password": "x"},
        reverse("logout"): {},
        reverse("admin:sessions_app_team_delete", args=[team.pk]): {"post": "yes"},
    }


def test_it_enforces_csrf_on_every_post(cast):
    UserFactory(username="newcomer")
    connection = ConnectionFactory(team=cast.team)
    session = SessionFactory(connection=connection, state="AWAITING_PLAN_APPROVAL")
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.admin)
    before = AuditEntry.objects.count()
    for url, data in _post_urls(cast, connection, session).items():
        assert client.post(url, data).status_code == 403, url
        assert client.post(url, data, HTTP_HX_REQUEST="true").status_code == 403, url
    assert AuditEntry.objects.count() == before
    assert not OutboxAction.objects.exists()
    # Still signed in: the logout without a token did nothing either.
    assert client.get(reverse("sessions_app:team-list")).status_code == 200
    assert Membership.objects.get(team=cast.team, user=cast.viewer).role == "viewer"


def test_it_accepts_a_post_with_the_token_from_the_page(cast):
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.admin)
    page = client.get(reverse("sessions_app:team-detail", args=[cast.team.slug]))
    token = page.context["csrf_token"]
    response = client.post(
        reverse("sessions_app:team-policy", args=[cast.team.slug]),
        {"forbid_self_approval": "on", "csrfmiddlewaretoken": str(token)},
    )
    assert response.status_code == 302


def test_it_keeps_api_keys_out_of_pages_logs_and_exports(
    client, cast, simulator, settings, caplog, django_capture_on_commit_callbacks
):
    settings.JULES_API_BASE_URL = simulator.base_url
    caplog.set_level(logging.DEBUG)
    requests.post(
        f"{simulator.admin_url}/accounts", json={"keys": [SECRET]}, timeout=5
    ).raise_for_status()
    client.force_login(cast.admin)
    pages = []
    with django_capture_on_commit_callbacks(execute=True):
        pages.append(
            client.post(
                reverse("sessions_app:connection-add", args=[cast.team.slug]),
                {"label": "Live", "api_key": SECRET},
            )
        )
    connection = JulesConnection.objects.get(label="Live")
    assert connection.get_api_key() == SECRET
    # A rejected rotation echoes the form back: the typed key must not come with it.
    pages.append(
        client.post(
            reverse("sessions_app:connection-rotate", args=[connection.pk]),
            {"api_key": SECRET + "-typo"},
        )
    )
    # Deliver an action with the key, including a failure that ends in an error message.
    launch = services.session_launch(user=cast.admin, connection=connection, prompt="x")
    actions.deliver(str(launch.pk))
    bad = ConnectionFactory(team=cast.team, base_url=simulator.base_url, api_key=SECRET + "-old")
    failed = services.session_launch(user=cast.admin, connection=bad, prompt="y")
    actions.deliver(str(failed.pk))
    for name, args in [
        ("team-list", []),
        ("team-detail", [cast.team.slug]),
        ("connection-detail", [connection.pk]),
        ("connection-detail", [bad.pk]),
        ("connection-rotate", [connection.pk]),
        ("audit", []),
        ("approvals", []),
        ("session-list", []),
    ]:
        pages.append(client.get(reverse(f"sessions_app:{name}", args=args)))
    exports = [
        b"".join(client.get(reverse("sessions_app:audit-export", args=[fmt])).streaming_content)
        for fmt in ("csv", "json")
    ]
    for response in pages:
        assert SECRET not in response.content.decode(), response.request["PATH_INFO"]
    for body in exports:
        assert SECRET.encode() not in body
    assert SECRET not in caplog.text
    assert SECRET not in str(list(AuditEntry.objects.values_list("details", flat=True)))
    assert SECRET not in str(list(OutboxAction.objects.values_list("last_error", "result")))
    assert SECRET not in repr(connection) and SECRET not in str(connection)
    assert OutboxAction.objects.get(pk=failed.pk).status == "failed"


def test_it_renders_prompts_messages_and_labels_inert(client, cast):
    connection = ConnectionFactory(team=cast.team, label=XSS)
    session = SessionFactory(
        connection=connection, title=XSS, prompt=XSS, state="AWAITING_PLAN_APPROVAL"
    )
    ActivityFactory(
        session=session,
        kind="planGenerated",
        plan_id="a" * 32,
        plan_steps=[{"title": XSS, "description": XSS}],
    )
    services.session_send_message(user=cast.member, session=session, prompt=XSS)
    audit_target = Target("session", str(session.pk), XSS)
    from sessions_app.audit import chain as audit

    audit.record("session.message", actor=cast.member, team=cast.team, target=audit_target)
    client.force_login(cast.admin)
    for url in [
        reverse("sessions_app:team-detail", args=[cast.team.slug]),
        reverse("sessions_app:connection-detail", args=[connection.pk]),
        reverse("sessions_app:approvals"),
        reverse("sessions_app:audit"),
        reverse("sessions_app:session-history", args=[session.pk]),
    ]:
        html = client.get(url).content.decode()
        assert "<script>alert" not in html, url
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html, url


def _active_markup(html):
    """Markup a browser would run: script tags, event handlers, javascript: links."""
    import re

    return re.findall(
        r"<script(?![^>]*\bsrc=\"/static/)[^>]*>(?!\s*</script>)|<[a-z][^>]*\son[a-z]+\s*=|"
        r"(?:href|src|action)\s*=\s*[\"']?\s*javascript:",
        html,
        flags=re.IGNORECASE,
    )


def test_it_renders_every_text_of_a_session_inert(client, cast):
    """Prompts, plans, messages, patches, commands, outputs: escaped, never markup."""
    from sessions_app.models import SessionOutput

    img = "<img src=x onerror=alert(1)>"
    patch = (
        f"diff --git a/x.html b/x.html\n--- a/x.html\n+++ b/x.html\n@@ -1 +1 @@\n-{XSS}\n+{img}\n"
    )
    connection = ConnectionFactory(team=cast.team, label=XSS)
    session = SessionFactory(
        connection=connection,
        title=XSS,
        prompt=f"{XSS} {img}",
        state="AWAITING_PLAN_APPROVAL",
        launched_by=cast.member,
        url="javascript:alert(3)",
        pr_url="javascript:alert(4)",
    )
    ActivityFactory(
        session=session,
        kind="planGenerated",
        plan_id="a" * 32,
        plan_steps=[{"title": XSS, "description": img}],
    )
    ActivityFactory(session=session, kind="userMessaged", originator="user", message=XSS)
    ActivityFactory(
        session=session,
        kind="agentMessaged",
        message=f"{XSS} [link](javascript:alert(2)) {img}",
    )
    ActivityFactory(
        session=session,
        kind="progressUpdated",
        progress_title=XSS,
        progress_description=img,
        artifacts=[
            {"kind": "bashOutput", "command": XSS, "output": img, "exit_code": 1},
            {"kind": "changeSet", "patch": patch, "suggested_commit_message": XSS},
        ],
    )
    SessionOutput.objects.create(
        session=session,
        position=0,
        kind="changeSet",
        patch=patch,
        suggested_commit_message=XSS,
    )
    SessionOutput.objects.create(
        session=session,
        position=1,
        kind="pullRequest",
        url="javascript:alert(5)",
        title=XSS,
        description=img,
    )
    services.session_send_message(user=cast.member, session=session, prompt=img)
    client.force_login(cast.admin)
    pages = {
        "detail": reverse("sessions_app:session-detail", args=[session.pk]),
        "list": reverse("sessions_app:session-list"),
        "approvals": reverse("sessions_app:approvals"),
        "history": reverse("sessions_app:session-history", args=[session.pk]),
        "audit": reverse("sessions_app:audit"),
    }
    for name, url in pages.items():
        html = client.get(url).content.decode()
        assert _active_markup(html) == [], name
    detail = client.get(pages["detail"]).content.decode()
    # The payloads are there, as text.
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in detail
    assert "onerror=alert(1)" in detail.replace("&#x27;", "'")
    # The poll with nothing shown yet answers every part: header, plan, timeline, outputs.
    fragment = client.get(
        reverse("sessions_app:session-live", args=[session.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "onerror=alert(1)" in fragment.replace("&#x27;", "'")
    assert _active_markup(fragment) == [], "session-live"
    # A downloaded patch is served as a file, not as a page a browser would render.
    output = session.outputs.get(kind="changeSet")
    download = client.get(reverse("sessions_app:session-patch", args=[session.pk, output.pk]))
    assert download["Content-Type"].startswith("text/x-diff")
    assert download["Content-Disposition"].startswith("attachment")
    assert download["X-Content-Type-Options"] == "nosniff"


def test_the_inert_check_finds_live_markup():
    """The helper above is what the test relies on: it must catch each kind."""
    assert _active_markup("<p><script>alert(1)</script></p>")
    assert _active_markup('<img src="x" onerror="alert(1)">')
    assert _active_markup('<a href="javascript:alert(1)">x</a>')
    assert not _active_markup("&lt;script&gt;alert(1)&lt;/script&gt; &lt;img onerror=x&gt;")


@pytest.mark.parametrize("where", ["team page", "admin"])
def test_it_keeps_api_keys_out_of_error_reports(cast, caplog, where):
    """A crash while a key is checked: neither the POST data nor any frame's variables
    (down to the HTTP library's headers) show it in Django's error page or mail."""
    from unittest import mock

    from django.views.debug import ExceptionReporter

    if where == "admin":
        user = UserFactory(username="operator", is_staff=True, is_superuser=True)
        url = reverse("admin:sessions_app_julesconnection_add")
        data = {"team": cast.team.pk, "label": "x", "enabled": "on"}
    else:
        user = cast.admin
        url = reverse("sessions_app:connection-add", args=[cast.team.slug])
        data = {"label": "x"}
    client = Client(raise_request_exception=False)
    client.force_login(user)
    data.update({"api_key": SECRET, "base_url": "http://127.0.0.1:9/v1alpha"})
    with mock.patch("requests.Session.send", side_effect=RuntimeError("the network broke")):
        response = client.post(url, data)
    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.name == "django.request"]
    reporter = ExceptionReporter(record.request, *record.exc_info)
    text, html = reporter.get_traceback_text(), reporter.get_traceback_html()
    assert "the network broke" in text and "X-Goog-Api-Key" in html
    assert SECRET not in text and SECRET not in html
    assert not JulesConnection.objects.exists()
