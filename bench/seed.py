"""Seed a benchmark database with many cached sessions, fast, straight into the tables.

    python -m bench.seed --sessions 100000 [--activities 3] [--teams 1] [--users 5]

The database is `BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/jules_bench`),
created and migrated if needed, and **emptied** first. On PostgreSQL the rows go in with
COPY (100,000 sessions with 3 activities each take well under a minute); on other
databases with batched INSERTs.

From Python, with Django already set up against the database to fill::

    from bench.seed import seed
    seeded = seed(100_000, activities_per_session=3, teams=1, users=5)
    seeded.usernames, seeded.password   # who can sign in

What it makes, deterministically (a fixed random seed):

- `teams` teams, each with two connections (`sync_status` ok, synced just now) and eight
  repositories per connection;
- `users` users (`bench-user-0`, `bench-user-1`, ...), all with the same password, each a
  member of every team: the first is an admin, the second an approver, the rest members
  (so every user sees every session: the worst case for the list page);
- `n_sessions` sessions spread over the teams' connections and repositories, created over
  the last year, in every state (most completed), a tenth archived, about half launched
  from the portal by one of the users, with varied titles and prompts for the search;
- `activities_per_session` activities each (a plan, progress, messages, completion), a
  pull request output for most completed sessions and a change set for some.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

PASSWORD = "bench-password-not-secret"
USER_PREFIX = "bench-user-"
CONNECTIONS_PER_TEAM = 2
REPOS_PER_CONNECTION = 8
BATCH = 5000

# Weights of the states among seeded sessions: most rest, a few still move.
STATE_WEIGHTS = {
    "COMPLETED": 60,
    "FAILED": 10,
    "IN_PROGRESS": 8,
    "AWAITING_PLAN_APPROVAL": 6,
    "AWAITING_USER_FEEDBACK": 5,
    "PLANNING": 4,
    "QUEUED": 3,
    "PAUSED": 3,
    "STATE_UNSPECIFIED": 1,
}
VERBS = ["Fix", "Refactor", "Add", "Remove", "Speed up", "Document", "Test", "Upgrade", "Rename"]
THINGS = [
    "the billing export",
    "invoice rounding",
    "the login form",
    "flaky retries",
    "the cache layer",
    "CSV parsing",
    "the search index",
    "webhook signatures",
    "time zone handling",
    "the settings page",
    "database migrations",
    "the payment gateway",
]
ACTIVITY_KINDS = [
    "planGenerated",
    "planApproved",
    "progressUpdated",
    "agentMessaged",
    "userMessaged",
    "progressUpdated",
]


@dataclass
class Seeded:
    """Who can sign in to the seeded portal, and what was made."""

    usernames: list[str]
    password: str
    roles: dict[str, str] = field(default_factory=dict)
    team_ids: list[int] = field(default_factory=list)
    connection_ids: list[int] = field(default_factory=list)
    repos: list[str] = field(default_factory=list)
    sessions: int = 0
    activities: int = 0
    outputs: int = 0


def _rfc3339(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _insert(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write rows with COPY on PostgreSQL, batched INSERTs elsewhere; return how many."""
    from django.db import connection

    count = 0
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        raw = connection.connection
        cols = ", ".join(columns)
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
    placeholders = ", ".join(["%s"] * len(columns))
    # Table and column names are this module's constants, never input.
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608
    batch: list[Sequence[Any]] = []
    with connection.cursor() as cursor:
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                cursor.executemany(sql, batch)
                count += len(batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)
            count += len(batch)
    return count


def _reset_sequence(table: str) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        # A constant table name, never input.
        last = f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1"  # noqa: S608
        cursor.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'id'), {last}, false)", [table])


def _empty() -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from sessions_app.models import Session, Team

    if connection.vendor == "postgresql":
        from bench.common import empty_tables

        empty_tables()
    else:
        Session.objects.all().delete()
        Team.objects.all().delete()
    get_user_model().objects.filter(username__startswith=USER_PREFIX).delete()


