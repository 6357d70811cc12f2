"""When a schedule runs: cron expressions and simple cadences, in a time zone. Pure.

Expressions are read as wall-clock times in the schedule's zone (croniter does the cron
arithmetic on naive local times). Across a daylight-saving change a local time that does
not exist (the spring gap) runs at the same distance after the gap's start, and one that
occurs twice (the autumn overlap) runs once, at its first occurrence (docs/templates.md).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterError, croniter

# Weekday numbers as cron writes them (0 = Sunday) with the names the forms show.
WEEKDAYS = [
    (1, "Monday"),
    (2, "Tuesday"),
    (3, "Wednesday"),
    (4, "Thursday"),
    (5, "Friday"),
    (6, "Saturday"),
    (0, "Sunday"),
]
# How far back a tick looks for slots it missed, to count them (the latest one runs).
LOOK_BACK = dt.timedelta(days=2)


class BadSchedule(ValueError):
    """The expression or the time zone cannot be used; the message says why."""


def zone(name: str) -> ZoneInfo:
    if not name or name not in _zone_names():
        raise BadSchedule(f"Unknown time zone {name[:64]!r}; use a name such as Europe/Berlin.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadSchedule(f"Unknown time zone {name[:64]!r}.") from exc


_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


def zone_choices() -> list[str]:
    return sorted(_zone_names())


def cadence_expression(
    cadence: str, *, at: dt.time | None, weekday: int | None, cron: str = ""
) -> str:
    """The five-field expression of a cadence (`daily`, `weekly` or `cron`)."""
    if cadence == "cron":
        return check_expression(cron)
    if at is None:
        raise BadSchedule("Say at what time it runs.")
    if cadence == "daily":
        return f"{at.minute} {at.hour} * * *"
    if cadence == "weekly":
        if weekday is None or weekday not in range(7):
            raise BadSchedule("Pick the day of the week it runs on.")
        return f"{at.minute} {at.hour} * * {weekday}"
    raise BadSchedule(f"Unknown cadence {cadence[:20]!r}.")


def check_expression(expression: str) -> str:
    text = " ".join((expression or "").split())
    if len(text.split(" ")) != 5:
        raise BadSchedule(
            "A cron expression has five fields: minute, hour, day of month, month, day of week "
            "(for example 30 9 * * 1-5)."
        )
    try:
        croniter(text, dt.datetime(2000, 1, 1))
        if not croniter.is_valid(text):
            raise BadSchedule(f"{text!r} is not a cron expression this portal understands.")
        croniter(text, dt.datetime(2000, 1, 1)).get_next(dt.datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        if isinstance(exc, BadSchedule):
            raise
        raise BadSchedule(f"{text!r} is not a cron expression this portal understands.") from exc
    return text


def _to_aware(local: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The instant of a wall-clock time; fold=0 takes the first of two, and moves a time in
    the gap forward by the gap's length."""
    aware = local.replace(tzinfo=tz, fold=0)
    return aware.astimezone(dt.UTC)


def iter_runs(expression: str, tz_name: str, after: dt.datetime) -> Iterator[dt.datetime]:
    """The slots strictly after `after` (aware), in order, as aware UTC times."""
    tz = zone(tz_name)
    after_utc = after.astimezone(dt.UTC)
    # Start an hour early in local time: an instant just after an autumn change may have a
    # local time earlier than the slot that follows it.
    start = after_utc.astimezone(tz).replace(tzinfo=None) - dt.timedelta(hours=1)
    last = after_utc
    it = croniter(expression, start)
    while True:
        instant = _to_aware(it.get_next(dt.datetime), tz)
        if instant > last:
            last = instant
            yield instant


def next_runs(expression: str, tz_name: str, after: dt.datetime, count: int) -> list[dt.datetime]:
    return list(itertools.islice(iter_runs(expression, tz_name, after), count))


def next_run(expression: str, tz_name: str, after: dt.datetime) -> dt.datetime:
    return next(iter_runs(expression, tz_name, after))


def latest_due(
    expression: str, tz_name: str, first: dt.datetime, now: dt.datetime
) -> tuple[dt.datetime, int]:
    """The latest slot at or before `now`, counting from the due slot `first`, and how many
    earlier due slots it stands for (missed while nothing ran; counted back two days)."""
    latest, skipped = first, 0
    start = max(first, now - LOOK_BACK)
    if start > first:
        skipped = 1
    for slot in iter_runs(expression, tz_name, start):
        if slot > now:
            break
        if slot > latest:
            latest, skipped = slot, skipped + 1
    return latest, skipped
