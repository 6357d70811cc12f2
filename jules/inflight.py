"""An adaptive limit of requests in flight for one client (docs/jules-api.md, "Retries").

Every attempt passes through `InFlight.slot()`: it waits for a free slot, and on leaving
reports how the attempt went. The limit starts small and grows while that pays:

- it measures answers a second in rounds of a limit's worth of answers (and at least
  100 ms between them) to attempts the limit held back (each took the last free slot);
  the time of a stretch where it held nothing back does not count, so a serial phase,
  where one request is enough, neither grows it nor blurs the figure;
- after each step up it skips one round (the answers still come at the old rate), then
  measures one: if answers a second rose by at least a quarter of what the new slots
  could give, it steps up again; if not, it steps back to where it was and waits a few
  rounds before trying again (twice as many after each try in a row that did not pay).
  The steps double the limit until one does not pay or a throttle comes, then add one.
  Over a slow network every slot pays, so the limit reaches the ceiling within a few
  round trips; on loopback, where more threads only take the CPU (the GIL) from the work
  done with the answers, it stays near its start.

It halves on a 429 or 5xx (once for all the attempts that were in flight together), and
while a `Retry-After` runs holds every new attempt until it has passed. It never exceeds
`ceiling`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# A step up pays when answers a second rose by at least this share of the ideal gain (the
# new slots over the old limit).
GAIN = 0.25
# Rounds to wait at the lower limit after a step up that did not pay, before trying again;
# doubled after each one in a row that did not pay, up to MAX_PROBE_ROUNDS.
PROBE_ROUNDS = 4
MAX_PROBE_ROUNDS = 256
# A round lasts at least this long too: on loopback a limit's worth of answers takes a few
# milliseconds, too short a time to tell one rate from another.
MIN_ROUND_SECONDS = 0.1
# Changes of the limit kept for the curve (the newest).
HISTORY = 4096


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
        # The round under way: answers to pressed attempts, and the time between two such
        # answers in a row (a stretch where the limit held nothing back does not count).
        self._count = 0
        self._elapsed = 0.0
        self._last: float | None = None
        # The first round after a change only warms up; `_rate_before` is the answers a
        # second measured at the limit before the last step up.
        self._warm = True
        self._rate_before: float | None = None
        self._limit_before = self._limit
        self._hold = 0
        self._probe_rounds = PROBE_ROUNDS
        # Steps double the limit until one does not pay or a throttle comes.
        self._doubling = True
        self._hold_until = 0.0
        # When the limit was last halved: a throttled answer to an attempt that started
        # before then was already counted by that cut (one halving per round trip).
        self._cut_at = float("-inf")
        self.peak = 0
        # (time, limit) at every change, for the curve of requests in flight.
        self.history: deque[tuple[float, int]] = deque([(clock(), self._limit)], maxlen=HISTORY)

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
                self._doubling = False
                if outcome.retry_after:
                    self._hold_until = max(self._hold_until, now + outcome.retry_after)
                # Every waiter re-reads the hold and the new limit.
                self._cond.notify_all()
                return
            freed = 1
            if not outcome.pressed:
                # The limit held nothing back: this says nothing about a larger one.
                self._last = None
            else:
                if self._last is not None:
                    self._count += 1
                    self._elapsed += now - self._last
                self._last = now
                if self._count >= self._limit and self._elapsed >= MIN_ROUND_SECONDS:
                    freed += self._end_round(now)
            # Wake only as many waiters as there are new slots: with a pool sized to the
            # ceiling, waking all of them on every answer would cost the CPU-bound case.
            self._cond.notify(freed)

    def _restart(self, now: float) -> None:
        self._count = 0
        self._elapsed = 0.0
        self._last = now

    def _end_round(self, now: float) -> int:
        """Decide at the end of a round; return how many more slots there are now."""
        rate = self._count / self._elapsed
        self._restart(now)
        if self._warm:
            self._warm = False
            return 0
        if self._hold:
            self._hold -= 1
            return 0
        limit = self._limit
        before = self._limit_before
        paid = self._rate_before is None or rate >= self._rate_before * (
            1 + GAIN * (limit - before) / before
        )
        if not paid:
            # The last step bought (almost) nothing: back down, try one more later.
            self._set(before, now)
            self._rate_before = None
            self._hold = self._probe_rounds
            self._probe_rounds = min(self._probe_rounds * 2, MAX_PROBE_ROUNDS)
            self._warm = True
            self._doubling = False
            return 0
        if limit >= self.ceiling:
            # At the ceiling and worth it: nothing more to try.
            self._rate_before = None
            return 0
        if self._rate_before is not None:
            # The last step paid: the next one may come as soon.
            self._probe_rounds = PROBE_ROUNDS
        self._rate_before = rate
        self._limit_before = limit
        grown = min(self.ceiling, limit * 2 if self._doubling else limit + 1)
        self._set(grown, now)
        self._warm = True
        return grown - limit

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
