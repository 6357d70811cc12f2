"""The charts of the analytics page as view models: the numbers of each SVG shape, the
table beside it and its CSV rows (docs/analytics.md). The markup is in the templates
(`templates/sessions_app/analytics/`); this module only places things.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from sessions_app.analytics.selectors import TOP, Figures, Group
from sessions_app.models import SessionState

WIDTH = 640
LABEL_WIDTH = 220
BAR_AREA = 270
BAR_ROW = 22
PLOT_TOP, PLOT_HEIGHT, PLOT_LEFT = 10, 170, 44
# The states in the order their segments stack, bottom first.
STACK = (
    SessionState.COMPLETED,
    SessionState.FAILED,
    SessionState.IN_PROGRESS,
    SessionState.AWAITING_PLAN_APPROVAL,
    SessionState.AWAITING_USER_FEEDBACK,
    SessionState.PLANNING,
    SessionState.QUEUED,
    SessionState.PAUSED,
    SessionState.STATE_UNSPECIFIED,
)


@dataclass(frozen=True)
class Bar:
    label: str
    text: str
    y: int
    width: float

    @property
    def value_x(self) -> float:
        return round(LABEL_WIDTH + 10 + self.width, 1)


@dataclass(frozen=True)
class Segment:
    state: str
    label: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Column:
    label: str
    x: float
    width: float
    total: int
    segments: tuple[Segment, ...]
    show_label: bool


@dataclass(frozen=True)
class Chart:
    slug: str
    title: str
    summary: str
    header: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    bars: tuple[Bar, ...] = ()
    columns: tuple[Column, ...] = ()
    legend: tuple[tuple[str, str], ...] = ()
    unit: str = ""
    # The largest column's total, written at the top of the axis.
    peak: int = 0

    @property
    def height(self) -> int:
        if self.columns:
            return PLOT_TOP + PLOT_HEIGHT + 30
        return max(1, len(self.bars)) * BAR_ROW + 8

    @property
    def width(self) -> int:
        return WIDTH

    @property
    def bar_x(self) -> int:
        return LABEL_WIDTH + 4

    @property
    def plot_bottom(self) -> int:
        return PLOT_TOP + PLOT_HEIGHT

    @property
    def plot_top(self) -> int:
        return PLOT_TOP


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def percent(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def percent_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} %"


def _bars(items: list[tuple[str, float, str]]) -> tuple[Bar, ...]:
    """Horizontal bars, scaled to the largest value, for the first `TOP` items."""
    shown = items[:TOP]
    top = max((value for _, value, _ in shown), default=0) or 1
    return tuple(
        Bar(label=label[:40], text=text, y=4 + i * BAR_ROW, width=round(BAR_AREA * value / top, 1))
        for i, (label, value, text) in enumerate(shown)
    )


def _histogram(slug: str, title: str, summary: str, buckets: list[tuple[str, int]]) -> Chart:
    return Chart(
        slug=slug,
        title=title,
        summary=summary,
        header=("bucket", "sessions"),
        rows=tuple((label, n) for label, n in buckets),
        bars=_bars([(label, n, str(n)) for label, n in buckets]),
    )


def _rates(slug: str, title: str, summary: str, groups: list[Group], what: str) -> Chart:
    header = (what, "sessions", "completed", "failed", "success rate %", "with PR", "PR rate %")
    rows = []
    items = []
    for g in groups:
        rate = percent(g.completed, g.completed + g.failed)
        rows.append(
            (
                g.label,
                g.total,
                g.completed,
                g.failed,
                _round(rate),
                g.with_pr,
                _round(percent(g.with_pr, g.total)),
            )
        )
        items.append((g.label, rate or 0.0, f"{percent_text(rate)} of {g.completed + g.failed}"))
    return Chart(slug, title, summary, header, tuple(rows), _bars(items), unit="%")


def _round(value: float | None) -> float | str:
    return "" if value is None else round(value, 1)


def _periods(figures: Figures, weekly: bool) -> list[tuple[dt.date, dict[str, int]]]:
    """Every day (or Monday-started week) of the range, with its counts per state."""
    periods: dict[dt.date, dict[str, int]] = {}
    day = figures.start
    while day <= figures.end:
        key = day - dt.timedelta(days=day.weekday()) if weekly else day
        periods.setdefault(key, {})
        day += dt.timedelta(days=1)
    for day, counts in figures.per_day.items():
        key = day - dt.timedelta(days=day.weekday()) if weekly else day
        bucket = periods.setdefault(key, {})
        for state, n in counts.items():
            bucket[state] = bucket.get(state, 0) + n
    return sorted(periods.items())


def sessions_chart(figures: Figures, weekly: bool) -> Chart:
    periods = _periods(figures, weekly)
    labels = dict(SessionState.choices)
    top = max((sum(c.values()) for _, c in periods), default=0) or 1
    step = (WIDTH - PLOT_LEFT - 6) / max(1, len(periods))
    every = max(1, math.ceil(len(periods) / 6))
    columns = []
    for i, (day, counts) in enumerate(periods):
        y = float(PLOT_TOP + PLOT_HEIGHT)
        segments = []
        for state in STACK:
            n = counts.get(state, 0)
            if not n:
                continue
            height = PLOT_HEIGHT * n / top
            y -= height
            segments.append(Segment(state, labels[state], n, round(y, 1), round(height, 1)))
        columns.append(
            Column(
                label=day.strftime("%d %b"),
                x=round(PLOT_LEFT + i * step, 1),
                width=round(max(1.0, step * 0.8), 1),
                total=sum(counts.values()),
                segments=tuple(segments),
                show_label=i % every == 0,
            )
        )
    header = ("week of" if weekly else "day", *(labels[s] for s in STACK), "total")
    rows = tuple(
        (day.isoformat(), *(c.get(s, 0) for s in STACK), sum(c.values())) for day, c in periods
    )
    return Chart(
        slug="sessions",
        title=f"Sessions per {'week' if weekly else 'day'} by state",
        summary=f"{figures.total} sessions created in the range, by their state now.",
        header=header,
        rows=rows,
        columns=tuple(columns),
        legend=tuple((s, labels[s]) for s in STACK),
        peak=max((sum(c.values()) for _, c in periods), default=0),
    )


def overview_chart(figures: Figures) -> Chart:
    rested = figures.completed + figures.failed
    items = [
        ("Success rate", percent(figures.completed, rested), f"of {rested} ended"),
        ("Pull request rate", percent(figures.with_pr, figures.total), f"of {figures.total}"),
        ("Launched outside the portal", percent(figures.outside, figures.total), ""),
        ("Plans regenerated", percent(figures.regenerated, figures.total), ""),
    ]
    return Chart(
        slug="overview",
        title="Overview",
        summary=(
            f"{figures.total} sessions; {figures.lines_added} lines added and "
            f"{figures.lines_removed} removed by their changes."
        ),
        header=("figure", "percent", "note"),
        rows=tuple((label, _round(value), note) for label, value, note in items),
        bars=_bars(
            [
                (label, value or 0.0, f"{percent_text(value)} {note}".strip())
                for label, value, note in items
            ]
        ),
        unit="%",
    )


def approvers_chart(figures: Figures) -> Chart:
    return Chart(
        slug="approvers",
        title="Time waiting for approval, per approver",
        summary="Average wait from a plan to its approval, by who approved it.",
        header=("approver", "approvals", "average wait (s)"),
        rows=tuple((g.label, g.total, _round(g.average)) for g in figures.approvers),
        bars=_bars(
            [
                (g.label, g.average or 0.0, f"{duration_text(g.average)} ({g.total})")
                for g in figures.approvers
            ]
        ),
    )


def failures_chart(figures: Figures) -> Chart:
    return Chart(
        slug="failures",
        title="Failures by reason",
        summary=f"{figures.failed} failed sessions, by the reason Jules gave.",
        header=("reason", "sessions"),
        rows=tuple((g.label, g.total) for g in figures.failures),
        bars=_bars([(g.label, g.total, str(g.total)) for g in figures.failures]),
    )


def all_charts(figures: Figures, *, weekly: bool, by_team: bool) -> list[Chart]:
    avg = figures.averages
    charts = [
        overview_chart(figures),
        sessions_chart(figures, weekly),
        _rates(
            "repositories",
            "Success and pull request rate by repository",
            "Completed of finished sessions (completed or failed); sessions with a pull request.",
            figures.repositories,
            "repository",
        ),
        _rates(
            "people",
            "Success rate by person",
            "By who launched the session; sessions started in Jules itself count apart.",
            figures.people,
            "person",
        ),
        _histogram(
            "time-to-plan",
            "Time to a plan",
            f"From creation to the first plan; average {duration_text(avg['seconds_to_plan'])}.",
            figures.histograms["seconds_to_plan"],
        ),
        _histogram(
            "approval-wait",
            "Time waiting for approval",
            "From each plan to its approval, summed per session; "
            f"average {duration_text(avg['seconds_awaiting_approval'])}.",
            figures.histograms["seconds_awaiting_approval"],
        ),
        approvers_chart(figures),
        _histogram(
            "answer-wait",
            "Time waiting for answers",
            "From the agent's messages to the replies, summed per session; "
            f"average {duration_text(avg['seconds_awaiting_answers'])}.",
            figures.histograms["seconds_awaiting_answers"],
        ),
        _histogram(
            "duration",
            "Duration",
            "From creation to the end, for completed and failed sessions; "
            f"average {duration_text(avg['seconds_duration'])}.",
            figures.histograms["seconds_duration"],
        ),
        failures_chart(figures),
        _histogram(
            "plans",
            "Plans generated per session",
            f"{figures.regenerated} sessions had their plan regenerated (more than one plan).",
            figures.histograms["plans_generated"],
        ),
        _histogram(
            "change-size",
            "Change sizes",
            "Lines added and removed by completed sessions' changes.",
            figures.histograms["change_size"],
        ),
    ]
    if by_team:
        charts.append(
            _rates("teams", "Success rate by team", "Each of your teams.", figures.teams, "team")
        )
    return charts


CHART_SLUGS = frozenset(
    {
        "overview",
        "sessions",
        "repositories",
        "people",
        "time-to-plan",
        "approval-wait",
        "approvers",
        "answer-wait",
        "duration",
        "failures",
        "plans",
        "change-size",
        "teams",
    }
)
