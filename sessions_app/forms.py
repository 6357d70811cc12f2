"""Forms: the list's filters and the launch form."""

from __future__ import annotations

from typing import Any

from django import forms

from sessions_app.models import JulesConnection, SessionState, Source


class SessionFilterForm(forms.Form):
    """The sessions list's GET filters; invalid values are dropped, never a 500."""

    state = forms.MultipleChoiceField(choices=SessionState.choices, required=False)
    repo = forms.CharField(required=False, max_length=300)
    connection = forms.IntegerField(required=False, min_value=1)
    launched_by = forms.CharField(required=False, max_length=150)
    attention = forms.BooleanField(required=False)
    archived = forms.ChoiceField(
        choices=[("", "Hide archived"), ("include", "Include archived"), ("only", "Only archived")],
        required=False,
    )
    created_after = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    created_before = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, max_length=200, label="Search")

    def cleaned_or_empty(self) -> dict[str, Any]:
        """The valid filters; a field with a bad value counts as unset."""
        self.is_valid()
        data = dict(getattr(self, "cleaned_data", {}))
        for name in self.errors:
            data.pop(name, None)
        return data


class LaunchForm(forms.Form):
    connection = forms.ModelChoiceField(queryset=JulesConnection.objects.none(), empty_label=None)
    source = forms.CharField(required=False, label="Repository", max_length=300)
    branch = forms.CharField(required=False, max_length=250)
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        max_length=20000,
        error_messages={"required": "Say what Jules should do."},
    )
    title = forms.CharField(required=False, max_length=200)
    require_plan_approval = forms.BooleanField(required=False, initial=True)
    auto_create_pr = forms.BooleanField(required=False, label="Create a pull request automatically")

    def __init__(self, *args: Any, connections: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["connection"].queryset = connections  # type: ignore[attr-defined]

    def clean_prompt(self) -> str:
        prompt = str(self.cleaned_data.get("prompt", "")).strip()
        if not prompt:
            raise forms.ValidationError("Say what Jules should do.")
        return prompt

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        connection = data.get("connection")
        source = (data.get("source") or "").strip()
        if connection is not None and source:
            found = Source.objects.filter(connection=connection, name=source).first()
            if found is None:
                self.add_error("source", "Pick a repository this connection has synced.")
            else:
                branch = (data.get("branch") or "").strip() or found.default_branch
                if found.branches and branch not in found.branches:
                    self.add_error("branch", f"{found.full_name} has no branch {branch!r}.")
                data["branch"] = branch
        return data
