"""Forms of the team pages: members, roles, connections, keys and the approval policy.

API key fields are password inputs that never render their value back, so a key typed
into a form that failed validation is not echoed into the page.
"""

from __future__ import annotations

from django import forms

from jules.client import DEFAULT_BASE_URL
from sessions_app.models import Role


def _key_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Create it in the Jules web app's settings. It is encrypted at rest and "
        "never shown again.",
    )


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150, label="Username")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ConnectionAddForm(forms.Form):
    label = forms.CharField(max_length=100, help_text="Whose Jules account this is, in words.")
    api_key = _key_field("API key")
    base_url = forms.URLField(
        max_length=300,
        initial=DEFAULT_BASE_URL,
        assume_scheme="https",
        label="API address",
        help_text="Leave as it is unless you run the simulator.",
    )


class RotateKeyForm(forms.Form):
    api_key = _key_field("New API key")


class PolicyForm(forms.Form):
    require_plan_approval = forms.BooleanField(
        required=False,
        label="Sessions launched here always wait for plan approval",
    )
    forbid_self_approval = forms.BooleanField(
        required=False,
        label="The person who launched a session may not approve its plan",
    )
