"""`make run`'s supervisor: child processes restarted when they die, stopped together (no Django).

A child that exits while the portal runs is started again after a backoff that doubles with
each quick death (so a crash loop does not spin) and resets once it has run for a while.
`stop()` ends every child with its process group: the leaders first, so that Celery and
gunicorn stop their own pools cleanly, then whatever is left after the deadline is killed.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sessions_app.runtime.processes import signal_group


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    # Consecutive deaths within `stable_seconds` of a start: the backoff's exponent.
    quick_deaths: int = 0
    restart_at: float | None = None
    exit_codes: list[int] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        *,
        log: Callable[[str], None] = print,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        stable_seconds: float = 60.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self.log = log
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.stable_seconds = stable_seconds
        self.stop_timeout = stop_timeout
        self.children: list[Child] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    def spawn(self, name: str, command: Sequence[str]) -> Child:
        child = Child(name, list(command))
        self.children.append(child)
        self._start(child)
        return child

    def _start(self, child: Child) -> subprocess.Popen[bytes]:
        # Each child leads its own process group, so that stopping it also stops the
        # processes it forked (Celery's pool, gunicorn's workers).
        process = subprocess.Popen(child.command, start_new_session=True)  # noqa: S603
        child.process = process
        child.started_at = time.monotonic()
        child.restart_at = None
        return process

    def check(self) -> None:
        """Notice children that died and restart those whose backoff has passed."""
        with self._lock:
            if self.stopping.is_set():
                return
            now = time.monotonic()
            for child in self.children:
                process = child.process
                if child.restart_at is None and process is not None:
                    code = process.poll()
                    if code is None:
                        continue
                    child.exit_codes.append(code)
                    ran = now - child.started_at
                    child.quick_deaths = child.quick_deaths + 1 if ran < self.stable_seconds else 1
                    delay = min(
                        self.max_backoff_seconds,
                        self.backoff_seconds * 2 ** (child.quick_deaths - 1),
                    )
                    child.restart_at = now + delay
                    # Whatever it forked goes with it, so a restarted worker never shares
                    # its queue with an orphaned pool process.
                    signal_group(process, signal.SIGKILL, only_if_running=False)
                    self.log(
                        f"{child.name} (pid {process.pid}) exited with code {code} after "
                        f"{ran:.0f} s; restarting it in {delay:.0f} s."
                    )
                if child.restart_at is not None and now >= child.restart_at:
                    child.restarts += 1
                    self.log(f"{child.name} restarted (pid {self._start(child).pid}).")

    def run(self, poll_seconds: float = 1.0) -> None:
        """Supervise until `stopping` is set (by `request_stop` or a signal handler)."""
        while not self.stopping.wait(poll_seconds):
            self.check()

    def request_stop(self) -> None:
        self.stopping.set()

    def stop(self) -> None:
        self.stopping.set()
        with self._lock:
            processes = [c.process for c in self.children if c.process is not None]
            for process in processes:
                if process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            for process in processes:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    signal_group(process, signal.SIGKILL)
                    process.wait()
            # Workers' own children (a pool process that outlived its parent) share the group.
            for process in processes:
                signal_group(process, signal.SIGKILL, only_if_running=False)

    @property
    def restarts(self) -> int:
        return sum(child.restarts for child in self.children)
