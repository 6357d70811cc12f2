"""Forms of the connection pages.

API key fields are password inputs that never render their value back, so a key typed
into a form that failed validation is not echoed into the page. Team pages take no
address: connections go to the operator's Jules address (docs/reliability.md#jules-address).
"""

from __future__ import annotations

from django import forms


def _key_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Create it in the Jules web app's settings. It is encrypted at rest and "
        "never shown again.",
    )


def _label_field() -> forms.CharField:
    return forms.CharField(
        max_length=100, label="Label", help_text="Whose Jules account this is, in words."
    )


class ConnectionAddForm(forms.Form):
    label = _label_field()
    api_key = _key_field("API key")


class ConnectionRenameForm(forms.Form):
    label = _label_field()


class RotateKeyForm(forms.Form):
    api_key = _key_field("New API key")
