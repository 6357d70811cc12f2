"""The operator's connection admin: a write-only key that Jules must accept before it is
saved, and every change through `connections.services` (the same audit entries and status
resets as the team pages). A connection stays in the team it was added to."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from sessions_app.access import ActionNotAllowed
from sessions_app.connections import addresses, services
from sessions_app.models import JulesConnection


class ConnectionForm(forms.ModelForm):
    # Only the addresses the operator allows (docs/reliability.md#jules-address).
    base_url = forms.CharField(
        label="Jules address",
        max_length=300,
        help_text="JULES_API_BASE_URL or one of JULES_ALLOWED_BASE_URLS; nothing else is accepted.",
    )
    session_ids: list[str] = []
    api_key = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        strip=True,
        help_text="Write-only: leave empty to keep the stored key. Jules is asked whether a "
        "new key works before it is saved; it is encrypted at rest.",
    )

    class Meta:
        model = JulesConnection
        fields = ["team", "label", "base_url", "enabled"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            self.fields["base_url"].initial = addresses.default_address()

    def clean_base_url(self) -> str:
        value = str(self.cleaned_data["base_url"]).strip().rstrip("/")
        try:
            addresses.require_allowed(value)
        except addresses.AddressNotAllowed as exc:
            raise forms.ValidationError(str(exc)) from None
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        key = data.get("api_key") or ""
        base_url = data.get("base_url") or self.instance.base_url
        if not self.instance.pk and not key:
            self.add_error("api_key", "A new connection needs an API key.")
            return data
        if self.errors or not base_url:
            return data
        if not key and self.instance.pk and base_url != self.instance.base_url:
            # A new address: the stored key must work there too.
            key = self.instance.get_api_key()
        if key:
            field = "api_key" if data.get("api_key") else "base_url"
            try:
                self.session_ids = services.check_api_key(key, base_url)
                team = data.get("team") or self.instance.team
                services.refuse_same_account(team, key, self.session_ids, exclude=self.instance.pk)
            except ActionNotAllowed as exc:
                self.add_error(field, str(exc))
        return data


@admin.register(JulesConnection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm

    # An error report (DEBUG page, mail to ADMINS) shows the POST data: not the key.
    @method_decorator(sensitive_post_parameters("api_key"))
    def changeform_view(self, *args: Any, **kwargs: Any) -> Any:
        return super().changeform_view(*args, **kwargs)

    list_display = ["label", "team", "enabled", "sync_status", "last_success_at"]
    readonly_fields = [
        "sync_status",
        "last_success_at",
        "last_error",
        "sync_done",
        "sync_total",
        "key_rotated_at",
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Its sessions, outbox and history belong to the team: moving it would split them.
        fields = list(super().get_readonly_fields(request, obj))
        return ["team", *fields] if obj is not None else fields

    def save_model(
        self, request: HttpRequest, obj: JulesConnection, form: Any, change: bool
    ) -> None:
        key = form.cleaned_data.get("api_key") or ""
        common: dict[str, Any] = {"actor": request.user, "operator": True, "request": request}
        if not change:
            created = services.connection_add(
                team=obj.team,
                label=obj.label,
                api_key=key,
                base_url=obj.base_url,
                enabled=obj.enabled,
                key_checked=True,
                session_ids=getattr(form, "session_ids", []),
                **common,
            )
            obj.pk = created.pk
            obj._state.adding = False
            obj.refresh_from_db()
            return
        stored = JulesConnection.objects.get(pk=obj.pk)
        changes = {
            name: getattr(obj, name)
            for name in ("label", "base_url")
            if getattr(obj, name) != getattr(stored, name)
        }
        if changes:
            services.connection_update(connection=stored, changes=changes, **common)
        if key:
            services.connection_rotate_key(
                connection=stored,
                api_key=key,
                key_checked=True,
                session_ids=getattr(form, "session_ids", []),
                **common,
            )
        if obj.enabled != stored.enabled:
            services.connection_set_enabled(connection=stored, enabled=obj.enabled, **common)
        obj.refresh_from_db()

    def delete_model(self, request: HttpRequest, obj: JulesConnection) -> None:
        services.connection_delete(
            actor=request.user, connection=obj, operator=True, request=request
        )

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            services.connection_delete(
                actor=request.user, connection=obj, operator=True, request=request
            )
