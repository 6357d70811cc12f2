"""Session pages: the list with its live rows and bulk actions, and the session page with
its live header, timeline, composer and actions. Launching lives in `launch`.

Every page works as a full page; its live parts are fragments of the same templates,
polled only while the session can still change and answered with 286 (stop polling) once
it cannot. Permission checks live here, in the selectors and in the services, never only
in templates: a fragment skips the checks of the page around it.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from sessions_app import access
from sessions_app.access import ActionNotAllowed, memberships_for_user, role_in_team
from sessions_app.launch_queue.bulk_message import bulk_message_result
from sessions_app.launch_queue.rerun import rerun_links
from sessions_app.models import (
    Activity,
    Role,
    Session,
    SessionOutput,
    SessionState,
)
from sessions_app.models.jules import ActivityKind, SyncStatus
from sessions_app.sessions import services
from sessions_app.sessions.filters import (
    ORDER,
    ROW_FIELDS,
    cached_count_states,
    filter_menus,
    filter_sessions,
    page_of_sessions,
    sessions_changed,
    visible_connections,
)
from sessions_app.sessions.forms import (
    OUTSIDE_PORTAL,
    STATE_CHOICES,
    SessionFilterForm,
    parse_id,
)
from sessions_app.sessions.rows import Row, render_rows, rows_for, selection_depends_on_user
from sessions_app.sessions.selectors import get_session_for_user
from sessions_app.sessions.timeline import (
    Pending,
    PlanView,
    activity_views,
    mark_question,
    output_views,
    pending_actions,
    people_behind,
    plan_view,
    plan_view_for,
)
from sessions_app.sessions.views.approvals import with_approval_state
from sessions_app.web.htmx import (
    digest,
    fragment_only,
    not_modified,
    render_versioned,
    stop_polling,
    unchanged,
)
from sessions_app.web.request import AuthedRequest

LIST_TEMPLATE = "sessions_app/session_list.html"
DETAIL_TEMPLATE = "sessions_app/session_detail.html"
BULK_LIMIT = 200
MAX_MESSAGE = 20000


# --- the list -------------------------------------------------------------------------


def _minute() -> str:
    """The current minute: cached rows are kept no longer, as they say how long ago."""
    return timezone.now().strftime("%Y%m%d%H%M")


@require_GET
def session_list(request: AuthedRequest) -> HttpResponse:
    memberships = memberships_for_user(request.user)
    team_ids = sorted(memberships)
    form = SessionFilterForm(request.GET)
    data = form.cleaned_or_empty()
    connections = visible_connections(team_ids)
    if data.get("connection") and data["connection"] not in {c.pk for c in connections}:
        form.ignore(data, "connection", "no such connection in your teams.")
    qs, states = filter_sessions(team_ids, data)
    counts, data_version = cached_count_states(qs, team_ids, data, connections)
    page = page_of_sessions(qs, states, counts, request.GET.get("page"))
    repo_menu, people = filter_menus(team_ids, connections)
    repos = set(repo_menu)
    if data.get("repo"):
        # A repository whose source is no longer synced still filters, and stays shown.
        repos.add(data["repo"])
    # The address of the other pages: the filters in use (a form sent without script
    # carries its empty fields too).
    query = QueryDict(mutable=True)
    for key, values in request.GET.lists():
        if key != "page" and (kept := [v for v in values if v]):
            query.setlist(key, kept)
    roles = [m.role for m in memberships.values()]
    # Members and above launch and act on sessions; a viewer only reads.
    may_bulk = any(access.may_launch(role) for role in roles)
    troubled = [c for c in connections if c.sync_status in TROUBLED]

    @functools.cache
    def page_rows() -> list[Row]:
        # Read by the template only when the rows are not in its fragment cache.
        return rows_for(page.object_list, memberships, may_bulk=may_bulk, user_id=request.user.pk)

    context = {
        "form": form,
        "data": data,
        "page": page,
        "rows_html": lambda: render_rows(page_rows()),
        "rows_live": lambda: any(row.polls for row in page_rows()),
        "state_counts": [(v, label, counts.get(v, 0)) for v, label in STATE_CHOICES],
        "selected_states": set(data.get("state") or []),
        "repos": sorted(repos),
        "connections": connections,
        "people": people,
        "outside_portal": OUTSIDE_PORTAL,
        "query": query.urlencode(),
        "filtered": any(data.values()),
        "filters_in_use": sum(1 for key, value in data.items() if value and key != "q"),
        "has_team": bool(memberships),
        "first_team": next(iter(sorted(memberships.values(), key=lambda m: m.team.name)), None),
        "has_connection": bool(connections),
        "troubled": troubled,
        # Where the user may fix them: the pages of the troubled teams they administer.
        "troubled_teams_to_fix": sorted(
            {c.team for c in troubled if memberships[c.team_id].can(Role.ADMIN)},
            key=lambda team: team.name,
        ),
        "may_launch": may_bulk,
        "nav_may_launch": may_bulk,
        "nav_in_team": bool(memberships),
        "may_bulk": may_bulk,
        "may_approve": any(access.has_role(role, Role.APPROVER) for role in roles),
        "nav_active": "sessions",
    }
    context["filters_version"] = digest(
        query.urlencode(),
        repr(context["state_counts"]),
        repr(context["repos"]),
        repr(people),
        repr([(c.pk, c.label, c.team.name) for c in connections]),
    )
    # The table and its pagination, as the data, the address, the page and the user's
    # roles make them, in this minute (rows say how long ago things happened).
    context["rows_version"] = digest(
        data_version,
        request.GET.urlencode(),
        str(page.number),
        repr(sorted((t, m.role) for t, m in memberships.items())),
        str(may_bulk),
        # A member's checkboxes are on the sessions they launched.
        str(request.user.pk) if selection_depends_on_user(memberships) else "",
        _minute(),
    )
    template = LIST_TEMPLATE
    if request.htmx and request.htmx.target == "session-results":
        template += "#results-update"
    response = render(request, template, context)
    # The same address answers a fragment or the page; caches must keep them apart.
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


TROUBLED = frozenset({SyncStatus.BROKEN, SyncStatus.ERROR})


LIVE_ROWS_LIMIT = 100
# What a page sends for each live row: its id and the digest it shows (`Row.version`).
LIVE_ROW = re.compile(r"^(\d{1,18}):([0-9a-f]{16})$")


def _live_rows_asked(raw: str) -> dict[int, str] | str:
    """`pk:version,...` as {pk: version}, or what is wrong with it."""
    items = [item for item in raw.split(",") if item]
    if len(items) > LIVE_ROWS_LIMIT:
        return f"At most {LIVE_ROWS_LIMIT} rows a request."
    asked: dict[int, str] = {}
    for item in items:
        match = LIVE_ROW.match(item)
        pk = parse_id(match.group(1)) if match else None
        if match is None or pk is None:
            return "`rows` takes session:version pairs, comma-separated."
        asked[pk] = match.group(2)
    return asked


@require_GET
def session_live_rows(request: AuthedRequest) -> HttpResponse:
    """The list page's one poll: of the live rows it sends, the ones that changed.

    Changed rows come as out-of-band swaps; 204 when none changed, 286 once none of them
    can change. Rows the person may not see are not answered.
    """
    asked = _live_rows_asked(request.GET.get("rows", ""))
    if isinstance(asked, str):
        return HttpResponseBadRequest(asked, content_type="text/plain")
    memberships = memberships_for_user(request.user)
    sessions = list(
        Session.objects.filter(pk__in=asked, team_id__in=list(memberships))
        .select_related("launched_by")
        .only(*ROW_FIELDS)
        .order_by(*ORDER)
    )
    if asked and not sessions:
        raise Http404("No such session.")
    if (response := fragment_only(request, reverse("sessions_app:session-list"))) is not None:
        return response
    may_bulk = any(m.can(Role.MEMBER) for m in memberships.values())
    rows = rows_for(sessions, memberships, may_bulk=may_bulk, user_id=request.user.pk)
    changed = [row for row in rows if not (row.polls and asked[row.pk] == row.version)]
    if not any(row.polls for row in rows):
        return stop_polling(HttpResponse(render_rows(changed, oob=True)))
    if not changed:
        return not_modified()
    return HttpResponse(render_rows(changed, oob=True))


@require_POST
def session_bulk(request: AuthedRequest) -> HttpResponse:
    action = request.POST.get("action", "")
    raw_ids = request.POST.getlist("ids")
    ids = [i for i in map(parse_id, raw_ids) if i is not None][:BULK_LIMIT]
    if len(ids) < min(len(raw_ids), BULK_LIMIT):
        messages.warning(request, "Some of the selected values were not session numbers.")
    back = reverse("sessions_app:session-list")
    query = QueryDict(request.POST.get("query", "")).urlencode()
    if query:
        back += "?" + query
    if not ids:
        messages.warning(request, "Select at least one session first.")
        return redirect(back)
    team_ids = list(memberships_for_user(request.user))
    sessions = list(
        Session.objects.filter(team_id__in=team_ids, pk__in=ids)
        .select_related("team", "connection")
        .order_by("-create_time", "-id")
    )
    try:
        result = services.sessions_bulk(
            user=request.user,
            action=action,
            sessions=sessions,
            request=request,
            prompt=request.POST.get("prompt", ""),
        )
    except ActionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        if action == "message":
            # One result per session, followed live: docs/launch-queue.md#bulk-message
            return bulk_message_result(request, result, back)
        verbs = {"approve": "Approved", "archive": "Archived", "unarchive": "Unarchived"}
        sessions_changed(s.team_id for s in result.done)
        if result.done:
            count = len(result.done)
            messages.success(
                request, f"{verbs[action]} {count} session{'s' if count != 1 else ''}."
            )
        if not result.done:
            messages.info(request, f"{verbs[action]} no session.")
        for session, why in result.skipped[:5]:
            messages.info(request, f"Skipped {session.display_title}: {why}")
        if len(result.skipped) > 5:
            messages.info(request, f"{len(result.skipped) - 5} more were skipped.")
        for session, why in result.refused[:5]:
            messages.warning(request, f"{session.display_title}: {why}")
        if len(result.refused) > 5:
            messages.warning(request, f"{len(result.refused) - 5} more were refused.")
    return HttpResponseClientRedirect(back) if request.htmx else redirect(back)


# --- the session page -----------------------------------------------------------------


def _role(request: AuthedRequest, session: Session) -> str:
    return role_in_team(request.user, session.team_id) or Role.VIEWER


def _message_state(role: str, session: Session) -> tuple[bool, str]:
    decision = access.may_message(role, session)
    return decision.allowed, decision.reason


def _failure_reason(session: Session) -> str:
    """Why a failed session failed, for its header (the timeline says it at the end)."""
    if session.state != SessionState.FAILED:
        return ""
    reason = (
        session.activities.filter(kind=ActivityKind.SESSION_FAILED)
        .order_by("-create_time", "-id")
        .values_list("failure_reason", flat=True)
        .first()
    )
    return reason or "Jules gave no reason."


def _header_context(
    request: AuthedRequest, session: Session, role: str, plan: PlanView | None
) -> dict[str, Any]:
    """What the header needs, and the header itself rendered with its digest."""
    [approval] = with_approval_state([session], request.user)
    can_message, message_reason = _message_state(role, session)
    context = {
        "session": session,
        "state": approval,
        "role": role,
        "plan": plan,
        "pending": pending_actions(session),
        "connection": session.connection,
        "can_archive": bool(access.may_archive(role, request.user, session)),
        "is_admin": bool(access.may_delete(role)),
        "can_message": can_message,
        "message_reason": message_reason,
        "failure_reason": _failure_reason(session),
        "show_approval": session.state == SessionState.AWAITING_PLAN_APPROVAL
        or approval.approval is not None
        or approval.can_approve,
    }
    context["header_html"], context["header_version"] = render_versioned(
        request, f"{DETAIL_TEMPLATE}#header", context
    )
    return context


def _pending_context(
    request: AuthedRequest, session: Session, pending: Pending | None = None
) -> dict[str, Any]:
    """The messages on their way, rendered with their digest for the timeline's poll."""
    if pending is None:
        pending = pending_actions(session)
    html, version = render_versioned(
        request, f"{DETAIL_TEMPLATE}#pending-items", {"session": session, "pending": pending}
    )
    return {"pending": pending, "pending_html": html, "pending_version": version}


