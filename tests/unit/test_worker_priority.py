"""The sync-only worker lowers its CPU priority (docs/operations.md#cpu-priority-of-the-sync)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from julesweb.priority import lower_sync_priority, parse_nice

ROOT = Path(__file__).resolve().parents[2]


class FakeNice:
    """os.nice without touching this process: records the increments asked for."""

    def __init__(self, current: int = 0) -> None:
        self.current = current
        self.increments: list[int] = []

    def __call__(self, increment: int) -> int:
        if increment:
            self.increments.append(increment)
        self.current += increment
        return self.current


@pytest.mark.parametrize(("value", "expected"), [("0", 0), ("5", 5), (" 19 ", 19)])
def test_it_reads_a_nice_value_from_0_to_19(value: str, expected: int) -> None:
    assert parse_nice(value) == expected


@pytest.mark.parametrize("value", ["-1", "20", "abc", "5.5", ""])
def test_it_refuses_a_nice_value_outside_0_to_19_with_a_clear_message(value: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="SYNC_WORKER_NICE must be a whole number"):
        parse_nice(value)


def _settings_nice(value: str | None) -> subprocess.CompletedProcess[str]:
    """Start Django in a fresh interpreter with SYNC_WORKER_NICE set to `value` (or unset)."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="julesweb.settings")
    env.pop("SYNC_WORKER_NICE", None)
    if value is not None:
        env["SYNC_WORKER_NICE"] = value
    code = "import django; django.setup(); from django.conf import settings; "
    code += "print(settings.SYNC_WORKER_NICE)"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_it_stops_at_startup_on_a_bad_setting() -> None:
    result = _settings_nice("high")

    assert result.returncode != 0
    assert "SYNC_WORKER_NICE must be a whole number from 0 to 19, not 'high'" in result.stderr


@pytest.mark.parametrize(("value", "expected"), [(None, "10"), ("", "10"), ("12", "12")])
def test_it_defaults_to_nice_10(value: str | None, expected: str) -> None:
    result = _settings_nice(value)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_it_lowers_the_priority_of_a_sync_only_worker(tmp_path: Path) -> None:
    renice = FakeNice()
    group = tmp_path / "autogroup"
    group.write_text("/autogroup-1 nice 0\n")

    assert lower_sync_priority(["sync"], 5, renice=renice, session_leader=True, autogroup=group)

    assert renice.current == 5
    assert group.read_text() == "5\n"


def test_it_keeps_the_priority_of_a_worker_that_also_consumes_actions(tmp_path: Path) -> None:
    renice = FakeNice()
    group = tmp_path / "autogroup"
    group.write_text("/autogroup-1 nice 0\n")

    for queues in (["sync", "actions"], ["actions"]):
        assert not lower_sync_priority(
            queues, 5, renice=renice, session_leader=True, autogroup=group
        )

    assert renice.increments == []
    assert group.read_text() == "/autogroup-1 nice 0\n"


def test_it_changes_nothing_at_nice_0(tmp_path: Path) -> None:
    renice = FakeNice()
    group = tmp_path / "autogroup"

    assert not lower_sync_priority(["sync"], 0, renice=renice, session_leader=True, autogroup=group)

    assert renice.increments == []
    assert not group.exists()


def test_it_never_raises_the_priority_of_a_process_already_lower(tmp_path: Path) -> None:
    renice = FakeNice(current=10)

    lower_sync_priority(["sync"], 5, renice=renice, session_leader=False, autogroup=tmp_path / "g")

    assert renice.increments == []


def test_it_leaves_the_autogroup_of_a_session_it_does_not_lead(tmp_path: Path) -> None:
    renice = FakeNice()
    group = tmp_path / "autogroup"
    group.write_text("/autogroup-1 nice 0\n")

    lower_sync_priority(["sync"], 5, renice=renice, session_leader=False, autogroup=group)

    assert renice.current == 5
    assert group.read_text() == "/autogroup-1 nice 0\n"


def test_it_is_quiet_without_an_autogroup_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    renice = FakeNice()
    caplog.set_level(logging.DEBUG, logger="julesweb.priority")

    assert lower_sync_priority(
        ["sync"], 7, renice=renice, session_leader=True, autogroup=tmp_path / "missing" / "g"
    )

    assert renice.current == 7
    assert any(
        r.levelno == logging.DEBUG and "nice alone applies" in r.getMessage()
        for r in caplog.records
    )
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)
