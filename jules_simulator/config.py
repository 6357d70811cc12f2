"""Settings of a simulator run: pacing, conventions where the reference is unsure, quotas."""

from __future__ import annotations

from dataclasses import dataclass

from jules_simulator.content import Repo


@dataclass(frozen=True)
class AccountSpec:
    """An account beyond the one-per-key defaults: several keys, a plan tier, own sources."""

    id: str
    keys: tuple[str, ...]
    tier: str | None = None  # free, pro or ultra; None = no caps (see SimulatorConfig).
    daily_cap: int | None = None  # Custom caps override the tier's.
    concurrent_cap: int | None = None
    parallel_create_limit: int | None = None
    sources: tuple[Repo, ...] | None = None  # None = the default repositories.
    seed_sessions: int = 0
    activities_per_session: int = 10


@dataclass(frozen=True)
class SimulatorConfig:
    """Knobs for conventions the reference leaves open, pacing, quotas and seeding.

    The defaults are the likeliest behaviour; tests flip them to exercise the alternatives
    a client must also accept (docs/jules-api.md#simulator-conventions).
    """

    # activities.list answers 404 for this long after create while a session has no activity.
    activities_404_seconds: float = 3.0
    # sendMessage on a FAILED session: 400 FAILED_PRECONDITION, or revive it when True.
    failed_send_revives: bool = False
    # archive/unarchive answer `{}`, or the Session when True.
    archive_returns_session: bool = False
    # create answers the full Session, or the guide's partial shape when True.
    partial_create_response: bool = False
    # The scenario of sessions that name none (same grammar as the prompt tag).
    default_scenario: str = "happy"
    # Pacing on the virtual clock, in seconds, jittered per session: docs/jules-api.md#lifecycle
    queued_seconds: float = 5.0
    planning_seconds: float = 60.0
    auto_approve_seconds: float = 2.0
    activity_interval: float = 26.0
    plan_timeout_seconds: float = 600.0
    # Quotas of the accounts made from `api_keys`, off when all are None:
    # docs/jules-api.md#quotas-and-rate-limits
    tier: str | None = None
    daily_cap: int | None = None
    concurrent_cap: int | None = None
    # Parallel-create failures: creates (and sources.get) beyond this many in flight answer
    # 404 "Could not get source."; each then takes `parallel_create_seconds` of real time.
    parallel_create_limit: int | None = None
    parallel_create_seconds: float = 0.25
    # Seeded histories.
    seed_days: float = 30.0
    archived_fraction: float = 0.1
    # Start of the virtual clock in epoch seconds; None = a fixed instant in manual mode and
    # the wall clock otherwise.
    start_time: float | None = None
    # A JSON file: loaded at start when it exists, written at stop.
    snapshot_path: str | None = None
    accounts: tuple[AccountSpec, ...] = ()