def _outputs(session: Session) -> list[SessionOutput]:
    return list(session.outputs.order_by("position"))


@require_GET
def session_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk)
    role = _role(request, session)
    activities = list(session.activities.order_by("create_time", "id"))
    context = _header_context(request, session, role, plan_view(session, activities))
    outputs = _outputs(session)
    patches = frozenset(o.patch for o in outputs if o.patch)
    context.update(_pending_context(request, session, context["pending"]))
    context.update(
        {
            "activities": mark_question(
                session, activity_views(activities, patches, people_behind(session, activities))
            ),
            "outputs": output_views(outputs),
            # The poll asks by id; rows are written in order, so the largest id is newest.
            "last_activity_id": max((a.pk for a in activities), default=0),
            "nav_active": "sessions",
            "rerun": rerun_links(session, role),
        }
    )
    return render(request, DETAIL_TEMPLATE, context)


@require_GET
def session_live(request: AuthedRequest, pk: int) -> HttpResponse:
    """The session page's one poll: the header (`v`, its digest), the activities after
    `after` (an activity id) and the pending list (`p`, its digest), each only if changed.

    Changed parts come as out-of-band swaps, and the outputs with anything new; 204 when
    nothing changed, 286 once the session cannot change.
    """
    session = get_session_for_user(request.user, pk)
    url = reverse("sessions_app:session-detail", args=[pk])
    if (response := fragment_only(request, url)) is not None:
        return response
    after = parse_id(request.GET.get("after", "0"))
    if after is None:
        return HttpResponseBadRequest("`after` must be an activity id.", content_type="text/plain")
    role = _role(request, session)
    context = _header_context(request, session, role, plan_view_for(session))
    new = list(session.activities.filter(pk__gt=after).order_by("create_time", "id"))
    outputs = _outputs(session) if new else []
    pending = _pending_context(request, session, context["pending"])
    context.update(
        {
            "header_changed": not unchanged(request, context["header_version"]),
            "activities": mark_question(
                session,
                activity_views(
                    new,
                    frozenset(o.patch for o in outputs if o.patch),
                    people_behind(session, new),
                ),
            ),
            "last_activity_id": max([a.pk for a in new], default=after),
            "outputs": output_views(outputs),
            "outputs_changed": bool(new),
            "pending_changed": request.GET.get("p") != pending["pending_version"],
            **pending,
        }
    )
    changed = context["header_changed"] or new or context["pending_changed"]
    if session.can_change and not changed:
        return not_modified()
    response = render(request, f"{DETAIL_TEMPLATE}#live-poll", context)
    return response if session.can_change else stop_polling(response)


