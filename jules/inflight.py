"""An adaptive limit of requests in flight for one client (docs/jules-api.md, "Retries").

Every attempt passes through `InFlight.slot()`: it waits for a free slot, and on leaving
reports how the attempt went. The limit starts small, grows by one after a limit's worth
of clean answers that came back no slower than before (so on loopback, where more threads
only contend for the CPU, it stays put), halves on a 429 or 5xx (once for all the attempts
that were in flight together), and while a `Retry-After` runs holds every new attempt until
it has passed. It never exceeds `ceiling`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# An answer counts as "not slower" within this factor of the best recent latency.
SLOWER = 1.5


class Outcome:
    """What an attempt reports on release; set by the caller inside the slot."""

    __slots__ = ("retry_after", "throttled")

    def __init__(self) -> None:
        self.throttled = False
        self.retry_after: float | None = None


class InFlight:
    def __init__(
        self,
        ceiling: int = 16,
        start: int = 2,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ceiling = max(1, ceiling)
        self._limit = max(1, min(start, self.ceiling))
        self._clock = clock
        self._cond = threading.Condition()
        self._active = 0
        self._clean = 0
        self._best: float | None = None
        self._hold_until = 0.0
        # When the limit was last halved: a throttled answer to an attempt that started
        # before then was already counted by that cut (one halving per round trip).
        self._cut_at = float("-inf")
        self.peak = 0
        # (time, limit) at every change, for the curve of requests in flight.
        self.history: list[tuple[float, int]] = [(clock(), self._limit)]

    @property
    def limit(self) -> int:
        with self._cond:
            return self._limit

    @property
    def active(self) -> int:
        with self._cond:
            return self._active

    def acquire(self) -> float:
        """Wait for a slot; return the time the attempt starts."""
        with self._cond:
            while True:
                wait = self._hold_until - self._clock()
                if wait > 0:
                    self._cond.wait(wait)
                elif self._active >= self._limit:
                    self._cond.wait()
                else:
                    break
            self._active += 1
            self.peak = max(self.peak, self._active)
            return self._clock()

    def release(self, started: float, outcome: Outcome) -> None:
        with self._cond:
            self._active -= 1
            now = self._clock()
            if outcome.throttled:
                if started >= self._cut_at:
                    self._set(max(1, self._limit // 2), now)
                    self._cut_at = now
                self._clean = 0
                if outcome.retry_after:
                    self._hold_until = max(self._hold_until, now + outcome.retry_after)
                # Every waiter re-reads the hold and the new limit.
                self._cond.notify_all()
                return
            latency = now - started
            if self._best is None or latency < self._best:
                self._best = latency
            freed = 1
            if latency <= self._best * SLOWER + 0.001:
                self._clean += 1
                if self._clean >= self._limit and self._limit < self.ceiling:
                    self._set(self._limit + 1, now)
                    self._clean = 0
                    freed = 2
            # Wake only as many waiters as there are new slots: with a pool sized to the
            # ceiling, waking all of them on every answer would cost the CPU-bound case.
            self._cond.notify(freed)

    def _set(self, limit: int, now: float) -> None:
        if limit != self._limit:
            self._limit = limit
            self.history.append((now, limit))

    @contextmanager
    def slot(self) -> Iterator[Outcome]:
        outcome = Outcome()
        started = self.acquire()
        try:
            yield outcome
        finally:
            self.release(started, outcome)
