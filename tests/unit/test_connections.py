"""Connections: where the server may connect (the operator's addresses only), what a key
check tells a person, deadlines and size caps in the web process and the sync, one account
per team, renaming and removing, and a connection that stays in its team."""

from __future__ import annotations

import time

import pytest
import requests
from django.urls import reverse

from jules.client import JulesClient
from sessions_app import sync
from sessions_app.access import ActionNotAllowed
from sessions_app.connections import addresses, services
from sessions_app.models import AuditEntry, JulesConnection, OutboxAction
from sessions_app.outbox import delivery
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory, UserFactory
from tests.hostile import hostile_server

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
OFFICIAL = "https://jules.googleapis.com/v1alpha"


@pytest.fixture
def operator_only(settings):
    """The portal's defaults: the official address and nothing else."""
    settings.JULES_API_BASE_URL = OFFICIAL
    settings.JULES_ALLOWED_BASE_URLS = []


# --- where the server connects ----------------------------------------------------------


@pytest.mark.parametrize(
    "url, allowed",
    [
        (OFFICIAL, True),
        (OFFICIAL + "/", True),
        ("HTTPS://Jules.GoogleAPIs.com:443/v1alpha", True),
        ("http://jules.googleapis.com/v1alpha", False),
        ("https://jules.googleapis.com/v1alpha/sessions", False),
        ("https://jules.googleapis.com/v1alpha#", False),
        ("https://jules.googleapis.com/v1alpha?x=1", False),
        ("https://user@jules.googleapis.com/v1alpha", False),
        ("https://jules.googleapis.com.evil.test/v1alpha", False),
        ("http://127.0.0.1:8765/v1alpha", False),
        ("http://169.254.169.254/latest", False),
        ("ftp://jules.googleapis.com/v1alpha", False),
        ("", False),
    ],
)
def test_only_the_operators_address_is_allowed_by_default(operator_only, url, allowed):
    assert addresses.is_allowed(url) is allowed


def test_the_allow_list_adds_exact_addresses_and_loopback_ports(settings, operator_only):
    settings.JULES_ALLOWED_BASE_URLS = ["http://proxy.internal:8080/jules", "http://127.0.0.1:*/v1"]
    assert addresses.is_allowed("http://proxy.internal:8080/jules/")
    assert not addresses.is_allowed("http://proxy.internal:8081/jules")
    assert addresses.is_allowed("http://127.0.0.1:40123/v1")
    assert not addresses.is_allowed("http://127.0.0.1:*/v1")
    assert not addresses.is_allowed("http://127.0.0.2:40123/v1")


def test_the_team_page_takes_no_address(client, cast, settings, simulator):
    # The form has no address field, and an address posted anyway is ignored.
    settings.JULES_API_BASE_URL = simulator.base_url
    client.force_login(cast.admin)
    page = client.get(reverse("sessions_app:team-detail", args=[cast.team.slug])).content.decode()
    assert 'name="base_url"' not in page
    url = reverse("sessions_app:connection-add", args=[cast.team.slug])
    client.post(
        url, {"label": "Mine", "api_key": "test-key", "base_url": "http://169.254.169.254/x#"}
    )
    assert JulesConnection.objects.get(label="Mine").base_url == simulator.base_url


def test_the_services_refuse_an_address_outside_the_list(cast, operator_only):
    with hostile_server("ok") as server:
        with pytest.raises(addresses.AddressNotAllowed, match="not a Jules address"):
            services.connection_add(
                actor=cast.admin, team=cast.team, label="x", api_key="k", base_url=server.url
            )
        with pytest.raises(addresses.AddressNotAllowed):
            services.check_api_key("k", server.url)
        connection = ConnectionFactory(team=cast.team, base_url=OFFICIAL)
        with pytest.raises(addresses.AddressNotAllowed):
            services.connection_update(
                actor=cast.admin, connection=connection, changes={"base_url": server.url}
            )
        # Not even the operator, and nothing was asked of the address.
        operator = UserFactory(is_staff=True)
        with pytest.raises(addresses.AddressNotAllowed):
            services.connection_add(
                actor=operator,
                team=cast.team,
                label="y",
                api_key="k",
                base_url=server.url,
                operator=True,
                key_checked=True,
            )
        assert server.seen == 0
    assert JulesConnection.objects.get(pk=connection.pk).base_url == OFFICIAL


