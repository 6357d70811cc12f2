"""Session pages: the list, the detail with its live timeline, actions, and launch.

Every page works as a full page and as an htmx fragment of itself. Permission checks live
here and in the selectors and services, never only in templates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from sessions_app import services
from sessions_app.forms import LaunchForm, SessionFilterForm
from sessions_app.models import (
    Activity,
    JulesConnection,
    Membership,
    OutboxAction,
    Role,
    Session,
    SessionOutput,
    SessionState,
    Source,
)
from sessions_app.models.jules import ATTENTION_STATES
from sessions_app.models.teams import role_at_least
from sessions_app.rendering import parse_diff, render_markdown
from sessions_app.selectors import get_session_for_user, role_in_team, sessions_for_user
from sessions_app.views import AuthedRequest

PAGE_SIZE = 50
LIST_FIELDS = (
    "id",
    "team_id",
    "connection_id",
    "remote_id",
    "title",
    "prompt",
    "state",
    "repo",
    "starting_branch",
    "create_time",
    "update_time",
    "last_activity_at",
    "pr_url",
    "archived",
    "deleted_remotely",
    "launched_by__username",
    "launched_by_id",
    "connection__label",
)


def _filtered(
    request: AuthedRequest,
) -> tuple[QuerySet[Session], dict[str, Any], SessionFilterForm]:
    form = SessionFilterForm(request.GET)
    data = form.cleaned_or_empty()
    qs = sessions_for_user(request.user)
    archived = data.get("archived") or ""
    if archived == "only":
        qs = qs.filter(archived=True)
    elif archived != "include":
        qs = qs.filter(archived=False)
    if data.get("repo"):
        qs = qs.filter(repo=data["repo"])
    if data.get("connection"):
        qs = qs.filter(connection_id=data["connection"])
    if data.get("launched_by"):
        who = data["launched_by"]
        qs = (
            qs.filter(launched_by__isnull=True)
            if who == "-"
            else qs.filter(launched_by__username=who)
        )
    if data.get("created_after"):
        qs = qs.filter(create_time__date__gte=data["created_after"])
    if data.get("created_before"):
        qs = qs.filter(create_time__date__lte=data["created_before"])
    if data.get("q"):
        qs = qs.filter(Q(title__icontains=data["q"]) | Q(prompt__icontains=data["q"]))
    before_state = qs
    if data.get("attention"):
        qs = qs.filter(state__in=list(ATTENTION_STATES))
    if data.get("state"):
        qs = qs.filter(state__in=data["state"])
    return qs, {"before_state": before_state, **data}, form


def _query_without_page(request: AuthedRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@require_GET
def session_list(request: AuthedRequest) -> HttpResponse:
    qs, data, form = _filtered(request)
    if form.errors:
        messages.warning(
            request, "Some filters had values the portal could not read; they were ignored."
        )
    page = Paginator(
        qs.select_related("launched_by", "connection")
        .only(*LIST_FIELDS)
        .order_by("-create_time", "-id"),
        PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    counts = dict(
        data["before_state"]
        .order_by()
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    memberships = Membership.objects.filter(user=request.user)
    may_act = memberships.filter(role__in=[Role.MEMBER, Role.APPROVER, Role.ADMIN]).exists()
    context = {
        "page": page,
        "form": form,
        "state_counts": [
            (value, label, counts.get(value, 0)) for value, label in SessionState.choices
        ],
        "repos": sorted(
            set(
                Source.objects.filter(connection__team__memberships__user=request.user)
                .values_list("owner", "repo")
                .distinct()
            )
        ),
        "connections": JulesConnection.objects.filter(
            team__memberships__user=request.user
        ).select_related("team"),
        "query": _query_without_page(request),
        "may_act": may_act,
        "nav_active": "sessions",
        "now": timezone.now(),
        "has_connection": JulesConnection.objects.filter(
            team__memberships__user=request.user
        ).exists(),
        "broken": JulesConnection.objects.filter(
            team__memberships__user=request.user, sync_status="broken"
        ),
    }
    template = "sessions_app/session_list.html"
    if request.htmx and request.htmx.target == "session-results":
        template += "#results"
    return render(request, template, context)


@require_GET
def session_row(request: AuthedRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk)
    response = render(
        request,
        "sessions_app/session_list.html#row",
        {"session": session, "may_act": True, "now": timezone.now()},
    )
    if not session.can_change:
        # The row is rendered without its trigger and 286 tells htmx to stop polling.
        response.status_code = HttpResponseStopPolling.status_code
    return response


def _detail_context(request: AuthedRequest, session: Session) -> dict[str, Any]:
    role = role_in_team(request.user, session.team_id) or Role.VIEWER
    activities = list(session.activities.order_by("create_time", "id"))
    plan = next((a for a in reversed(activities) if a.kind == "planGenerated"), None)
    progress_after_plan = [
        a
        for a in activities
        if plan
        and a.kind == "progressUpdated"
        and a.create_time
        and plan.create_time
        and a.create_time > plan.create_time
    ]
    # Which step the agent is on: progress updates whose title names a step win; otherwise
    # count progress updates since the plan, one per step, as the simulator and live
    # sessions tend to report them.
    current_step = None
    if plan and plan.plan_steps and session.can_change:
        titles = [s.get("title", "") for s in plan.plan_steps]
        current_step = min(len(progress_after_plan), len(titles) - 1)
        for update in progress_after_plan:
            if update.progress_title in titles:
                current_step = titles.index(update.progress_title)
    can_approve, approve_reason = services.can_approve(request.user, session)
    pending = list(
        OutboxAction.objects.filter(session=session)
        .exclude(status=OutboxAction.Status.DONE, kind=OutboxAction.Kind.MESSAGE)
        .order_by("-created_at")[:10]
    )
    approval = (
        OutboxAction.objects.filter(session=session, kind=OutboxAction.Kind.APPROVE)
        .select_related("actor")
        .order_by("-created_at")
        .first()
    )
    return {
        "session": session,
        "activities": [_decorate(a) for a in activities],
        "plan": plan,
        "current_step": current_step,
        "outputs": list(session.outputs.all()),
        "role": role,
        "can_message": role_at_least(role, Role.MEMBER) and session.accepts_messages,
        "message_reason": (
            "Your role in this team cannot message the agent."
            if not role_at_least(role, Role.MEMBER)
            else ""
            if session.accepts_messages
            else f"A {session.get_state_display().lower()} session does not take messages."
        ),
        "can_approve": can_approve,
        "approve_reason": approve_reason,
        "approval": approval,
        "pending_messages": list(
            OutboxAction.objects.filter(session=session, kind=OutboxAction.Kind.MESSAGE)
            .exclude(status=OutboxAction.Status.DONE)
            .order_by("created_at")
        ),
        "actions": pending,
        "is_admin": role_at_least(role, Role.ADMIN),
        "can_archive": role_at_least(role, Role.APPROVER)
        or (role_at_least(role, Role.MEMBER) and session.launched_by_id == request.user.pk),
        "last_activity_id": activities[-1].pk if activities else 0,
        "nav_active": "sessions",
    }


def _decorate(activity: Activity) -> Activity:
    """Attach rendered markdown and parsed diffs for the template."""
    activity.html = render_markdown(activity.message) if activity.message else ""  # type: ignore[attr-defined]
    for artifact in activity.artifacts:
        if artifact.get("kind") == "changeSet":
            artifact["files"] = parse_diff(artifact.get("patch", ""))
        if artifact.get("kind") == "media":
            mime = artifact.get("mime_type", "")
            artifact["safe_image"] = mime in {"image/png", "image/jpeg", "image/gif", "image/webp"}
    return activity


@require_GET
def session_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk)
    template = "sessions_app/session_detail.html"
    if request.htmx and request.htmx.target == f"session-{session.pk}-header":
        template += "#header"
        if not session.can_change:
            response = render(request, template, _detail_context(request, session))
            response.status_code = HttpResponseStopPolling.status_code
            return response
    return render(request, template, _detail_context(request, session))


@require_GET
def session_activities(request: AuthedRequest, pk: int) -> HttpResponse:
    """New activities after `after` (an activity pk), appended in place while polling."""
    session = get_session_for_user(request.user, pk)
    try:
        after = int(request.GET.get("after", "0"))
    except ValueError:
        after = 0
    new = [
        _decorate(a) for a in session.activities.filter(pk__gt=after).order_by("create_time", "id")
    ]
    context = {
        "session": session,
        "activities": new,
        "last_activity_id": new[-1].pk if new else after,
    }
    response = render(request, "sessions_app/session_detail.html#activity-batch", context)
    if not session.can_change and not new:
        response.status_code = HttpResponseStopPolling.status_code
    return response


def _act(
    request: AuthedRequest, session: Session, done: str, call: Any, **kwargs: Any
) -> HttpResponse:
    try:
        call(user=request.user, session=session, request=request, **kwargs)
        messages.success(request, done)
    except services.ActionNotAllowed as exc:
        messages.error(request, str(exc))
    url = reverse("sessions_app:session-detail", args=[session.pk])
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


@require_POST
def session_approve(request: AuthedRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk)
    return _act(
        request, session, "Plan approved; sending it to Jules.", services.session_approve_plan
    )


@require_POST
def session_message(request: AuthedRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk)
    prompt = request.POST.get("prompt", "")[:20000]
    return _act(
        request, session, "Message queued for Jules.", services.session_send_message, prompt=prompt
    )


@require_POST
def session_archive(request: AuthedRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk)
    if request.POST.get("undo"):
        return _act(request, session, "Session unarchived.", services.session_unarchive)
    return _act(request, session, "Session archived.", services.session_archive)


@require_POST
def session_delete(request: AuthedRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk)
    try:
        services.session_delete(user=request.user, session=session, request=request)
    except services.ActionNotAllowed as exc:
        messages.error(request, str(exc))
        return redirect("sessions_app:session-detail", pk=session.pk)
    messages.success(request, "Deleting the session on Jules.")
    return redirect("sessions_app:session-list")


@require_POST
def session_bulk(request: AuthedRequest) -> HttpResponse:
    action = request.POST.get("action", "")
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()][:200]
    sessions = list(
        sessions_for_user(request.user).filter(pk__in=ids).select_related("team", "connection")
    )
    try:
        result = services.sessions_bulk(
            user=request.user, action=action, sessions=sessions, request=request
        )
    except services.ActionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        if result.done:
            messages.success(request, f"{action.title()}: {len(result.done)} session(s).")
        for session, why in result.refused[:5]:
            messages.warning(request, f"{session.display_title}: {why}")
    back = reverse("sessions_app:session-list") + (
        "?" + request.POST.get("query", "") if request.POST.get("query") else ""
    )
    return HttpResponseClientRedirect(back) if request.htmx else redirect(back)


@require_GET
def patch_download(request: AuthedRequest, pk: int, output_id: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk)
    output = get_object_or_404(
        SessionOutput, pk=output_id, session=session, kind=SessionOutput.Kind.CHANGE_SET
    )
    response = HttpResponse(output.patch, content_type="text/x-diff; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="session-{session.remote_id}.diff"'
    return response


def _launch_connections(request: AuthedRequest) -> QuerySet[JulesConnection]:
    return JulesConnection.objects.filter(
        enabled=True,
        team__memberships__user=request.user,
        team__memberships__role__in=[Role.MEMBER, Role.APPROVER, Role.ADMIN],
    ).select_related("team")


@require_http_methods(["GET", "POST"])
def session_launch(request: AuthedRequest) -> HttpResponse:
    connections = _launch_connections(request)
    form = LaunchForm(
        request.POST or None, connections=connections, initial={"require_plan_approval": True}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            action = services.session_launch(
                user=request.user,
                connection=data["connection"],
                prompt=data["prompt"],
                title=data.get("title", ""),
                source_name=data.get("source", ""),
                starting_branch=data.get("branch", ""),
                require_plan_approval=bool(data.get("require_plan_approval")),
                auto_create_pr=bool(data.get("auto_create_pr")),
                request=request,
            )
        except services.ActionNotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("sessions_app:action-status", pk=action.pk)
    selected = form["connection"].value() or (connections[0].pk if connections else None)
    sources = Source.objects.filter(connection_id=selected) if selected else Source.objects.none()
    return render(
        request,
        "sessions_app/launch.html",
        {
            "form": form,
            "sources": sources,
            "nav_active": "launch",
            "policy_forces_approval": any(c.team.require_plan_approval for c in connections),
            "has_connections": connections.exists(),
        },
    )


@require_GET
def launch_branches(request: AuthedRequest) -> HttpResponse:
    name = request.GET.get("source", "")
    source = Source.objects.filter(name=name, connection__in=_launch_connections(request)).first()
    return render(request, "sessions_app/launch.html#branches", {"source": source})


@require_GET
def action_status(request: AuthedRequest, pk: str) -> HttpResponse:
    action = (
        OutboxAction.objects.select_related("session").filter(pk=pk, actor=request.user).first()
    )
    if action is None:
        raise Http404("No such action.")
    if action.session_id and action.status == OutboxAction.Status.DONE:
        url = reverse("sessions_app:session-detail", args=[action.session_id])
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    template = "sessions_app/action_status.html" + ("#status" if request.htmx else "")
    return render(
        request, template, {"action": action, "now": timezone.now() - dt.timedelta(seconds=0)}
    )
