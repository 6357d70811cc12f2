"""Forms of the team pages: invitations, roles and the approval policy."""

from __future__ import annotations

from django import forms

from sessions_app.models import Role


class InviteForm(forms.Form):
    # By email, with a link that works once (docs/sign-in.md); the operator adds accounts
    # directly in the admin.
    email = forms.EmailField(
        max_length=254,
        label="Email",
        help_text="They get a link by email and join when they accept it.",
    )
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class PolicyForm(forms.Form):
    require_plan_approval = forms.BooleanField(
        required=False,
        label="Sessions launched here always wait for plan approval",
    )
    forbid_self_approval = forms.BooleanField(
        required=False,
        label="The person who launched a session may not approve its plan",
    )
