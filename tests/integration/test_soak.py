"""The short soak: `make run`'s embedded setup under steady use for a minute (bench/soak.py).

It needs no PostgreSQL or Redis: SQLite, the embedded broker and the simulator, as `make run`.
The 30-minute run is `make soak` (docs/reliability.md).
"""

from __future__ import annotations

from pathlib import Path

from bench import soak


def test_the_embedded_setup_survives_a_minute_of_steady_use(tmp_path: Path) -> None:
    args = soak.parse_args(["--minutes", "1", "--round-seconds", "4", "--data-dir", str(tmp_path)])
    figures = soak.soak(args)
    assert figures.failures == []
    assert figures.server_errors == 0 and figures.restarts == []
    assert figures.launches >= 5 and figures.actions.get("done", 0) >= figures.launches
    assert figures.leftover_processes == 0
