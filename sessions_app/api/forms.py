"""The token pages' form."""

from __future__ import annotations

from django import forms

from sessions_app.models import Role, Scope


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Pick at least one scope."},
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires (optional)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


class ServiceTokenForm(TokenForm):
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER, label="Acts in the team as")
