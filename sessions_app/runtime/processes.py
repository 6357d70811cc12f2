"""Stopping child processes together with what they forked (no Django needed)."""

from __future__ import annotations

import contextlib
import os
import subprocess


def signal_group(
    child: subprocess.Popen[bytes], signum: int, *, only_if_running: bool = True
) -> None:
    if only_if_running and child.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signum)
