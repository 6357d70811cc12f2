"""factory_boy factories for the portal's models."""

from __future__ import annotations

import datetime as dt
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from sessions_app.models import (
    Activity,
    JulesConnection,
    Membership,
    Session,
    SessionState,
    Source,
    Team,
)

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save(obj: Any, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            obj.save()


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = "member"


class ConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = JulesConnection
        exclude = ("api_key",)

    team = factory.SubFactory(TeamFactory)
    label = factory.Sequence(lambda n: f"Jules account {n}")
    base_url = "http://127.0.0.1:9/v1alpha"
    api_key = "test-key"
    api_key_encrypted = factory.LazyAttribute(lambda o: _encrypt(o.api_key))


def _encrypt(value: str) -> str:
    from sessions_app.connections import crypto

    return crypto.encrypt(value)


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Session

    connection = factory.SubFactory(ConnectionFactory)
    team = factory.LazyAttribute(lambda o: o.connection.team)
    remote_id = factory.Sequence(lambda n: str(14550388554331055113 + n))
    name = factory.LazyAttribute(lambda o: f"sessions/{o.remote_id}")
    prompt = factory.Sequence(lambda n: f"Fix bug number {n}")
    title = factory.Sequence(lambda n: f"Session {n}")
    state = SessionState.COMPLETED
    source_name = "sources/github/acme/billing"
    repo = "acme/billing"
    starting_branch = "main"
    create_time = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=1))
    update_time = factory.LazyFunction(timezone.now)
    url = factory.LazyAttribute(lambda o: f"https://jules.google.com/session/{o.remote_id}")


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Activity

    session = factory.SubFactory(SessionFactory)
    remote_id = factory.Sequence(lambda n: f"{n:032x}")
    name = factory.LazyAttribute(lambda o: f"{o.session.name}/activities/{o.remote_id}")
    kind = "agentMessaged"
    originator = "agent"
    message = "Working on it."
    create_time = factory.LazyFunction(timezone.now)


class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Source

    connection = factory.SubFactory(ConnectionFactory)
    owner = "acme"
    repo = factory.Sequence(lambda n: f"repo{n}")
    source_id = factory.LazyAttribute(lambda o: f"github/{o.owner}/{o.repo}")
    name = factory.LazyAttribute(lambda o: f"sources/{o.source_id}")
    default_branch = "main"
    branches = factory.LazyFunction(lambda: ["main", "develop"])
