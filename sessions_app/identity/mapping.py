"""From the provider's groups to team roles: a pure module, no ORM.

OIDC_GROUP_ROLES lists `group=team-slug:role` items, comma-separated, for example
`jules-admins=acme:admin,jules-devs=acme:member,jules-devs=globex:viewer`. A person in
several groups that map to one team gets the highest of their roles there.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sessions_app.models.teams import ROLE_RANK, Role


class Rule(NamedTuple):
    group: str
    team_slug: str
    role: Role


class MappingError(ValueError):
    """OIDC_GROUP_ROLES cannot be read; the message names the item."""


def parse(text: str) -> list[Rule]:
    rules = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        group, equals, target = item.rpartition("=")
        slug, colon, role = target.rpartition(":")
        if not (equals and colon and group.strip() and slug.strip()):
            raise MappingError(f"OIDC_GROUP_ROLES: {item!r} is not group=team-slug:role.")
        try:
            rules.append(Rule(group.strip(), slug.strip(), Role(role.strip())))
        except ValueError:
            choices = ", ".join(Role.values)
            raise MappingError(
                f"OIDC_GROUP_ROLES: {item!r} names no role (one of {choices})."
            ) from None
    return rules


def groups_of(claims: dict[str, Any], claim: str) -> list[str]:
    """The groups claim as a list of names; a single string counts as one group."""
    value = claims.get(claim)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [g for g in value if isinstance(g, str)]
    return []


def teams_mapped(rules: list[Rule]) -> set[str]:
    return {rule.team_slug for rule in rules}


def desired_roles(groups: list[str], rules: list[Rule]) -> dict[str, Role]:
    """The role the groups give in each team they reach; teams they do not reach are absent."""
    held = set(groups)
    roles: dict[str, Role] = {}
    for rule in rules:
        if rule.group in held:
            current = roles.get(rule.team_slug)
            if current is None or ROLE_RANK[rule.role] > ROLE_RANK[current]:
                roles[rule.team_slug] = rule.role
    return roles
