"""Forms of the notifications pages: team channels and the team's notification settings."""

from __future__ import annotations

from django import forms

from sessions_app.models import Endpoint, EventKind, TeamNotificationSettings
from sessions_app.notifications.channels import DeliveryError, http


class EndpointForm(forms.Form):
    kind = forms.ChoiceField(choices=Endpoint.Kind.choices, label="Kind")
    label = forms.CharField(max_length=100, label="Name")
    url = forms.URLField(max_length=1000, label="Webhook URL", assume_scheme="https")
    event_kinds = forms.MultipleChoiceField(
        choices=EventKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Event kinds (none ticked: every kind)",
    )

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        try:
            http.check_destination(url)
        except DeliveryError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return url


class TeamNotificationSettingsForm(forms.ModelForm):
    class Meta:
        model = TeamNotificationSettings
        fields = [
            "stalled_after_minutes",
            "approval_target_minutes",
            "reminder_minutes",
            "email_by_default",
        ]
        labels = {
            "stalled_after_minutes": "A session in progress is stalled after (minutes)",
            "approval_target_minutes": "A plan's approval is overdue after (minutes)",
            "reminder_minutes": "Remind at most every (minutes)",
            "email_by_default": "Email members by default",
        }
        widgets = {
            name: forms.NumberInput(attrs={"min": 1, "max": 10080})
            for name in ("stalled_after_minutes", "approval_target_minutes", "reminder_minutes")
        }

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        for name in ("stalled_after_minutes", "approval_target_minutes", "reminder_minutes"):
            value = data.get(name)
            if isinstance(value, int) and not 1 <= value <= 10080:
                self.add_error(name, "Between 1 minute and a week, please.")
        return data
