"""Forms of the session pages: the list's filters and the launch form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.http import QueryDict

from sessions_app.models import JulesConnection, SessionState, Source

ARCHIVED_CHOICES = [
    ("", "Hide archived"),
    ("include", "Show archived too"),
    ("only", "Only archived"),
]
# The "launched by" filter's value for sessions started in Jules itself, not the portal.
OUTSIDE_PORTAL = "none"
# The largest id the database holds; a larger number in a URL is a bad value, not a 500.
MAX_ID = 2**63 - 1
# The state filter's value for sessions deleted on Jules, which count apart from their
# last state.
DELETED = "DELETED"
STATE_CHOICES = [*SessionState.choices, (DELETED, "Deleted on Jules")]
STATE_VALUES = frozenset(value for value, _ in STATE_CHOICES)


def parse_id(value: object) -> int | None:
    """A database id (or 0) written in ASCII digits, or None.

    `str.isdigit` accepts "²" and other digits that `int` refuses or reads differently,
    and `int` refuses more than 4,300 digits: both used to answer 500.
    """
    text = str(value or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ID)):
        return None
    number = int(text)
    return number if number <= MAX_ID else None


class IdField(forms.IntegerField):
    """An id in a URL: ASCII digits within the database's range, or a clear error."""

    default_error_messages = {"invalid": "Expected an id number."}

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        number = parse_id(value)
        if number is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return number


class SessionFilterForm(forms.Form):
    """The sessions list's GET filters.

    A bad value (an unknown state, a date that is not one, a non-numeric id) never makes
    the page fail: the field counts as unset and `problems` says, in words, what was
    ignored, so that a hand-edited or stale link still shows a useful list.
    """

    q = forms.CharField(required=False, max_length=200, label="Search title and prompt")
    state = forms.MultipleChoiceField(choices=STATE_CHOICES, required=False)
    attention = forms.BooleanField(required=False, label="Needs attention")
    repo = forms.CharField(required=False, max_length=300, label="Repository")
    connection = IdField(required=False)
    launched_by = forms.CharField(required=False, max_length=20, label="Launched by")
    archived = forms.ChoiceField(choices=ARCHIVED_CHOICES, required=False)
    created_after = forms.DateField(required=False, label="Created from")
    created_before = forms.DateField(required=False, label="Created until")

    def __init__(self, data: QueryDict, **kwargs: Any) -> None:
        data = data.copy()
        self.unknown_states = [
            value for value in data.getlist("state") if value not in STATE_VALUES
        ]
        # Unknown states are dropped one by one, so that a link with one stale state
        # still filters by the others.
        data.setlist("state", [v for v in data.getlist("state") if v in STATE_VALUES])
        # Filters valid in form but naming nothing the user can see (set by the view).
        self.ignored: list[str] = []
        super().__init__(data, **kwargs)

    def clean_launched_by(self) -> str:
        value = (self.cleaned_data.get("launched_by") or "").strip()
        if value and value != OUTSIDE_PORTAL and parse_id(value) is None:
            raise forms.ValidationError("Pick a person from the list.")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        after, before = data.get("created_after"), data.get("created_before")
        if after and before and after > before:
            self.add_error("created_before", "The end date is before the start date.")
        return data

    def cleaned_or_empty(self) -> dict[str, Any]:
        """The valid filters; a field with a bad value counts as unset."""
        self.is_valid()
        data = dict(getattr(self, "cleaned_data", {}))
        for name in self.errors:
            data.pop(name, None)
        return data

    @property
    def problems(self) -> list[str]:
        """What was ignored, in words, for the notice above the results."""
        self.is_valid()
        notes = []
        if self.unknown_states:
            shown = ", ".join(s[:40] for s in self.unknown_states[:3])
            notes.append(f"Ignored unknown state {shown}.")
        for name, errors in self.errors.items():
            label = self.fields[name].label or name.replace("_", " ").capitalize()
            notes.append(f"Ignored the {label.lower()} filter: {' '.join(str(e) for e in errors)}")
        return notes + self.ignored

    def ignore(self, data: dict[str, Any], name: str, why: str) -> None:
        """Drop a filter that names nothing the user can see, and say so."""
        data.pop(name, None)
        label = self.fields[name].label or name.replace("_", " ").capitalize()
        self.ignored.append(f"Ignored the {label.lower()} filter: {why}")


class LaunchForm(forms.Form):
    """Launch a session from one of the user's connections.

    `source` holds the id of one of the connection's synced repositories, or nothing for
    a repoless session; `branch` must be one of that repository's branches when the sync
    knows them, and defaults to its default branch.
    """

    connection = forms.ModelChoiceField(
        queryset=JulesConnection.objects.none(),
        empty_label=None,
        error_messages={"invalid_choice": "Pick one of the connections you may launch from."},
    )
    source = forms.CharField(required=False, label="Repository")
    branch = forms.CharField(required=False, max_length=250)
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        max_length=20000,
        error_messages={"required": "Say what Jules should do."},
    )
    title = forms.CharField(required=False, max_length=200, label="Title (optional)")
    require_plan_approval = forms.BooleanField(required=False, initial=True)
    auto_create_pr = forms.BooleanField(required=False, label="Create a pull request automatically")
    # The launch queue (docs/launch-queue.md): where it may start, and what it runs again.
    any_connection = forms.BooleanField(required=False)
    rerun_of = IdField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, connections: QuerySet[JulesConnection], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["connection"].queryset = connections  # type: ignore[attr-defined]
        self.source_obj: Source | None = None

    def clean_prompt(self) -> str:
        prompt = str(self.cleaned_data.get("prompt", "")).strip()
        if not prompt:
            raise forms.ValidationError("Say what Jules should do.")
        return prompt

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        connection = data.get("connection")
        raw = (data.get("source") or "").strip()
        data["branch"] = (data.get("branch") or "").strip()
        if connection is None or not raw:
            data["source"] = None
            data["branch"] = ""
            return data
        source_id = parse_id(raw)
        source = (
            Source.objects.filter(connection=connection, pk=source_id).first()
            if source_id is not None
            else None
        )
        if source is None:
            self.add_error("source", "Pick a repository this connection has synced.")
            return data
        self.source_obj = source
        data["source"] = source
        branch = data["branch"] or source.default_branch
        if not branch:
            self.add_error("branch", "Name the branch Jules should start from.")
        elif source.branches and branch not in source.branches:
            self.add_error("branch", f"{source.full_name} has no branch {branch!r}.")
        data["branch"] = branch
        return data
