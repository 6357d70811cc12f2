"""`python -m jules_simulator`: the simulator on loopback until Ctrl-C or SIGTERM.

The options are those of `python manage.py jules_simulator`, which calls the same
`add_arguments` and `run`; README.md beside this file documents them.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable

from jules_simulator import SimulatorConfig, start_simulator

DEFAULT_KEY = "sim-demo-key"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        default=None,
        help=f"A key with its own account (repeatable; default {DEFAULT_KEY}).",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="How much faster sessions progress than live ones (60 = a minute's work a "
        "second); timestamps stay on the wall clock.",
    )
    parser.add_argument(
        "--manual-clock",
        action="store_true",
        help="Move the clock only through POST /_sim/clock/advance.",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seed-sessions", type=int, default=0)
    parser.add_argument("--activities-per-session", type=int, default=10)
    parser.add_argument("--seed-days", type=float, default=30.0)
    parser.add_argument("--demo", action="store_true", help="Seed the demo sessions.")
    parser.add_argument(
        "--tier", choices=["free", "pro", "ultra"], help="Quota tier of every account."
    )
    parser.add_argument(
        "--parallel-create-limit",
        type=int,
        help="Creates beyond this many in flight fail with 404 (off by default).",
    )
    parser.add_argument("--scenario", default="happy", help="Default scenario, in the tag grammar.")
    parser.add_argument(
        "--faults", action="append", default=[], help="A fault rule SPEC (repeatable)."
    )
    parser.add_argument(
        "--snapshot", help="A JSON file: loaded at start when it exists, written at stop."
    )
    parser.add_argument(
        "--snapshot-every",
        type=float,
        default=None,
        help="Also write the snapshot every this many seconds while running.",
    )


def run(
    options: argparse.Namespace,
    write: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    """Serve until `stop` is set (by default, until SIGINT or SIGTERM).

    Bad options raise ValueError, or OSError for a port in use, with a message for people."""
    keys = list(options.api_keys or [DEFAULT_KEY])
    config = SimulatorConfig(
        default_scenario=options.scenario,
        tier=options.tier,
        parallel_create_limit=options.parallel_create_limit,
        seed_days=options.seed_days,
        snapshot_path=options.snapshot,
    )
    sim = start_simulator(
        host=options.host,
        port=options.port,
        api_keys=keys,
        speed=options.speed,
        manual_clock=options.manual_clock,
        seed=options.seed,
        seed_sessions=options.seed_sessions,
        activities_per_session=options.activities_per_session,
        demo=options.demo,
        faults=options.faults,
        config=config,
        snapshot_seconds=options.snapshot_every,
    )
    write(
        f"Jules simulator on {sim.base_url} (admin {sim.admin_url}) with "
        f"{len(keys)} account(s). Ctrl-C stops."
    )
    if stop is None:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    sim.stop()
    if options.snapshot:
        write(f"Snapshot written to {options.snapshot}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jules_simulator",
        description="Play the Jules REST API (v1alpha) on loopback for development, tests "
        "and benchmarks.",
    )
    add_arguments(parser)
    options = parser.parse_args(argv)
    try:
        run(options)
    except (OSError, ValueError) as exc:
        print(f"jules_simulator: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