def _sessions(
    rng: random.Random,
    n: int,
    first_id: int,
    connections: list[tuple[int, int, list[str]]],
    user_ids: list[int],
    now: dt.datetime,
    activity_count: int,
) -> Iterator[tuple[Any, ...]]:
    states = list(STATE_WEIGHTS)
    weights = list(STATE_WEIGHTS.values())
    year = 365 * 24 * 3600
    for i in range(n):
        pk = first_id + i
        team_id, conn_id, repos = connections[i % len(connections)]
        repo = rng.choice(repos)
        state = rng.choices(states, weights)[0]
        # Evenly spread over the last year, newest last, with a little jitter.
        created = now - dt.timedelta(seconds=year * (n - i) / n + rng.random() * 60)
        updated = created + dt.timedelta(minutes=rng.randint(1, 600))
        verb, thing = rng.choice(VERBS), rng.choice(THINGS)
        title = "" if i % 7 == 0 else f"{verb} {thing} #{i}"
        prompt = (
            f"{verb} {thing} in {repo}.\nMake sure the tests pass and keep the change "
            f"small; ticket {rng.randint(1000, 99999)}."
        )
        remote_id = str(10_000_000_000_000_000 + pk)
        launched_by = rng.choice(user_ids) if user_ids and rng.random() < 0.5 else None
        pr_url = (
            f"https://github.com/{repo}/pull/{pk}"
            if state == "COMPLETED" and rng.random() < 0.7
            else ""
        )
        raw = json.dumps({"name": f"sessions/{remote_id}", "id": remote_id, "state": state})
        yield (
            pk,
            team_id,
            conn_id,
            remote_id,
            f"sessions/{remote_id}",
            prompt,
            title,
            state,
            state,
            f"sources/github/{repo}",
            repo,
            "main",
            f"jules/{pk}" if state != "QUEUED" else "",
            False,
            True,
            "AUTO_CREATE_PR",
            created,
            updated,
            f"https://jules.google.com/session/{remote_id}",
            rng.random() < 0.1,
            pr_url,
            raw,
            launched_by,
            updated,
            _rfc3339(updated),
            activity_count,
            updated,
            None,
            now,
            False,
        )


SESSION_COLUMNS = (
    "id",
    "team_id",
    "connection_id",
    "remote_id",
    "name",
    "prompt",
    "title",
    "state",
    "state_raw",
    "source_name",
    "repo",
    "starting_branch",
    "working_branch",
    "environment_variables_enabled",
    "require_plan_approval",
    "automation_mode",
    "create_time",
    "update_time",
    "url",
    "archived",
    "pr_url",
    "raw",
    "launched_by_id",
    "last_activity_at",
    "last_activity_time_raw",
    "activity_count",
    "activities_read_for",
    "next_poll_at",
    "synced_at",
    "deleted_remotely",
)
ACTIVITY_COLUMNS = (
    "session_id",
    "remote_id",
    "name",
    "kind",
    "originator",
    "description",
    "create_time",
    "create_time_raw",
    "message",
    "plan_id",
    "plan_steps",
    "progress_title",
    "progress_description",
    "failure_reason",
    "artifacts",
    "raw",
)
OUTPUT_COLUMNS = (
    "session_id",
    "position",
    "kind",
    "url",
    "title",
    "description",
    "base_ref",
    "head_ref",
    "source",
    "patch",
    "base_commit_id",
    "suggested_commit_message",
    "raw",
)
PATCH = (
    "diff --git a/app/billing.py b/app/billing.py\n--- a/app/billing.py\n+++ b/app/billing.py\n"
    "@@ -1,3 +1,3 @@\n import decimal\n-TOTAL = round(x, 2)\n+TOTAL = x.quantize(CENTS)\n"
)


