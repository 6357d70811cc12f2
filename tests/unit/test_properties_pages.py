"""Every page, GET and POST, with hostile values in every form field and query parameter.

The routes come from `sessions_app/urls.py` (plus sign-in), the parameter names from every
form in `sessions_app` and the parameters views read themselves. Whatever arrives, the
answer is a page, a redirect or a 4xx, never a 500 (the test client re-raises a view's
exception). tests/integration/test_hostile_pages.py runs the NUL and calendar-edge values
on PostgreSQL, whose text and timestamp types are stricter than SQLite's.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from django import forms
from django.test import Client
from django.urls import URLPattern, reverse
from django.urls.converters import UUIDConverter
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

import sessions_app.analytics.forms
import sessions_app.audit.filters
import sessions_app.connections.forms
import sessions_app.launch_queue.forms
import sessions_app.launch_templates.forms
import sessions_app.sessions.forms
import sessions_app.teams.forms
from sessions_app.models import LaunchTicket, OutboxAction
from sessions_app.urls import urlpatterns
from tests.factories import ActivityFactory, ConnectionFactory, SessionFactory, SourceFactory

pytestmark = pytest.mark.django_db

# Parameters that views read from request.GET / request.POST without a form.
RAW_PARAMETERS = {
    "page", "v", "p", "after", "ids", "action", "query", "prompt", "undo", "retry",
    "source_q", "source", "connection", "next", "enabled", "from", "format", "role",
    "direction", "rerun", "a", "back",
}  # fmt: skip
FORM_MODULES = (
    sessions_app.analytics.forms,
    sessions_app.audit.filters,
    sessions_app.connections.forms,
    sessions_app.launch_queue.forms,
    sessions_app.sessions.forms,
    sessions_app.teams.forms,
    sessions_app.launch_templates.forms,
)


def _form_fields() -> set[str]:
    names: set[str] = set()
    for module in FORM_MODULES:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, forms.BaseForm) and cls.__module__ == module.__name__:
                names |= set(getattr(cls, "base_fields", {}))
    return names


PARAMETERS = sorted(RAW_PARAMETERS | _form_fields())

# Values a script sends: non-ASCII digits, thousands of digits, NULs, lone surrogates,
# the calendar's edges, numbers no column holds, invalid UTF-8 on the wire.
NUL_VALUES = ["\x00", "a\x00b", "acme\x00", "1\x00"]
EDGE_DATES = [
    "0001-01-01", "0001-01-02", "9999-12-31", "9999-12-30", "0001-01-01T00:00",
    "9999-12-31T23:59:59", "9999-12-31 23:59:59.999999",
]  # fmt: skip
HOSTILE = [
    *NUL_VALUES,
    *EDGE_DATES,
    "²", "٣", "\uff11\uff12", "9" * 5000, "-1", "0", "1e400", "nan", "18446744073709551616",
    "-9223372036854775809", "\ud800", "a\udfffb", " ", "", "x" * 3000, "<script>",
    "sessions/../../x", "*", "%", "_", "acme", "admin",
]  # fmt: skip


def encode(params: dict[str, list[str]]) -> str:
    """As a browser or a script would put them on the wire; lone surrogates as the bytes
    that a careless encoder writes (invalid UTF-8)."""
    return "&".join(
        f"{quote(name)}={quote(value.encode('utf-8', 'surrogatepass'))}"
        for name, values in params.items()
        for value in values
    )


@dataclass(frozen=True)
class Route:
    name: str
    url: str


def _kwargs_for(pattern: URLPattern, world: dict[str, Any]) -> dict[str, Any]:
    converters = pattern.pattern.converters
    # A uuid-keyed object (a token, a queued launch) gets a uuid that names none.
    return {
        name: world["uuid_pk"]
        if isinstance(converter, UUIDConverter) and not isinstance(world[name], uuid.UUID)
        else world[name]
        for name, converter in converters.items()
    }


@pytest.fixture
def world(cast, settings):
    # Nothing a request triggers may wait on a remote: deliveries and key checks fail fast.
    settings.JULES_RETRY_BUDGET = 0
    settings.JULES_CONNECT_TIMEOUT = 0.2
    settings.JULES_READ_TIMEOUT = 0.2
    settings.JULES_API_BASE_URL = "http://127.0.0.1:9/v1alpha"
    connection = ConnectionFactory(team=cast.team, label="Main")
    SourceFactory(connection=connection, owner="acme", repo="billing")
    session = SessionFactory(connection=connection, launched_by=cast.member)
    activity = ActivityFactory(session=session)
    action = OutboxAction.objects.create(
        team=cast.team,
        connection=connection,
        session=session,
        actor=cast.admin,
        kind=OutboxAction.Kind.LAUNCH,
        payload={"prompt": "x"},
    )
    LaunchTicket.objects.create(
        action=action, team=cast.team, connection=connection, launcher=cast.admin
    )
    membership = cast.team.memberships.get(user=cast.viewer)
    template_pk, schedule_pk = _template_and_schedule(cast, connection)
    return {
        "template_pk": template_pk,
        "schedule_pk": schedule_pk,
        "pk": session.pk,
        "output_id": 1,
        "activity_id": activity.pk,
        "slug": cast.team.slug,
        "membership_pk": membership.pk,
        "fmt": "csv",
        "action_pk": action.pk,
        "connection_pk": connection.pk,
        # Objects of later concerns: a number or id that names none answers 404, not 500.
        "invitation_pk": 999_999,
        "token": "not-a-signed-token",
        "delivery_id": uuid.uuid4(),
        "uuid_pk": uuid.uuid4(),
        "chart": "overview",
    }


def routes(world: dict[str, Any]) -> list[Route]:
    found = []
    for pattern in urlpatterns:
        assert isinstance(pattern, URLPattern)
        kwargs = _kwargs_for(pattern, world | _pk_for(pattern.name, world))
        found.append(
            Route(pattern.name or "", reverse(f"sessions_app:{pattern.name}", kwargs=kwargs))
        )
    found.append(Route("login", reverse("login")))
    return found


def _template_and_schedule(cast: Any, connection: Any) -> tuple[int, int]:
    from sessions_app.launch_templates import schedules, services

    template = services.template_create(
        user=cast.admin,
        team=cast.team,
        content=services.TemplateContent(name="Tidy", prompt="Tidy {{ area }} in {{ repo }}"),
    )
    schedule = schedules.schedule_create(
        user=cast.admin,
        template=template,
        spec=schedules.ScheduleSpec(
            name="Daily", connection=connection, cadence="cron", cron="0 9 * * *",
            variables={"area": "docs"},
        ),
    )  # fmt: skip
    return template.pk, schedule.pk


def _pk_for(name: str | None, world: dict[str, Any]) -> dict[str, Any]:
    name = name or ""
    if name == "schedule-create" or (
        name.startswith("template-") and name not in {"template-list", "template-create"}
    ):
        return {"pk": world["template_pk"]}
    if name.startswith("schedule-") and name not in {"schedule-list", "schedule-preview"}:
        return {"pk": world["schedule_pk"]}
    if name in {"action-status", "queue-cancel", "queue-move"}:
        return {"pk": world["action_pk"]}
    if name and name.startswith("connection-") and name != "connection-add":
        return {"pk": world["connection_pk"]}
    return {}


def ask(client: Client, method: str, url: str, params: dict[str, list[str]]) -> int:
    body = encode(params)
    if method == "GET":
        response = client.get(f"{url}?{body}")
    else:
        response = client.post(url, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code < 500, (method, url, params)
    return response.status_code


@pytest.fixture
def signed_in(cast) -> Iterator[Client]:
    client = Client()
    client.force_login(cast.admin)
    yield client


PROFILE = hypothesis_settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

VALUES = st.sampled_from(HOSTILE)
PARAMS = st.dictionaries(
    st.sampled_from(PARAMETERS), st.lists(VALUES, min_size=1, max_size=2), max_size=5
)


def test_it_knows_the_parameters_of_every_form():
    # A form added to these modules is walked without anyone listing its fields here.
    assert {"since", "until", "created_after", "q", "api_key", "prompt", "role"} <= set(PARAMETERS)


@PROFILE
@given(data=st.data())
def test_it_never_answers_500_to_hostile_parameters(signed_in, world, data):
    route = data.draw(st.sampled_from(routes(world)), label="route")
    method = data.draw(st.sampled_from(["GET", "POST"]), label="method")
    ask(signed_in, method, route.url, data.draw(PARAMS, label="params"))


def sweep(client: Client, world: dict[str, Any], values: list[str], methods=("GET", "POST")):
    """Every route, every method, every parameter at once set to each value."""
    asked = 0
    for route in routes(world):
        for method in methods:
            for value in values:
                ask(client, method, route.url, {name: [value] for name in PARAMETERS})
                asked += 1
    return asked


def test_it_never_answers_500_to_nul_in_any_parameter(signed_in, world):
    assert sweep(signed_in, world, NUL_VALUES) > 100


DATE_FIELDS = ("since", "until", "created_after", "created_before")


def edges(client: Client) -> None:
    for name in ("session-list", "audit", "analytics"):
        url = reverse(f"sessions_app:{name}")
        for value in EDGE_DATES:
            ask(client, "GET", url, {field: [value] for field in DATE_FIELDS})
            ask(client, "GET", url, {"since": [value], "created_after": [value]})
            ask(client, "GET", url, {"until": [value], "created_before": [value]})


# The portal's zone furthest ahead of UTC, furthest behind, and UTC itself.
ZONES = ["Pacific/Kiritimati", "Etc/GMT+12", "UTC"]


@pytest.mark.parametrize("zone", ZONES)
def test_it_never_answers_500_at_the_calendar_edges(signed_in, world, settings, zone):
    settings.TIME_ZONE = zone
    edges(signed_in)
    ask(signed_in, "GET", reverse("sessions_app:audit-export", args=["csv"]), {
        "since": ["0001-01-01"], "until": ["9999-12-31"]
    })  # fmt: skip


def test_it_keeps_the_repository_search_working_after_a_nul(signed_in, world):
    url = reverse("sessions_app:session-launch")
    assert ask(signed_in, "GET", url, {"source_q": ["bill\x00"]}) == 200
    page = signed_in.get(url, {"source_q": "bill"}).content.decode()
    assert "billing" in page


def test_it_walks_every_route(world):
    names = {route.name for route in routes(world)}
    assert {p.name for p in urlpatterns} <= names
    assert uuid.UUID(str(world["action_pk"]))