def _back_to(request: AuthedRequest, session: Session) -> HttpResponse:
    url = reverse("sessions_app:session-detail", args=[session.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
def session_message(request: AuthedRequest, pk: int) -> HttpResponse:
    """Queue a message; htmx gets the pending list with the message in it at once."""
    session = get_session_for_user(request.user, pk)
    prompt = request.POST.get("prompt", "")[:MAX_MESSAGE]
    try:
        services.session_send_message(
            user=request.user, session=session, prompt=prompt, request=request
        )
    except ActionNotAllowed as exc:
        messages.error(request, str(exc))
        if request.htmx:
            # 422 leaves the page (and the typed text) as it is; the toast says why.
            return HttpResponse(str(exc), status=422, content_type="text/plain")
        return _back_to(request, session)
    if not request.htmx:
        messages.success(request, "Message queued for Jules.")
        return _back_to(request, session)
    # The list comes with its digest, which the timeline's poll sends from then on.
    return HttpResponse(_pending_context(request, session)["pending_html"])


@require_POST
def session_archive(request: AuthedRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk)
    undo = bool(request.POST.get("undo"))
    service = services.session_unarchive if undo else services.session_archive
    try:
        service(user=request.user, session=session, request=request)
    except ActionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        sessions_changed([session.team_id])
        messages.success(request, "Session unarchived." if undo else "Session archived.")
    if not request.htmx:
        return _back_to(request, session)
    session.refresh_from_db()
    role = _role(request, session)
    context = _header_context(request, session, role, plan_view_for(session))
    return render(request, f"{DETAIL_TEMPLATE}#header-poll", context)


@require_POST
def session_delete(request: AuthedRequest, pk: int) -> HttpResponse:
    session = get_session_for_user(request.user, pk)
    try:
        services.session_delete(user=request.user, session=session, request=request)
    except ActionNotAllowed as exc:
        messages.error(request, str(exc))
        return _back_to(request, session)
    sessions_changed([session.team_id])
    messages.success(request, f"Deleting “{session.display_title}” on Jules.")
    url = reverse("sessions_app:session-list")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _patch_response(session: Session, patch: str, name: str) -> HttpResponse:
    response = HttpResponse(patch, content_type="text/x-diff; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="session-{session.pk}-{name}.diff"'
    return response


@require_GET
def patch_download(request: AuthedRequest, pk: int, output_id: int) -> HttpResponse:
    """The patch of one of the session's change-set outputs, as a file."""
    session = get_session_for_user(request.user, pk)
    output = get_object_or_404(
        SessionOutput, pk=output_id, session=session, kind=SessionOutput.Kind.CHANGE_SET
    )
    return _patch_response(session, output.patch, f"output-{output.pk}")


@require_GET
def activity_patch_download(request: AuthedRequest, pk: int, activity_id: int) -> HttpResponse:
    """The change set an activity carried (every one, if it carried several), as a file."""
    session = get_session_for_user(request.user, pk)
    activity = get_object_or_404(Activity, pk=activity_id, session=session)
    patches = [
        str(a.get("patch") or "")
        for a in activity.artifacts or []
        if isinstance(a, dict) and a.get("kind") == "changeSet"
    ]
    if not any(patches):
        return HttpResponse("This activity carries no change set.", status=404)
    return _patch_response(session, "".join(patches), f"activity-{activity.pk}")