def test_the_django_admin_refuses_an_address_outside_the_list(client, cast, operator_only):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    with hostile_server("ok") as server:
        response = client.post(
            reverse("admin:sessions_app_julesconnection_add"),
            {"team": cast.team.pk, "label": "x", "base_url": server.url, "api_key": "k"},
        )
        assert server.seen == 0
    assert response.status_code == 200
    assert "not a Jules address this portal may use" in response.content.decode()
    assert not JulesConnection.objects.exists()


def test_a_stored_address_no_longer_allowed_is_not_requested(cast, settings):
    with hostile_server("ok") as server:
        connection = ConnectionFactory(team=cast.team, base_url=server.url)
        session = SessionFactory(connection=connection, state="AWAITING_USER_FEEDBACK")
        settings.JULES_ALLOWED_BASE_URLS = []
        sync.sync_connection(connection.pk)
        action = OutboxAction.objects.create(
            team=cast.team,
            connection=connection,
            session=session,
            kind="message",
            payload={"prompt": "hi"},
        )
        delivery.deliver(str(action.pk))
        assert server.seen == 0
    connection.refresh_from_db()
    assert connection.sync_status == "broken"
    assert "no longer one the portal's operator allows" in connection.last_error
    action.refresh_from_db()
    assert action.status == "failed"
    assert "no longer one the portal's operator allows" in action.last_error


def test_a_key_check_never_quotes_the_remote(cast):
    with hostile_server("echo-error") as server, pytest.raises(services.KeyRejected) as failure:
        services.check_api_key("k", server.url)
    message = str(failure.value)
    assert "hunter2" not in message and "internal-secret" not in message
    assert "HTTP 418" in message and "Nothing was saved" in message


# --- deadlines and size caps in the portal ----------------------------------------------


def test_the_key_check_gives_up_on_a_dripping_address(cast, settings):
    settings.JULES_TOTAL_TIMEOUT = 1.0
    with hostile_server("drip-body") as server:
        started = time.monotonic()
        with pytest.raises(services.KeyRejected, match="within 1 s"):
            services.check_api_key("k", server.url)
    assert time.monotonic() - started < 3.0


def test_the_key_check_refuses_an_oversized_answer(cast, settings):
    settings.JULES_MAX_RESPONSE_BYTES = 100_000
    expected = pytest.raises(services.KeyRejected, match="far larger")
    with hostile_server("huge-chunked") as server, expected:
        services.check_api_key("k", server.url)


@pytest.mark.parametrize(
    "mode, says", [("drip-body", "Jules"), ("huge-chunked", "larger than 100,000 bytes")]
)
def test_the_sync_ends_a_dripping_or_oversized_answer(cast, settings, mode, says):
    settings.JULES_TOTAL_TIMEOUT = 1.0
    settings.JULES_MAX_RESPONSE_BYTES = 100_000
    with hostile_server(mode) as server:
        connection = ConnectionFactory(team=cast.team, base_url=server.url)
        started = time.monotonic()
        sync.sync_connection(connection.pk)
        elapsed = time.monotonic() - started
    assert elapsed < 5.0
    connection.refresh_from_db()
    assert connection.sync_status == "error"
    assert says in connection.last_error
    assert connection.sync_claimed_until is None or connection.sync_phase == ""


# --- one account, one connection --------------------------------------------------------


def test_it_refuses_a_key_already_connected_to_the_team(cast, simulator):
    first = ConnectionFactory(
        team=cast.team, label="Alice", base_url=simulator.base_url, api_key="test-key"
    )
    with pytest.raises(ActionNotAllowed, match="already connected to the team as 'Alice'"):
        services.connection_add(
            actor=cast.admin,
            team=cast.team,
            label="Alice again",
            api_key=" test-key\n",
            base_url=simulator.base_url,
        )
    # Another team may connect the same account.
    services.connection_add(
        actor=cast.outsider,
        team=cast.other_team,
        label="Theirs",
        api_key="test-key",
        base_url=simulator.base_url,
    )
    assert JulesConnection.objects.filter(team=cast.team).get() == first