def _activities(
    sessions: list[tuple[int, str, str, dt.datetime]], per_session: int
) -> Iterator[tuple[Any, ...]]:
    empty_list = "[]"
    for pk, remote_id, state, created in sessions:
        kinds = ACTIVITY_KINDS[:per_session]
        while len(kinds) < per_session:
            kinds.append("progressUpdated")
        if state in ("COMPLETED", "FAILED") and per_session:
            kinds[-1] = "sessionCompleted" if state == "COMPLETED" else "sessionFailed"
        for position, kind in enumerate(kinds):
            activity_id = f"{pk:016x}{position:016x}"
            moment = created + dt.timedelta(seconds=30 * (position + 1))
            originator = "user" if kind in ("userMessaged", "planApproved") else "agent"
            steps = empty_list
            if kind == "planGenerated":
                steps = json.dumps(
                    [
                        {"id": f"s{k}", "title": f"Step {k + 1}", "description": "", "index": k}
                        for k in range(3)
                    ]
                )
            yield (
                pk,
                activity_id,
                f"sessions/{remote_id}/activities/{activity_id}",
                kind,
                originator,
                kind,
                moment,
                _rfc3339(moment),
                "Looking at the code now." if kind.endswith("Messaged") else "",
                f"plan-{pk}" if kind.startswith("plan") else "",
                steps,
                "Running the tests" if kind == "progressUpdated" else "",
                "",
                "The build failed." if kind == "sessionFailed" else "",
                empty_list,
                json.dumps({"id": activity_id, "originator": originator}),
            )


def _outputs(sessions: list[tuple[int, str, str, str]]) -> Iterator[tuple[Any, ...]]:
    for pk, repo, pr_url, _state in sessions:
        position = 0
        if pk % 4 == 0:
            yield (
                pk,
                position,
                "changeSet",
                "",
                "",
                "",
                "",
                "",
                f"sources/github/{repo}",
                PATCH,
                "0" * 40,
                "Round invoices with Decimal",
                "{}",
            )
            position += 1
        if pr_url:
            yield (
                pk,
                position,
                "pullRequest",
                pr_url,
                "Fix it",
                "What changed and why.",
                "main",
                f"jules/{pk}",
                "",
                "",
                "",
                "",
                json.dumps({"pullRequest": {"url": pr_url}}),
            )


