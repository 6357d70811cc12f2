"""An adaptive limit of requests in flight for one client (docs/jules-api.md, "Retries").

Every attempt passes through `InFlight.slot()`: it waits for a free slot, and on leaving
reports how the attempt went. The limit starts small and grows by one while that pays:

- it counts rounds of a limit's worth of clean answers (no slower than the best recent
  one) to attempts the limit held back (each took the last free slot), so a serial phase,
  where one request is enough, never grows it;
- after each step up it skips one round (the answers still come at the old rate), then
  measures one: if answers a second rose by at least a quarter of what the extra slot
  could give, it steps up again; if not, it steps back down and waits a few rounds before
  trying again. Over a slow network every slot pays; on loopback, where more threads only
  take the CPU (the GIL) from the work done with the answers, the limit stays near its
  start.

It halves on a 429 or 5xx (once for all the attempts that were in flight together), and
while a `Retry-After` runs holds every new attempt until it has passed. It never exceeds
`ceiling`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# An answer counts as "not slower" within this factor of the best recent latency.
SLOWER = 1.5
# A step up pays when answers a second rose by at least this share of the ideal gain (one
# more slot over `limit - 1`).
GAIN = 0.25
# Rounds to wait at the lower limit after a step up that did not pay, before trying again.
PROBE_ROUNDS = 4


class Outcome:
    """What an attempt reports on release; set by the caller inside the slot."""

    __slots__ = ("pressed", "retry_after", "throttled")

    def __init__(self) -> None:
        self.throttled = False
        self.retry_after: float | None = None
        # Set by `acquire`: the attempt took the last free slot (the limit held others back).
        self.pressed = False


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
        self._best: float | None = None
        # The round under way: pressed clean answers counted since `_round_start`.
        self._count = 0
        self._round_start = clock()
        # The first round after a change only warms up; `_rate_before` is the answers a
        # second measured at the limit before the last step up.
        self._warm = True
        self._rate_before: float | None = None
        self._hold = 0
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

    def acquire(self, outcome: Outcome | None = None) -> float:
        """Wait for a slot; return the time the attempt starts (and mark `outcome` pressed
        when it took the last free slot)."""
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
            if outcome is not None:
                outcome.pressed = self._active >= self._limit
            return self._clock()

    def release(self, started: float, outcome: Outcome) -> None:
        with self._cond:
            self._active -= 1
            now = self._clock()
            if outcome.throttled:
                if started >= self._cut_at:
                    self._set(max(1, self._limit // 2), now)
                    self._cut_at = now
                self._restart(now)
                self._warm = True
                self._rate_before = None
                self._hold = 0
                if outcome.retry_after:
                    self._hold_until = max(self._hold_until, now + outcome.retry_after)
                # Every waiter re-reads the hold and the new limit.
                self._cond.notify_all()
                return
            latency = now - started
            if self._best is None or latency < self._best:
                self._best = latency
            freed = 1
            if not outcome.pressed:
                # The limit held nothing back: this says nothing about a larger one.
                self._restart(now)
            elif latency <= self._best * SLOWER + 0.001:
                self._count += 1
                if self._count >= self._limit:
                    freed += self._end_round(now)
            # Wake only as many waiters as there are new slots: with a pool sized to the
            # ceiling, waking all of them on every answer would cost the CPU-bound case.
            self._cond.notify(freed)

    def _restart(self, now: float) -> None:
        self._count = 0
        self._round_start = now

    def _end_round(self, now: float) -> int:
        """Decide at the end of a round; return how many more slots there are now."""
        rate = self._count / max(now - self._round_start, 1e-6)
        self._restart(now)
        if self._warm:
            self._warm = False
            return 0
        if self._hold:
            self._hold -= 1
            return 0
        limit = self._limit
        paid = self._rate_before is None or rate >= self._rate_before * (1 + GAIN / (limit - 1))
        if not paid:
            # The last step bought (almost) nothing: back down, try again later.
            self._set(limit - 1, now)
            self._rate_before = None
            self._hold = PROBE_ROUNDS
            self._warm = True
            return 0
        if limit >= self.ceiling:
            # At the ceiling and worth it: nothing more to try.
            self._rate_before = None
            return 0
        self._rate_before = rate
        self._set(limit + 1, now)
        self._warm = True
        return 1

    def _set(self, limit: int, now: float) -> None:
        if limit != self._limit:
            self._limit = limit
            self.history.append((now, limit))

    @contextmanager
    def slot(self) -> Iterator[Outcome]:
        outcome = Outcome()
        started = self.acquire(outcome)
        try:
            yield outcome
        finally:
            self.release(started, outcome)