def test_it_recognises_the_account_by_its_sessions_under_another_key(
    cast, simulator, django_capture_on_commit_callbacks
):
    requests.post(
        f"{simulator.admin_url}/accounts",
        json={"id": "shared", "keys": ["key-one", "key-two"]},
        timeout=5,
    ).raise_for_status()
    JulesClient("key-one", simulator.base_url).create_session(prompt="Something to see")
    with django_capture_on_commit_callbacks(execute=True):  # the first sync
        services.connection_add(
            actor=cast.admin,
            team=cast.team,
            label="Key one",
            api_key="key-one",
            base_url=simulator.base_url,
        )
    assert JulesConnection.objects.get(label="Key one").sessions.count() == 1
    with pytest.raises(ActionNotAllowed, match="already connected to the team as 'Key one'"):
        services.connection_add(
            actor=cast.admin,
            team=cast.team,
            label="Key two",
            api_key="key-two",
            base_url=simulator.base_url,
        )
    # Rotating the connection to the account's other key is fine: it is the same connection.
    connection = JulesConnection.objects.get(label="Key one")
    services.connection_rotate_key(actor=cast.admin, connection=connection, api_key="key-two")


def test_the_team_page_says_which_connection_has_the_account(client, cast, simulator, settings):
    settings.JULES_API_BASE_URL = simulator.base_url
    ConnectionFactory(team=cast.team, label="Alice", base_url=simulator.base_url)
    client.force_login(cast.admin)
    url = reverse("sessions_app:connection-add", args=[cast.team.slug])
    response = client.post(url, {"label": "Twice", "api_key": "test-key"}, **HTMX)
    assert "already connected to the team as &#x27;Alice&#x27;" in response.content.decode()
    assert not JulesConnection.objects.filter(label="Twice").exists()


# --- rename and remove ------------------------------------------------------------------


def test_an_admin_renames_a_connection_on_the_team_page(client, cast):
    connection = ConnectionFactory(team=cast.team, label="Old name")
    ConnectionFactory(team=cast.team, label="Taken")
    client.force_login(cast.admin)
    url = reverse("sessions_app:connection-rename", args=[connection.pk])
    response = client.post(url, {"label": "  New name "}, **HTMX)
    assert 'id="team-connections"' in response.content.decode()
    connection.refresh_from_db()
    assert connection.label == "New name"
    clash = client.post(url, {"label": "Taken"}, **HTMX)
    assert "already has a connection called" in clash["HX-Trigger"]
    empty = client.post(url, {"label": " "}, **HTMX)
    assert "label" in empty["HX-Trigger"]
    connection.refresh_from_db()
    assert connection.label == "New name"
    [entry] = AuditEntry.objects.filter(action="connection.change")
    assert entry.details == {"label": "New name", "changed": ["label"]}


def test_removing_says_what_it_deletes_and_deletes_exactly_that(client, cast):
    connection = ConnectionFactory(team=cast.team, label="Going")
    kept = ConnectionFactory(team=cast.team, label="Staying")
    for _ in range(2):
        ActivityFactory(session=SessionFactory(connection=connection))
    SessionFactory(connection=kept)
    OutboxAction.objects.create(
        team=cast.team, connection=connection, kind="launch", payload={}, actor=cast.admin
    )
    client.force_login(cast.admin)
    url = reverse("sessions_app:connection-remove", args=[connection.pk])
    page = client.get(url).content.decode()
    assert "2 sessions and 2 activities" in page
    assert "1 action not yet sent" in page
    assert "audit history stays" in page
    response = client.post(url)
    assert response.status_code == 302
    assert not JulesConnection.objects.filter(pk=connection.pk).exists()
    assert kept.sessions.count() == 1
    entry = AuditEntry.objects.get(action="connection.delete")
    assert entry.details == {
        "label": "Going",
        "sessions": 2,
        "activities": 2,
        "repositories": 0,
        "unsent_actions": 1,
    }
    assert entry.team_id == cast.team.pk


# --- a connection stays in its team -----------------------------------------------------


def test_a_connection_cannot_move_to_another_team(client, cast):
    connection = ConnectionFactory(team=cast.team, label="Stays")
    SessionFactory(connection=connection)
    with pytest.raises(ActionNotAllowed, match="Only base_url, label change here"):
        services.connection_update(
            actor=cast.admin, connection=connection, changes={"team": cast.other_team}
        )
    operator = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(operator)
    url = reverse("admin:sessions_app_julesconnection_change", args=[connection.pk])
    page = client.get(url).content.decode()
    assert 'name="team"' not in page  # shown read-only
    client.post(
        url,
        {
            "team": cast.other_team.pk,
            "label": "Stays",
            "base_url": connection.base_url,
            "enabled": "on",
        },
    )
    connection.refresh_from_db()
    assert connection.team == cast.team
    assert connection.sessions.get().team == cast.team