def seed(
    n_sessions: int,
    activities_per_session: int = 3,
    teams: int = 1,
    users: int = 5,
    *,
    base_url: str = "http://127.0.0.1:9/v1alpha",
    password: str = PASSWORD,
    random_seed: int = 20261201,
) -> Seeded:
    """Empty the portal's tables and fill them; return who can sign in.

    Django must already be set up against the database to fill (see `bench.common`).
    `base_url` is the connections' Jules address (a simulator's, for a load test that
    also acts on sessions).
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    from sessions_app.models import JulesConnection, Membership, Role, Source, Team
    from sessions_app.models.jules import SyncStatus

    if n_sessions < 0 or activities_per_session < 0 or teams < 1 or users < 1:
        raise ValueError("sessions and activities must be >= 0, teams and users >= 1")
    rng = random.Random(random_seed)
    now = timezone.now()
    _empty()
    User = get_user_model()
    hashed = make_password(password)  # once: hashing is slow on purpose
    with transaction.atomic():
        people = User.objects.bulk_create(
            [
                User(username=f"{USER_PREFIX}{i}", email=f"{USER_PREFIX}{i}@example.com")
                for i in range(users)
            ]
        )
        User.objects.filter(username__startswith=USER_PREFIX).update(password=hashed)
        people = list(User.objects.filter(username__startswith=USER_PREFIX).order_by("id"))
        roles = {
            p.username: (Role.ADMIN if i == 0 else Role.APPROVER if i == 1 else Role.MEMBER)
            for i, p in enumerate(people)
        }
        team_objs = [Team(name=f"Bench team {t}", slug=f"bench-{t}") for t in range(teams)]
        team_objs = Team.objects.bulk_create(team_objs)
        team_objs = list(Team.objects.filter(slug__startswith="bench-").order_by("id"))
        Membership.objects.bulk_create(
            [
                Membership(team=team, user=person, role=roles[person.username])
                for team in team_objs
                for person in people
            ]
        )
        conn_rows: list[tuple[int, int, list[str]]] = []
        all_repos: list[str] = []
        for team in team_objs:
            for c in range(CONNECTIONS_PER_TEAM):
                conn = JulesConnection(
                    team=team,
                    label=f"Account {c}",
                    base_url=base_url,
                    added_by=people[0],
                    sync_status=SyncStatus.OK,
                    last_sync_started_at=now,
                    last_success_at=now,
                    last_list_at=now,
                    last_full_sync_at=now,
                    last_sources_sync_at=now,
                )
                conn.set_api_key(f"bench-key-{team.pk}-{c}")
                conn.save()
                repos = [f"bench{team.pk}-{c}/repo{r}" for r in range(REPOS_PER_CONNECTION)]
                Source.objects.bulk_create(
                    [
                        Source(
                            connection=conn,
                            name=f"sources/github/{repo}",
                            source_id=f"github/{repo}",
                            owner=repo.split("/")[0],
                            repo=repo.split("/")[1],
                            default_branch="main",
                            branches=["main", "develop"],
                        )
                        for repo in repos
                    ]
                )
                conn_rows.append((team.pk, conn.pk, repos))
                all_repos.extend(repos)

        session_keys: list[tuple[int, str, str, dt.datetime]] = []
        output_keys: list[tuple[int, str, str, str]] = []

        def sessions() -> Iterator[tuple[Any, ...]]:
            user_ids = [p.pk for p in people]
            rows = _sessions(rng, n_sessions, 1, conn_rows, user_ids, now, activities_per_session)
            for row in rows:
                session_keys.append((row[0], row[3], row[7], row[16]))
                output_keys.append((row[0], row[10], row[20], row[7]))
                yield row

        made = _insert("sessions_app_session", SESSION_COLUMNS, sessions())
        activities = _insert(
            "sessions_app_activity",
            ACTIVITY_COLUMNS,
            _activities(session_keys, activities_per_session),
        )
        outputs = _insert("sessions_app_sessionoutput", OUTPUT_COLUMNS, _outputs(output_keys))
        for table in (
            "sessions_app_session",
            "sessions_app_activity",
            "sessions_app_sessionoutput",
        ):
            _reset_sequence(table)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in (
                "sessions_app_session",
                "sessions_app_activity",
                "sessions_app_sessionoutput",
            ):
                cursor.execute(f"VACUUM ANALYZE {table}")
    return Seeded(
        usernames=[p.username for p in people],
        password=password,
        roles={k: str(v) for k, v in roles.items()},
        team_ids=[t.pk for t in team_objs],
        connection_ids=[c[1] for c in conn_rows],
        repos=all_repos,
        sessions=made,
        activities=activities,
        outputs=outputs,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Seed a benchmark database with sessions.")
    parser.add_argument("--sessions", type=int, required=True)
    parser.add_argument("--activities", type=int, default=3, help="per session")
    parser.add_argument("--teams", type=int, default=1)
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--base-url", default="http://127.0.0.1:9/v1alpha")
    parser.add_argument(
        "--database-url", default=None, help="default: BENCH_DATABASE_URL or jules_bench"
    )
    args = parser.parse_args(argv)
    import time

    from bench.common import setup_django

    url = setup_django(args.database_url)
    started = time.perf_counter()
    seeded = seed(args.sessions, args.activities, args.teams, args.users, base_url=args.base_url)
    elapsed = time.perf_counter() - started
    print(
        f"Seeded {seeded.sessions} sessions, {seeded.activities} activities and "
        f"{seeded.outputs} outputs in {elapsed:.1f} s into {url.rsplit('/', 1)[-1]}."
    )
    print(f"Sign in as any of {', '.join(seeded.usernames)} with password {seeded.password!r}.")


if __name__ == "__main__":
    main()
