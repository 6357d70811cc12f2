"""The caps form of a connection's page (docs/launch-queue.md)."""

from __future__ import annotations

from typing import Any

from django import forms

from sessions_app.launch_queue.services import MAX_CAP
from sessions_app.models import LaunchCaps


class CapsForm(forms.Form):
    tier = forms.ChoiceField(
        choices=LaunchCaps.Tier.choices,
        required=False,
        label="Plan",
        help_text="The account's Jules plan. Unset, the portal learns the caps from Jules' refusals.",
    )
    daily_cap = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_CAP, label="Sessions a day (custom)"
    )
    concurrent_cap = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_CAP, label="Sessions at once (custom)"
    )
    max_in_flight = forms.IntegerField(
        min_value=1,
        max_value=10,
        initial=2,
        label="Creates in flight",
        help_text="More creates at once fail in Jules with a misleading “Could not get source”.",
    )

    @classmethod
    def for_caps(cls, caps: LaunchCaps) -> CapsForm:
        return cls(
            initial={
                "tier": caps.tier,
                "daily_cap": caps.daily_cap,
                "concurrent_cap": caps.concurrent_cap,
                "max_in_flight": caps.max_in_flight,
            }
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("tier") == LaunchCaps.Tier.CUSTOM and not (
            data.get("daily_cap") or data.get("concurrent_cap")
        ):
            self.add_error("daily_cap", "Custom caps need a daily or a concurrent number.")
        return data
