"""The rows of the sessions list: what each one shows (`Row`), and its markup.

A row's cells are one frozen dataclass. The template renders only those cells and the
poll's digest is taken over all of them, so a column added to the row is in both or in
neither. Rows are rendered by Jinja2 (`templates/sessions_app/session_rows.jinja`):
Django's engine spent more on fifty rows than a whole trivial request
(docs/performance.md, "List page").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterable, Sequence

import jinja2
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince

from sessions_app.models import Membership, Role, Session, SessionState
from sessions_app.templatetags.links import web_url
from sessions_app.web.htmx import digest

ROWS_TEMPLATE = "sessions_app/session_rows.jinja"
# The badges' words: the states' own, one shortened to fit the column.
STATE_LABELS = {
    **dict(SessionState.choices),
    SessionState.AWAITING_PLAN_APPROVAL: "Awaiting approval",
}
# A stand-in id, replaced in reversed URLs so that a page reverses each route once.
_ID = 987654321

# Units of a fixed length, as `timesince` names them (it counts months and years by
# the calendar, hence `ago` leaves anything of four weeks or more to it).
_FIXED_UNITS = ((604800, "week"), (86400, "day"), (3600, "hour"), (60, "minute"))


def ago(moment: dt.datetime, now: dt.datetime) -> str:
    """`timesince(moment, now)`, the same text, without its calendar work for the common
    case of less than four weeks (a list page asks it a hundred times)."""
    delta = now - moment
    if delta.days >= 28:
        return timesince(moment, now)
    since = delta.days * 86400 + delta.seconds
    if since <= 0:
        return "0\xa0minutes"
    texts: list[str] = []
    for size, name in _FIXED_UNITS:
        count = since // size
        if count:
            texts.append(f"{count}\xa0{name}{'' if count == 1 else 's'}")
            since -= count * size
        elif texts:
            break
        if len(texts) == 2:
            break
    return ", ".join(texts) if texts else "0\xa0minutes"


def since_text(moment: dt.datetime, now: dt.datetime) -> str:
    """ "3 days ago" (the largest unit only, to fit one line), or "just now" for less
    than a minute and for a clock running ahead of ours ("0 minutes ago" otherwise)."""
    if (now - moment).total_seconds() < 60:
        return "just now"
    return f"{ago(moment, now).split(',')[0]} ago"


@dataclasses.dataclass(frozen=True)
class TimeCell:
    iso: str
    text: str
    local: str

    @classmethod
    def of(cls, moment: dt.datetime | None, now: dt.datetime, zone: dt.tzinfo) -> TimeCell | None:
        if moment is None:
            return None
        local = moment.astimezone(zone)
        return cls(local.isoformat(), since_text(moment, now), local.strftime("%Y-%m-%d %H:%M %Z"))


@dataclasses.dataclass(frozen=True)
class Row:
    """Every cell one row of the list shows, and nothing else."""

    pk: int
    state: str
    state_label: str
    attention: bool
    polls: bool
    archived: bool
    deleted: bool
    title: str
    repo: str
    branch: str
    # "" for a session started outside the portal.
    launcher: str
    created: TimeCell | None
    active: TimeCell | None
    pr_url: str
    selectable: bool
    may_bulk: bool

    @classmethod
    def of(
        cls,
        session: Session,
        *,
        selectable: bool,
        may_bulk: bool,
        now: dt.datetime,
        zone: dt.tzinfo,
    ) -> Row:
        s = session
        return cls(
            pk=s.pk,
            state=s.state,
            state_label=STATE_LABELS.get(s.state, s.state),
            attention=s.needs_attention and not s.deleted_remotely,
            polls=s.can_change,
            archived=s.archived,
            deleted=s.deleted_remotely,
            title=s.display_title,
            repo=s.repo,
            branch=s.starting_branch,
            launcher=s.launched_by.username if s.launched_by_id and s.launched_by else "",
            created=TimeCell.of(s.create_time, now, zone),
            active=TimeCell.of(s.last_activity_at, now, zone),
            pr_url=web_url(s.pr_url),
            selectable=selectable,
            may_bulk=may_bulk,
        )

    @cached_property
    def version(self) -> str:
        """The digest of every cell, "… ago" texts as they read now included."""
        # The generated repr names every field, nested time cells included.
        return digest(repr(self))


def selectable(session: Session, membership: Membership | None, user_id: int | None) -> bool:
    """Whether some bulk action may apply to the session: approvers and admins approve
    (and admins archive) any of the team's sessions; a member archives only their own."""
    if membership is None or not membership.can(Role.MEMBER):
        return False
    return membership.can(Role.APPROVER) or session.launched_by_id == user_id


def selection_depends_on_user(memberships: dict[int, Membership]) -> bool:
    """Whether `selectable` depends on who launched a session, not only on roles."""
    return any(m.can(Role.MEMBER) and not m.can(Role.APPROVER) for m in memberships.values())


def rows_for(
    sessions: Iterable[Session],
    memberships: dict[int, Membership],
    *,
    may_bulk: bool,
    user_id: int | None = None,
) -> list[Row]:
    # One look-up of the time zone for the page, not two a row.
    now, zone = timezone.now(), timezone.get_current_timezone()
    rows = []
    for session in sessions:
        box = selectable(session, memberships.get(session.team_id), user_id)
        rows.append(Row.of(session, selectable=box, may_bulk=may_bulk, now=now, zone=zone))
    return rows


def _url_pattern(name: str) -> str:
    return reverse(name, args=[_ID]).replace(str(_ID), "{}")


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(settings.BASE_DIR / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=settings.DEBUG,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_rows(rows: Sequence[Row], *, oob: bool = False) -> SafeString:
    """The rows' `<tr>` elements; `oob` marks each to replace the row of its id."""
    html = (
        _environment()
        .get_template(ROWS_TEMPLATE)
        .render(rows=rows, detail_url=_url_pattern("sessions_app:session-detail"), oob=oob)
    )
    return mark_safe(html)  # noqa: S308 - an autoescaping template's output.
