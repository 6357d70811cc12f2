"""The analytics pages' GET form: the list's filters, a date range and the period."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils import timezone

from sessions_app.sessions.forms import SessionFilterForm

DEFAULT_DAYS = 90
# Longer ranges are cut to this many days, so a page never charts thousands of periods.
MAX_DAYS = 731
# Ranges longer than this chart weeks unless days are asked for.
DAILY_UP_TO = 62
# The calendar's edges, kept well away from, so that weeks and ranges never overflow.
EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(9000, 12, 31)
ANALYTICS_ARCHIVED = [
    ("", "Include archived"),
    ("hide", "Hide archived"),
    ("only", "Only archived"),
]
PERIODS = [("", "Automatic"), ("day", "Per day"), ("week", "Per week")]


class AnalyticsForm(SessionFilterForm):
    """The list's filters (bad values are ignored and named, as on the list), with a
    date range that defaults to the last `DEFAULT_DAYS` days."""

    archived = forms.ChoiceField(choices=ANALYTICS_ARCHIVED, required=False)
    per = forms.ChoiceField(choices=PERIODS, required=False, label="Period")

    def __init__(self, data: QueryDict, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.fields["created_after"].label = "From"
        self.fields["created_before"].label = "Until"

    def window(self, data: dict[str, Any]) -> tuple[dt.date, dt.date, bool]:
        """The range's first and last day, and whether it is charted per week."""
        today = timezone.localdate()
        end = min(max(data.get("created_before") or today, EARLIEST), LATEST)
        start = data.get("created_after") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
        start = min(max(start, EARLIEST), end)
        if start != (data.get("created_after") or start) or end != (
            data.get("created_before") or end
        ):
            self.ignored.append(
                f"Dates are kept between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}."
            )
        if (end - start).days >= MAX_DAYS:
            start = end - dt.timedelta(days=MAX_DAYS - 1)
            self.ignored.append(f"The range was cut to its last {MAX_DAYS} days.")
        per = data.get("per") or ""
        weekly = per == "week" or (not per and (end - start).days >= DAILY_UP_TO)
        return start, end, weekly
