"""The sync worker's CPU priority: pages stay quick while a large account syncs.

A worker that consumes only the sync queue lowers its own priority at start, so that the
web server on the same host wins the CPU when both want it (docs/operations.md#cpu-priority-of-the-sync).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

SYNC_QUEUE = "sync"
# Linux's autogroup of this process's session (sched(7)): nice only orders threads within
# one autogroup, so a session of its own needs the group's nice value set too.
AUTOGROUP_PATH = Path("/proc/self/autogroup")


def parse_nice(value: str, name: str = "SYNC_WORKER_NICE") -> int:
    """A nice value from the environment: a whole number from 0 to 19."""
    try:
        nice = int(value.strip())
    except ValueError:
        nice = -1
    if not 0 <= nice <= 19:
        raise ImproperlyConfigured(f"{name} must be a whole number from 0 to 19, not {value!r}.")
    return nice


def lower_sync_priority(
    queues: Iterable[str],
    nice: int,
    *,
    renice: Callable[[int], int] = os.nice,
    session_leader: bool | None = None,
    autogroup: Path = AUTOGROUP_PATH,
) -> bool:
    """Lower this process's CPU priority to `nice` if it consumes only the sync queue.

    A worker that also consumes the actions queue keeps its priority: approvals and
    messages must not wait behind the web server. True when the priority was lowered.
    """
    if set(queues) != {SYNC_QUEUE} or nice == 0:
        return False
    current = renice(0)
    if nice > current:
        renice(nice - current)
    if session_leader is None:
        session_leader = os.getsid(0) == os.getpid()
    # Only the leader of its own session owns its autogroup; anyone else would renice
    # the whole session that started it (a terminal, `make run`).
    if session_leader:
        try:
            autogroup.write_text(f"{nice}\n")
        except FileNotFoundError:
            logger.debug("No %s here (not Linux, or no autogroup): nice alone applies.", autogroup)
        except OSError as exc:
            logger.info("Could not set the autogroup's nice value in %s: %s.", autogroup, exc)
        else:
            logger.info("The sync worker's autogroup runs at nice %d.", nice)
    logger.info("The sync worker runs at nice %d.", max(nice, current))
    return True
