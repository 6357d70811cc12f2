"""Forms of the template and schedule pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from sessions_app.launch_templates import timing
from sessions_app.launch_templates.services import TemplateContent
from sessions_app.launch_templates.variables import MAX_VALUE_LENGTH
from sessions_app.models import JulesConnection, Schedule, Team

VAR_PREFIX = "var_"


class TemplateForm(forms.Form):
    team = forms.ModelChoiceField(
        queryset=Team.objects.none(),
        empty_label=None,
        error_messages={"invalid_choice": "Pick one of the teams you may add templates to."},
    )
    name = forms.CharField(max_length=120, error_messages={"required": "Name the template."})
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        max_length=20000,
        error_messages={"required": "Say what Jules should do."},
        help_text="Write {{ name }} for what the launcher fills in; {{ repo }}, {{ branch }} "
        "and {{ date }} are filled for each session.",
    )
    title_pattern = forms.CharField(max_length=200, required=False, label="Title pattern")
    repositories = forms.MultipleChoiceField(
        required=False,
        label="Repositories",
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text="None: a repoless session. One: the default repository. Several: one session "
        "each when run across repositories.",
    )
    branch = forms.CharField(
        max_length=250,
        required=False,
        label="Branch (optional; each repository's default otherwise)",
    )
    require_plan_approval = forms.BooleanField(required=False, initial=True)
    auto_create_pr = forms.BooleanField(required=False, label="Create a pull request automatically")

    def __init__(
        self,
        *args: Any,
        teams: QuerySet[Team],
        sources: list[tuple[int, str, str]],
        fixed_team: Team | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams  # type: ignore[attr-defined]
        self.fixed_team = fixed_team
        if fixed_team is not None:
            del self.fields["team"]
        several = len({team_id for team_id, _, _ in sources}) > 1
        names = {t.pk: t.name for t in teams} if several else {}
        self.sources = sources
        self.fields["repositories"].choices = [  # type: ignore[attr-defined]
            (name, f"{label} ({names[team_id]})" if several and team_id in names else label)
            for team_id, name, label in sources
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        team = self.fixed_team or data.get("team")
        chosen = data.get("repositories") or []
        if team is not None and chosen:
            mine = {name for team_id, name, _ in self.sources if team_id == team.pk}
            if any(name not in mine for name in chosen):
                self.add_error(
                    "repositories", "Pick repositories that the team's connections synced."
                )
        for name in ("name", "prompt", "title_pattern", "branch"):
            if "\x00" in str(data.get(name, "")):
                self.add_error(name, "Remove the null character.")
        return data

    def content(self) -> TemplateContent:
        data = self.cleaned_data
        return TemplateContent(
            name=data["name"].strip(),
            prompt=data["prompt"].strip(),
            title_pattern=data.get("title_pattern", "").strip(),
            repositories=tuple(data.get("repositories") or ()),
            branch=data.get("branch", "").strip(),
            require_plan_approval=bool(data.get("require_plan_approval")),
            auto_create_pr=bool(data.get("auto_create_pr")),
        )


class VariablesMixin:
    """One text field per template variable, named `var_<name>`."""

    fields: dict[str, forms.Field]

    def add_variables(self, names: list[str], required: bool = True) -> None:
        self.variable_names = names
        for name in names:
            self.fields[VAR_PREFIX + name] = forms.CharField(
                label=name,
                max_length=MAX_VALUE_LENGTH,
                required=required,
                error_messages={"required": f"Fill in {name}."},
            )

    def variable_values(self, data: dict[str, Any]) -> dict[str, str]:
        return {name: str(data.get(VAR_PREFIX + name, "")).strip() for name in self.variable_names}

    def variable_fields(self) -> list[forms.BoundField]:
        return [self[VAR_PREFIX + name] for name in self.variable_names]  # type: ignore[index]


class TemplateLaunchForm(VariablesMixin, forms.Form):
    connection = forms.ModelChoiceField(
        queryset=JulesConnection.objects.none(),
        empty_label=None,
        error_messages={"invalid_choice": "Pick one of the connections you may launch from."},
    )
    repositories = forms.MultipleChoiceField(
        required=False, label="Repositories", widget=forms.CheckboxSelectMultiple
    )
    # As on the launch page: the queue may start each session on any of the team's
    # connections that has its repository, whichever has room first (docs/launch-queue.md).
    any_connection = forms.BooleanField(required=False)

    def __init__(
        self,
        *args: Any,
        connections: QuerySet[JulesConnection],
        variables: list[str],
        repositories: list[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["connection"].queryset = connections  # type: ignore[attr-defined]
        self.fields["repositories"].choices = repositories  # type: ignore[attr-defined]
        self.add_variables(variables)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.fields["repositories"].choices and not data.get("repositories"):  # type: ignore[attr-defined]
            self.add_error("repositories", "Pick at least one repository.")
        return data


class ScheduleForm(VariablesMixin, forms.Form):
    name = forms.CharField(max_length=120, error_messages={"required": "Name the schedule."})
    connection = forms.ModelChoiceField(
        queryset=JulesConnection.objects.none(),
        empty_label=None,
        error_messages={"invalid_choice": "Pick one of the team's enabled connections."},
    )
    cadence = forms.ChoiceField(choices=Schedule.Cadence.choices, initial="daily")
    time_of_day = forms.TimeField(required=False, label="At", initial="09:00")
    weekday = forms.TypedChoiceField(
        choices=timing.WEEKDAYS, coerce=int, required=False, label="On", initial=1
    )
    cron = forms.CharField(
        max_length=120,
        required=False,
        label="Cron expression",
        help_text="Five fields: minute hour day-of-month month day-of-week, e.g. 30 9 * * 1-5.",
    )
    timezone = forms.CharField(max_length=64, initial="UTC", label="Time zone")
    skip_if_running = forms.BooleanField(
        required=False, initial=True, label="Skip a run while the previous run's session is active"
    )

    def __init__(
        self,
        *args: Any,
        connections: QuerySet[JulesConnection],
        variables: list[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["connection"].queryset = connections  # type: ignore[attr-defined]
        self.add_variables(variables)

    def clean_timezone(self) -> str:
        name = str(self.cleaned_data.get("timezone", "")).strip()
        try:
            timing.zone(name)
        except timing.BadSchedule as exc:
            raise forms.ValidationError(str(exc)) from exc
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "\x00" in str(data.get("name", "")):
            self.add_error("name", "Remove the null character.")
        cadence = data.get("cadence")
        try:
            data["expression"] = timing.cadence_expression(
                str(cadence or ""),
                at=data.get("time_of_day"),
                weekday=data.get("weekday"),
                cron=str(data.get("cron") or ""),
            )
        except timing.BadSchedule as exc:
            field = {"cron": "cron", "weekly": "weekday"}.get(str(cadence), "time_of_day")
            if field == "weekday" and data.get("time_of_day") is None:
                field = "time_of_day"
            self.add_error(field, str(exc))
        return data
