"""Fixtures every test group shares: the cast of users, teams, connections, the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.factories import ConnectionFactory, MembershipFactory, TeamFactory, UserFactory

pytest_plugins = ["tests.no_skips", "pytester"]


@dataclass
class Cast:
    """One team with a user per role, and an outsider who belongs to another team."""

    team: Any
    admin: Any
    approver: Any
    member: Any
    viewer: Any
    outsider: Any
    other_team: Any

    def by_role(self) -> dict[str, Any]:
        return {
            "admin": self.admin,
            "approver": self.approver,
            "member": self.member,
            "viewer": self.viewer,
            "outsider": self.outsider,
        }


# Tests run simulators and scripted servers on ephemeral loopback ports; the operator's
# allow-list says so (docs/reliability.md#jules-address). Tests of the list override it.
LOOPBACK_JULES = "http://127.0.0.1:*/v1alpha"


@pytest.fixture(autouse=True)
def _loopback_jules_allowed(settings: Any) -> None:
    settings.JULES_ALLOWED_BASE_URLS = [LOOPBACK_JULES]


@pytest.fixture
def cast(db: Any) -> Cast:
    team = TeamFactory(name="Acme", slug="acme")
    other_team = TeamFactory(name="Globex", slug="globex")
    users = {}
    for role in ("admin", "approver", "member", "viewer"):
        user = UserFactory(username=role)
        MembershipFactory(team=team, user=user, role=role)
        users[role] = user
    outsider = UserFactory(username="outsider")
    MembershipFactory(team=other_team, user=outsider, role="admin")
    return Cast(team=team, other_team=other_team, outsider=outsider, **users)


@pytest.fixture
def simulator() -> Iterator[Any]:
    """The Jules simulator on an ephemeral loopback port, with a manual clock."""
    from jules_simulator import start_simulator

    sim = start_simulator(api_keys=["test-key", "other-key"], manual_clock=True, seed=7)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def sim_connection(cast: Cast, simulator: Any) -> Any:
    """A connection of the cast's team to the simulator's first account."""
    return ConnectionFactory(team=cast.team, base_url=simulator.base_url, api_key="test-key")
