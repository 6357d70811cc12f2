"""Forms of the connection pages.

API key fields are password inputs that never render their value back, so a key typed
into a form that failed validation is not echoed into the page.
"""

from __future__ import annotations

from django import forms

from jules.client import DEFAULT_BASE_URL


def _key_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Create it in the Jules web app's settings. It is encrypted at rest and "
        "never shown again.",
    )


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
