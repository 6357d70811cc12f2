"""`python -m jules_simulator` as a process: serves, keeps its snapshot, stops on SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from .helpers import ALL, call, create, q

ROOT = Path(__file__).resolve().parents[3]
ADDRESS = re.compile(r"http://127\.0\.0\.1:(\d+)/v1alpha")


def _start(*args: str) -> tuple[subprocess.Popen[str], SimpleNamespace]:
    process = subprocess.Popen(
        [sys.executable, "-m", "jules_simulator", "--port", "0", "--api-key", "k", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    match = ADDRESS.search(process.stdout.readline())
    assert match, "no address printed"
    return process, SimpleNamespace(port=int(match.group(1)))


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=15)
    assert process.returncode == 0
    return out


def test_it_runs_as_a_module_and_keeps_its_world_in_the_snapshot(tmp_path: Path) -> None:
    snapshot = str(tmp_path / "world.json")
    process, sim = _start("--demo", "--seed", "1", "--snapshot", snapshot)
    first = {create(sim, f"Task {n}")["id"] for n in range(3)}
    listed = call(sim, "GET", f"/sessions?pageSize=100&filter={q(ALL)}").json["sessions"]
    assert "Snapshot written" in _stop(process)

    process, sim = _start("--demo", "--seed", "1", "--snapshot", snapshot)
    try:
        again = call(sim, "GET", f"/sessions?pageSize=100&filter={q(ALL)}").json["sessions"]
        assert {s["id"] for s in listed} <= {s["id"] for s in again}
        assert first <= {s["id"] for s in again}
        second = {create(sim, f"Task {n}")["id"] for n in range(3)}
        assert not second & {s["id"] for s in listed}
    finally:
        _stop(process)


def test_it_refuses_a_bad_option_with_a_message() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "jules_simulator", "--port", "0", "--speed", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "speed must be positive" in done.stderr
