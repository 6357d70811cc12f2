from __future__ import annotations

from django.apps import AppConfig


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Jules sessions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from sessions_app.runtime.derived import fill_after_migrate

        # Sessions cached before search and analytics existed get their rows.
        post_migrate.connect(fill_after_migrate, sender=self, dispatch_uid="fill-derived-rows")
        # Registers the system checks and the sign-in audit signal handlers.
        from sessions_app.audit import signals  # noqa: F401
        from sessions_app.connections import checks  # noqa: F401
        from sessions_app.identity import checks as identity_checks  # noqa: F401
