"""`make run`'s supervisor (sessions_app/runtime/supervisor.py) with real child processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from psutil import Process, pid_exists  # type: ignore[import-untyped]

from sessions_app.runtime.supervisor import Supervisor

ROOT = Path(__file__).resolve().parents[2]


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.fixture
def supervisor() -> Iterator[tuple[Supervisor, list[str]]]:
    lines: list[str] = []
    sup = Supervisor(log=lines.append, backoff_seconds=0.2, stable_seconds=5, stop_timeout=3)
    yield sup, lines
    sup.stop()


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_it_restarts_a_child_that_dies_and_names_it_with_its_exit_code(supervisor) -> None:
    sup, lines = supervisor
    child = sup.spawn(
        "the sync worker", _python("import time; time.sleep(0.3); raise SystemExit(3)")
    )
    first = child.process
    assert first is not None
    _wait(lambda: (sup.check() or child.restarts) >= 1)
    assert child.process is not first and child.process is not None
    assert child.exit_codes[0] == 3
    assert any("the sync worker" in line and "code 3" in line for line in lines)
    assert any("restarted" in line for line in lines)


def test_it_backs_off_a_child_that_keeps_crashing(supervisor) -> None:
    sup, _ = supervisor
    child = sup.spawn("beat", _python("raise SystemExit(1)"))
    started = time.monotonic()
    # Backoffs of 0.2, 0.4 and 0.8 s: three restarts take at least 1.4 s, not a spin.
    _wait(lambda: (sup.check() or child.restarts) >= 3)
    assert time.monotonic() - started >= 1.4
    assert child.restarts == 3


def test_it_leaves_a_healthy_child_alone(supervisor) -> None:
    sup, _ = supervisor
    child = sup.spawn("the web server", _python("import time; time.sleep(30)"))
    for _ in range(5):
        sup.check()
        time.sleep(0.05)
    assert child.restarts == 0 and child.process is not None and child.process.poll() is None


def test_sigterm_stops_every_child_and_what_they_forked(tmp_path: Path) -> None:
    """The supervisor in a process of its own, as `make run` runs it, signalled from outside."""
    pids = tmp_path / "pids"
    script = f"""
        import signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from sessions_app.runtime.supervisor import Supervisor
        sup = Supervisor(log=lambda line: None, stop_timeout=3)
        # A leader that forks a grandchild and ignores SIGTERM, like a stuck worker pool.
        forker = (
            "import os, signal, subprocess, sys, time\\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\\n"
            "open({str(pids)!r}, 'a').write(f'{{os.getpid()}} {{p.pid}}\\\\n')\\n"
            "time.sleep(60)\\n"
        )
        for n in range(2):
            sup.spawn(f"child {{n}}", [sys.executable, "-c", forker])
        signal.signal(signal.SIGTERM, lambda *_: sup.request_stop())
        try:
            sup.run(poll_seconds=0.1)
        finally:
            sup.stop()
    """
    runner = subprocess.Popen(_python(script))
    _wait(lambda: pids.exists() and len(pids.read_text().split()) == 4)
    started = [int(pid) for pid in pids.read_text().split()]
    assert all(pid_exists(pid) for pid in started)
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=15) == 0

    def gone(pid: int) -> bool:
        try:
            return Process(pid).status() == "zombie"
        except Exception:  # psutil.NoSuchProcess: already reaped.
            return True

    _wait(lambda: all(gone(pid) for pid in started), timeout=5)
