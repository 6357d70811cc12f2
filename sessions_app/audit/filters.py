"""The audit page's filters: a GET form, and the scoped query it selects.

Invalid values are dropped rather than answered with an error, so an edited URL never
breaks the page; the results are always within the user's teams (see the selector).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from sessions_app.audit.actions import AuditAction, filter_choices
from sessions_app.audit.selectors import audit_entries_for_user
from sessions_app.models import AuditEntry, OutboxAction, Session
from sessions_app.sessions.forms import MAX_ID
from sessions_app.teams.selectors import teams_for_user

ACTIONS = filter_choices()
ACTION_LABELS = dict(ACTIONS)
EDGE_FIRST = dt.date.min + dt.timedelta(days=1)
EDGE_LAST = dt.date.max - dt.timedelta(days=1)


class AuditFilterForm(forms.Form):
    team = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    person = forms.CharField(required=False, max_length=150, label="Person (username)")
    action = forms.ChoiceField(choices=[("", "Any action"), *ACTIONS], required=False)
    session = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, label="Session number"
    )
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [  # type: ignore[attr-defined]
            ("", "All my teams"),
            *((team.pk, team.name) for team in teams_for_user(user)),
        ]

    def cleaned_or_empty(self) -> dict[str, Any]:
        """The valid filters; a field with a bad value counts as unset (`problems` says
        which, and an export refuses to run without it)."""
        self.is_valid()
        data = dict(getattr(self, "cleaned_data", {}))
        for name in self.errors:
            data.pop(name, None)
        return data

    @property
    def problems(self) -> list[str]:
        """Each ignored filter, named, with the value it had."""
        self.is_valid()
        notes = []
        for name, errors in self.errors.items():
            label = self.fields[name].label or name.replace("_", " ").capitalize()
            value = str(self.data.get(name, ""))[:40]
            notes.append(
                f"Ignored the {label.lower()} filter ({value}): {' '.join(str(e) for e in errors)}"
            )
        return notes


LAUNCH_WINDOW = dt.timedelta(minutes=1)


def launch_q(session_id: int) -> Q | None:
    """The launch entry of a session: recorded before the session existed, it names the
    connection. It is found by its outbox action's id, within a minute of the action (the
    two are written in one transaction), so the indexed time narrows the search instead of
    a scan of every entry's details. None when the portal did not launch the session."""
    q = None
    launches = OutboxAction.objects.filter(
        session_id=session_id, kind=OutboxAction.Kind.LAUNCH
    ).values_list("pk", "created_at")
    for pk, created_at in launches:
        one = Q(
            action=AuditAction.SESSION_LAUNCH,
            created_at__gte=created_at - LAUNCH_WINDOW,
            created_at__lte=created_at + LAUNCH_WINDOW,
            details__action_id=str(pk),
        )
        q = one if q is None else q | one
    return q


def session_history_q(session_id: int) -> Q:
    """Entries about one session: those naming it, and its launch."""
    q = Q(target_type="session", target_id=str(session_id))
    launch = launch_q(session_id)
    return q if launch is None else q | launch


def session_history_entries(session: Session, limit: int) -> list[AuditEntry]:
    """The newest `limit` entries about the session, in two index-friendly queries (those
    naming it, by the target index; its launch, by time) rather than one OR that a planner
    may answer by walking the whole history. A session has tens of entries, not millions."""
    team = AuditEntry.objects.filter(team_id=session.team_id)
    # No ORDER BY with LIMIT here: with one, a planner may walk the whole history backwards
    # looking for the few rows; without, it reads them from the target index.
    entries = list(team.filter(target_type="session", target_id=str(session.pk)).order_by())
    launch = launch_q(session.pk)
    if launch is not None:
        entries += list(team.filter(launch))
    entries.sort(key=lambda entry: entry.seq, reverse=True)
    return entries[:limit]


def filtered_entries(user: Any, data: dict[str, Any]) -> QuerySet[AuditEntry]:
    entries = audit_entries_for_user(user)
    if data.get("team"):
        entries = entries.filter(team_id=data["team"])
    if data.get("person"):
        entries = entries.filter(actor_label=data["person"].strip())
    action = data.get("action") or ""
    if action.endswith(".*"):
        entries = entries.filter(action__startswith=action[:-1])
    elif action:
        entries = entries.filter(action=action)
    if data.get("session"):
        entries = entries.filter(session_history_q(data["session"]))
    # Dates as ranges of the indexed timestamp (a `__date` lookup would read every row).
    # The calendar's first and last days stand for "no bound" (no time-zone overflow).
    since, until = data.get("since"), data.get("until")
    if since and since > EDGE_FIRST:
        entries = entries.filter(created_at__gte=_day_start(since))
    if until and until < EDGE_LAST:
        entries = entries.filter(created_at__lt=_day_start(until + dt.timedelta(days=1)))
    return entries.order_by("-seq")


def _day_start(day: dt.date) -> dt.datetime:
    """Midnight of `day` in the portal's time zone."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())
