"""The notifications pages: the inbox and bell, preferences, one-click unsubscribe, and the
team channels with their delivery logs (admins only; outsiders get a 404)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sessions_app import access
from sessions_app.access import ActionNotAllowed, RoleRequired
from sessions_app.models import (
    Channel,
    Delivery,
    DigestPreference,
    Endpoint,
    EventKind,
    NotificationPreference,
    Role,
    Team,
    TeamNotificationSettings,
)
from sessions_app.notifications import recipients, selectors, services
from sessions_app.notifications.channels.email import EVERY_KIND, read_unsubscribe_token
from sessions_app.notifications.forms import EndpointForm, TeamNotificationSettingsForm
from sessions_app.teams.selectors import get_team_for_user, teams_for_user
from sessions_app.web.request import AuthedRequest

LIST_PAGE = "sessions_app/notifications/list.html"
CHANNELS_PAGE = "sessions_app/notifications/channels.html"
ENDPOINT_PAGE = "sessions_app/notifications/endpoint_detail.html"


# --- the inbox and the bell ---------------------------------------------------------------


@require_GET
def notification_list(request: AuthedRequest) -> HttpResponse:
    items = list(selectors.notifications_for_user(request.user)[:100])
    unread = sum(1 for n in items if n.read_at is None)
    return render(
        request, LIST_PAGE, {"notifications": items, "unread": unread, "nav_active": "alerts"}
    )


@require_GET
def notification_count(request: AuthedRequest) -> JsonResponse:
    """What the bell polls: the unread count and the newest unread, for browser popups."""
    unread = selectors.notifications_for_user(request.user).filter(read_at__isnull=True)
    latest = [
        {"id": n.pk, "title": n.event.title, "body": n.event.body[:200], "url": n.event.link}
        for n in unread[:5]
    ]
    return JsonResponse({"unread": unread.count(), "latest": latest})


@require_POST
def notification_read(request: AuthedRequest, pk: int) -> HttpResponse:
    notification = get_object_or_404(selectors.notifications_for_user(request.user), pk=pk)
    services.notification_mark_read(user=request.user, notification_id=notification.pk)
    return redirect("sessions_app:notification-list")


@require_POST
def notifications_read_all(request: AuthedRequest) -> HttpResponse:
    count = services.notifications_mark_all_read(user=request.user)
    messages.success(request, f"Marked {count} notification{'s' if count != 1 else ''} read.")
    return redirect("sessions_app:notification-list")


# --- preferences --------------------------------------------------------------------------


def _preference_rows(user: Any) -> list[dict[str, Any]]:
    """Per team and kind: whether each channel is on for the person now."""
    prefs = {
        (p.team_id, p.kind, p.channel): p.enabled
        for p in NotificationPreference.objects.filter(user=user)
    }
    memberships = access.memberships_for_user(user)
    team_settings = {s.team_id: s for s in TeamNotificationSettings.objects.all()}
    rows = []
    for team in teams_for_user(user):
        role = memberships[team.pk].role
        email_default = getattr(team_settings.get(team.pk), "email_by_default", True)
        for kind in EventKind:
            default = recipients.is_default_recipient(kind, role, user.pk, user.pk)
            rows.append(
                {
                    "team": team,
                    "kind": kind,
                    "portal": prefs.get((team.pk, kind.value, Channel.PORTAL), default),
                    "email": prefs.get(
                        (team.pk, kind.value, Channel.EMAIL), default and email_default
                    ),
                }
            )
    return rows


def _digest_rows(user: Any) -> list[dict[str, Any]]:
    chosen = dict(DigestPreference.objects.filter(user=user).values_list("team_id", "frequency"))
    return [
        {"team": team, "frequency": chosen.get(team.pk, DigestPreference.Frequency.IMMEDIATE)}
        for team in teams_for_user(user)
    ]


def _preferences_page(request: AuthedRequest, status: int = 200) -> HttpResponse:
    return render(
        request,
        "sessions_app/notifications/preferences.html",
        {
            "rows": _preference_rows(request.user),
            "digest_rows": _digest_rows(request.user),
            "frequencies": DigestPreference.Frequency.choices,
            "has_email": bool(request.user.email),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def notification_preferences(request: AuthedRequest) -> HttpResponse:
    if request.method == "POST":
        ticked = set(request.POST.getlist("on"))
        teams = list(teams_for_user(request.user))
        choices = {
            team.pk: request.POST.get(f"digest:{team.pk}", DigestPreference.Frequency.IMMEDIATE)
            for team in teams
        }
        if any(c not in DigestPreference.Frequency.values for c in choices.values()):
            messages.error(request, "Choose how often email comes from the list, please.")
            return _preferences_page(request, status=400)
        for team_pk, frequency in choices.items():
            services.digest_set(user=request.user, team_id=team_pk, frequency=frequency)
        for team in teams:
            for kind in EventKind:
                for channel in Channel.values:
                    services.preference_set(
                        user=request.user,
                        team_id=team.pk,
                        kind=kind.value,
                        channel=channel,
                        enabled=f"{team.pk}:{kind.value}:{channel}" in ticked,
                    )
        messages.success(request, "Your notification settings are saved.")
        return redirect("sessions_app:notification-preferences")
    return _preferences_page(request)


@login_not_required
@csrf_exempt  # RFC 8058: mail clients POST without a session; the signed token is the check.
@require_http_methods(["GET", "POST"])
def notification_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    data = read_unsubscribe_token(token)
    template = "sessions_app/notifications/unsubscribe.html"
    if data is None:
        return render(request, template, {"invalid": True}, status=400)
    # A digest's link stops every kind (EVERY_KIND); an event's, its own kind.
    every = data["k"] == EVERY_KIND
    kind = EventKind(data["k"]) if data["k"] in EventKind.values else None
    team = Team.objects.filter(pk=data["t"]).first()
    if (kind is None and not every) or team is None:
        return render(request, template, {"invalid": True}, status=400)
    done = False
    if request.method == "POST":
        for each in list(EventKind) if every or kind is None else [kind]:
            NotificationPreference.objects.update_or_create(
                user_id=data["u"],
                team=team,
                kind=each,
                channel=Channel.EMAIL,
                defaults={"enabled": False},
            )
        done = True
    return render(request, template, {"kind": kind, "every": every, "team": team, "done": done})


# --- team channels ------------------------------------------------------------------------


def _team_for_admin(request: AuthedRequest, slug: str) -> Team:
    try:
        return get_team_for_user(request.user, slug, Role.ADMIN)
    except RoleRequired as exc:
        raise PermissionDenied("Only the team's admins manage its channels.") from exc


def _endpoint_for_admin(request: AuthedRequest, pk: int) -> Endpoint:
    try:
        return selectors.get_endpoint_for_user(request.user, pk)
    except RoleRequired as exc:
        raise PermissionDenied("Only the team's admins manage its channels.") from exc


def _channels_context(team: Team, **extra: Any) -> dict[str, Any]:
    team_settings = TeamNotificationSettings.objects.filter(team=team).first()
    return {
        "team": team,
        "endpoints": Endpoint.objects.filter(team=team).order_by("label"),
        "form": EndpointForm(),
        "settings_form": TeamNotificationSettingsForm(
            instance=team_settings or TeamNotificationSettings(team=team)
        ),
        "nav_active": "teams",
        **extra,
    }


@require_http_methods(["GET", "POST"])
def team_channels(request: AuthedRequest, slug: str) -> HttpResponse:
    team = _team_for_admin(request, slug)
    if request.method == "GET":
        return render(request, CHANNELS_PAGE, _channels_context(team))
    form = EndpointForm(request.POST)
    if not form.is_valid():
        return render(request, CHANNELS_PAGE, _channels_context(team, form=form), status=400)
    if Endpoint.objects.filter(team=team, label=form.cleaned_data["label"].strip()).exists():
        form.add_error("label", "The team has a channel of that name already.")
        return render(request, CHANNELS_PAGE, _channels_context(team, form=form), status=400)
    endpoint, secret = services.endpoint_create(
        user=request.user,
        team=team,
        kind=form.cleaned_data["kind"],
        label=form.cleaned_data["label"],
        url=form.cleaned_data["url"],
        event_kinds=form.cleaned_data["event_kinds"],
        request=request,
    )
    messages.success(request, f"Added {endpoint.label}.")
    # The secret is shown once, on this answer, and never again.
    return render(request, CHANNELS_PAGE, _channels_context(team, new_secret=secret, new=endpoint))


@require_POST
def team_notification_settings(request: AuthedRequest, slug: str) -> HttpResponse:
    team = _team_for_admin(request, slug)
    instance = TeamNotificationSettings.objects.filter(team=team).first()
    form = TeamNotificationSettingsForm(
        request.POST, instance=instance or TeamNotificationSettings(team=team)
    )
    if not form.is_valid():
        return render(
            request, CHANNELS_PAGE, _channels_context(team, settings_form=form), status=400
        )
    services.team_settings_save(
        user=request.user,
        team=team,
        values={f: form.cleaned_data[f] for f in form.Meta.fields},
        request=request,
    )
    messages.success(request, "The team's notification settings are saved.")
    return redirect("sessions_app:team-channels", slug=team.slug)


@require_GET
def endpoint_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint_for_admin(request, pk)
    return render(
        request,
        ENDPOINT_PAGE,
        {
            "endpoint": endpoint,
            "deliveries": selectors.delivery_log(endpoint),
            "nav_active": "teams",
        },
    )


@require_POST
def endpoint_rotate(request: AuthedRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint_for_admin(request, pk)
    try:
        secret = services.endpoint_rotate_secret(user=request.user, endpoint=endpoint)
    except ActionNotAllowed as exc:
        messages.error(request, str(exc))
        return redirect("sessions_app:endpoint-detail", pk=endpoint.pk)
    endpoint.refresh_from_db()
    return render(
        request,
        ENDPOINT_PAGE,
        {
            "endpoint": endpoint,
            "deliveries": selectors.delivery_log(endpoint),
            "new_secret": secret,
            "nav_active": "teams",
        },
    )


@require_POST
def endpoint_enabled(request: AuthedRequest, pk: int) -> HttpResponse:
    endpoint = _endpoint_for_admin(request, pk)
    enabled = request.POST.get("enabled") == "1"
    services.endpoint_set_enabled(
        user=request.user, endpoint=endpoint, enabled=enabled, request=request
    )
    messages.success(request, f"{endpoint.label} is {'enabled' if enabled else 'disabled'}.")
    return redirect("sessions_app:endpoint-detail", pk=endpoint.pk)


@require_POST
def delivery_redeliver(request: AuthedRequest, pk: int, delivery_id: Any) -> HttpResponse:
    endpoint = _endpoint_for_admin(request, pk)
    delivery = get_object_or_404(
        Delivery.objects.select_related("endpoint", "event"), pk=delivery_id, endpoint=endpoint
    )
    try:
        services.delivery_redeliver(user=request.user, delivery=delivery, request=request)
    except ActionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Sending it again, with the same webhook id.")
    return redirect("sessions_app:endpoint-detail", pk=endpoint.pk)
