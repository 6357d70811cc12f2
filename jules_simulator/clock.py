"""The simulator's virtual clock and its RFC 3339 timestamps.

Times are integer microseconds since the Unix epoch everywhere in the simulator: floats lose
the sixth fractional digit at today's magnitudes, and the live service writes six.
"""

from __future__ import annotations

import calendar
import re
import time

US = 1_000_000
# The manual clock starts at a fixed instant so that a seed gives the same JSON on every run.
MANUAL_EPOCH_US = 1_780_000_000 * US

RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"([Zz]|[+-]\d{2}:\d{2})$"
)


class VirtualClock:
    """Virtual time: wall time scaled by `speed`, or moved only by `advance` when manual."""

    def __init__(self, *, speed: float = 1.0, manual: bool = False, start_us: int | None = None):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.manual = manual
        if start_us is None:
            start_us = MANUAL_EPOCH_US if manual else int(time.time() * US)
        self.start_us = start_us
        self.real_start = time.monotonic()
        self.offset_us = 0

    def now_us(self) -> int:
        if self.manual:
            return self.start_us + self.offset_us
        elapsed = (time.monotonic() - self.real_start) * self.speed
        return self.start_us + int(elapsed * US) + self.offset_us

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset_us += round(seconds * US)

    def jump_to(self, when_us: int) -> None:
        """Move the clock forward to `when_us` (a restored snapshot's time); never back."""
        now = self.now_us()
        if when_us > now:
            self.offset_us += when_us - now


def format_ts(us: int) -> str:
    """RFC 3339 in UTC with six fractional digits, the live service's shape."""
    seconds, micros = divmod(us, US)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def parse_ts_ns(text: str) -> int | None:
    """Nanoseconds since the epoch for an RFC 3339 timestamp (0-9 digits, any offset)."""
    match = RFC3339.match(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        seconds = calendar.timegm(
            (int(year), int(month), int(day), int(hour), int(minute), int(second), 0, 0, 0)
        )
    except (ValueError, OverflowError):
        return None
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31 and int(hour) < 24):
        return None
    if int(minute) > 59 or int(second) > 60:
        return None
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    nanos = int((fraction or "0").ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos
