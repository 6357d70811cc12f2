"""What the template and schedule pages share: finding the object, refusing a page."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect
from django_htmx.http import HttpResponseClientRedirect

from sessions_app import access
from sessions_app.launch_templates import selectors
from sessions_app.models import LaunchTemplate, TemplateLaunch
from sessions_app.web.request import AuthedRequest

DIR = "launch_templates"


def template_for(request: AuthedRequest, pk: int) -> tuple[LaunchTemplate, str]:
    """The template and the user's role in its team; 404 for outsiders."""
    template = selectors.get_template_for_user(request.user, pk)
    return template, access.require_in_team(request.user, template.team_id)


def require_page(decision: access.Decision) -> None:
    if not decision:
        raise PermissionDenied(decision.reason)


def done(request: AuthedRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def launch_open(launch: TemplateLaunch) -> bool:
    """Whether the launch is still on its way to Jules."""
    return launch.action is not None and launch.action.is_open
