"""CSRF on every POST, API keys kept out of pages, logs and exports, text rendered inert."""

from __future__ import annotations

import logging

import pytest
import requests
from django.test import Client
from django.urls import reverse

from sessions_app import actions, services
from sessions_app.audit import Target
from sessions_app.models import AuditEntry, JulesConnection, Membership, OutboxAction
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-live-7f3a9c1e5b2d4068"
XSS = "<script>alert('x')</script>"


def _post_urls(cast, connection, session):
    team = cast.team
    viewer = Membership.objects.get(team=team, user=cast.viewer)
    return {
        reverse("sessions_app:member-add", args=[team.slug]): {
            "username": "newcomer",
            "role": "viewer",
        },
        reverse("sessions_app:member-role", args=[team.slug, viewer.pk]): {"role": "admin"},
        reverse("sessions_app:member-remove", args=[team.slug, viewer.pk]): {},
        reverse("sessions_app:connection-add", args=[team.slug]): {
            "label": "x",
            "api_key": "k",
            "base_url": "http://127.0.0.1:9/v1alpha",
        },
        reverse("sessions_app:team-policy", args=[team.slug]): {"forbid_self_approval": "on"},
        reverse("sessions_app:connection-enabled", args=[connection.pk]): {"enabled": "0"},
        reverse("sessions_app:connection-rotate", args=[connection.pk]): {"api_key": "k"},
        reverse("sessions_app:session-approve", args=[session.pk]): {},
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
    client, cast, simulator, caplog, django_capture_on_commit_callbacks
):
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
                {"label": "Live", "api_key": SECRET, "base_url": simulator.base_url},
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
    from sessions_app import audit

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
