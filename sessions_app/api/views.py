"""The /api/v1/ operations. Reads use the pages' selectors and filters; writes call the
pages' services, after checking the token's scope and the caller's role (a refusal there is
403; what the service still refuses is the object's state, a 409)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.http import HttpRequest, QueryDict
from ninja import NinjaAPI, Query

from sessions_app import access
from sessions_app.api import feeds, token_admin
from sessions_app.api import schemas as s
from sessions_app.api.auth import BearerToken, BrowserSession, caller, need
from sessions_app.api.common import (
    ERRORS,
    IDEMPOTENCY_KEY,
    MAX_LIMIT,
    WRITE_ERRORS,
    AuditQuery,
    audit_entries,
    form_errors,
    idempotent,
)
from sessions_app.api.errors import ApiError, forbidden, install, invalid
from sessions_app.models import (
    Activity,
    ApiToken,
    JulesConnection,
    Membership,
    OutboxAction,
    Role,
    Scope,
    Session,
    Source,
)
from sessions_app.sessions import services
from sessions_app.sessions.filters import filter_sessions
from sessions_app.sessions.forms import MAX_ID, SessionFilterForm
from sessions_app.sessions.selectors import approvable_sessions_for_user, get_session_for_user
from sessions_app.teams.selectors import teams_for_user

api = NinjaAPI(
    title="Jules team portal API",
    version="1",
    description="See docs/api.md. Errors share one shape; outsiders get 404.",
    urls_namespace="api-v1",
    auth=[BearerToken(), BrowserSession()],
    openapi_url="/openapi.json",
    docs_url="/docs",
)
install(api)

# The order of the `session_created_cover` index, (create_time DESC, id DESC), whose
# descending columns PostgreSQL sorts nulls first: any other null placement makes every
# page sort the whole list instead of reading the index (docs/api.md, "Cursor pagination").
SESSION_ORDER = (F("create_time").desc(nulls_first=True), F("id").desc())


# --- helpers --------------------------------------------------------------------------


def _encode(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _decode(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid("cursor", "Not a cursor this API gave.") from None


def _action(action: OutboxAction) -> dict[str, Any]:
    return {
        "id": str(action.pk),
        "kind": action.kind,
        "status": action.status,
        "session": action.session_id,
        "created_at": action.created_at.isoformat(),
        "last_error": action.last_error,
    }


def _session(request: HttpRequest, pk: int) -> Session:
    if pk > MAX_ID:
        raise ApiError(404, "not_found", "No such object.")
    return get_session_for_user(caller(request), pk)


def _role(request: HttpRequest, team_id: int) -> str:
    return access.require_in_team(caller(request), team_id)


def _allow(decision: access.Decision) -> None:
    if not decision:
        raise forbidden(decision.reason)


# --- sessions -------------------------------------------------------------------------


@api.get("/sessions", response={200: s.SessionPage, **ERRORS}, tags=["sessions"])
def session_list(
    request: HttpRequest,
    q: str = "",
    state: list[str] = Query([]),  # noqa: B008 (ninja's way of declaring a query list)
    attention: bool = False,
    repo: str = "",
    connection: int | None = None,
    launched_by: str = "",
    archived: str = Query("", description="'', 'include' or 'only'"),
    created_after: dt.date | None = None,
    created_before: dt.date | None = None,
    cursor: str = "",
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
) -> Any:
    """The caller's sessions, newest first, with the list page's filters."""
    need(request, Scope.READ)
    data = QueryDict(mutable=True)
    for name in (
        "q",
        "attention",
        "repo",
        "connection",
        "launched_by",
        "archived",
        "created_after",
        "created_before",
    ):
        if name in request.GET:
            data[name] = request.GET[name]
    data.setlist("state", request.GET.getlist("state"))
    form = SessionFilterForm(data)
    form.is_valid()
    unknown = {"state": ["Unknown state."]} if form.unknown_states else None
    form_errors(form, unknown)
    team_ids = Membership.objects.filter(user=caller(request)).values_list("team_id", flat=True)
    qs, states = filter_sessions(team_ids, form.cleaned_data)
    if states is not None:
        qs = qs.filter(state__in=states)
    if cursor:
        qs = qs.filter(_after_session(_decode(cursor)))
    rows = list(qs.select_related("team", "launched_by").order_by(*SESSION_ORDER)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    next_cursor = None
    if more and last is not None:
        stamp = last.create_time.isoformat() if last.create_time else None
        next_cursor = _encode([stamp, last.pk])
    return {"items": rows, "next_cursor": next_cursor}


def _after_session(value: Any) -> Q:
    """Rows after the cursor's (create_time, id) in the list's order (nulls first)."""
    try:
        stamp, pk = value
        pk = int(pk)
        when = dt.datetime.fromisoformat(stamp) if stamp is not None else None
    except (TypeError, ValueError):
        raise invalid("cursor", "Not a cursor this API gave.") from None
    if when is None:
        return Q(create_time__isnull=True, id__lt=pk) | Q(create_time__isnull=False)
    # The first condition alone bounds the index range; the second trims its first key.
    return Q(create_time__lte=when) & (Q(create_time__lt=when) | Q(id__lt=pk))


@api.get("/sessions/{pk}", response={200: s.SessionDetailOut, **ERRORS}, tags=["sessions"])
def session_detail(request: HttpRequest, pk: int) -> Any:
    need(request, Scope.READ)
    return _session(request, pk)


@api.get("/sessions/{pk}/activities", response={200: s.ActivityPage, **ERRORS}, tags=["sessions"])
def session_activities(
    request: HttpRequest,
    pk: int,
    after: int = Query(0, ge=0, description="Only activities stored after this one."),
    limit: int = Query(MAX_LIMIT, ge=1, le=MAX_LIMIT),
) -> Any:
    """The session's activities in the order the portal stored them."""
    need(request, Scope.READ)
    session = _session(request, pk)
    items = Activity.objects.filter(session=session, id__gt=min(after, MAX_ID)).order_by("id")
    return {"items": list(items[:limit])}


@api.post("/sessions", response={202: s.ActionOut, **WRITE_ERRORS}, tags=["actions"])
def session_launch(
    request: HttpRequest, payload: s.LaunchIn, idempotency_key: str = IDEMPOTENCY_KEY
) -> Any:
    """Launch a session; the answer is the queued action (poll `/actions/{id}`)."""
    need(request, Scope.LAUNCH)
    connection = JulesConnection.objects.filter(pk=payload.connection).first()
    if connection is None:
        raise ApiError(404, "not_found", "No such object.")
    _allow(access.may_launch(_role(request, connection.team_id)))
    if (
        payload.source
        and not Source.objects.filter(connection=connection, name=payload.source).exists()
    ):
        raise invalid("source", "Not one of this connection's synced sources.")

    def act() -> tuple[int, Any]:
        action = services.session_launch(
            user=caller(request),
            connection=connection,
            prompt=payload.prompt,
            title=payload.title,
            source_name=payload.source,
            starting_branch=payload.starting_branch,
            require_plan_approval=payload.require_plan_approval,
            auto_create_pr=payload.auto_create_pr,
            request=request,
            any_connection=payload.any_connection,
        )
        return 202, _action(action)

    return idempotent(request, act)


def _session_write(
    request: HttpRequest, pk: int, scope: str, check: Callable[[Any, str, Session], Any], do: Any
) -> Any:
    need(request, scope)
    session = _session(request, pk)
    user = caller(request)
    _allow(check(user, _role(request, session.team_id), session))

    def act() -> tuple[int, Any]:
        return 202, _action(do(user=user, session=session, request=request))

    return idempotent(request, act)


@api.post("/sessions/{pk}/approve", response={202: s.ActionOut, **WRITE_ERRORS}, tags=["actions"])
def session_approve(request: HttpRequest, pk: int, idempotency_key: str = IDEMPOTENCY_KEY) -> Any:
    """Approve the latest plan (the team's no-self-approval policy applies)."""
    return _session_write(
        request, pk, Scope.APPROVE, access.may_approve_by_policy, services.session_approve_plan
    )


@api.post("/sessions/{pk}/messages", response={202: s.ActionOut, **WRITE_ERRORS}, tags=["actions"])
def session_message(
    request: HttpRequest, pk: int, payload: s.MessageIn, idempotency_key: str = IDEMPOTENCY_KEY
) -> Any:
    def send(*, user: Any, session: Session, request: HttpRequest) -> OutboxAction:
        return services.session_send_message(
            user=user, session=session, prompt=payload.prompt, request=request
        )

    def role_only(user: Any, role: str, session: Session) -> access.Decision:
        if access.has_role(role, Role.MEMBER):
            return access.ALLOWED
        return access.Decision(False, "Only a member or above in this team may message.")

    return _session_write(request, pk, Scope.MESSAGE, role_only, send)


@api.post("/sessions/{pk}/archive", response={202: s.ActionOut, **WRITE_ERRORS}, tags=["actions"])
def session_archive(request: HttpRequest, pk: int, idempotency_key: str = IDEMPOTENCY_KEY) -> Any:
    def check(user: Any, role: str, session: Session) -> access.Decision:
        return access.may_archive(role, user, session, archived=True)

    return _session_write(request, pk, Scope.LAUNCH, check, services.session_archive)


@api.post("/sessions/{pk}/unarchive", response={202: s.ActionOut, **WRITE_ERRORS}, tags=["actions"])
def session_unarchive(request: HttpRequest, pk: int, idempotency_key: str = IDEMPOTENCY_KEY) -> Any:
    def check(user: Any, role: str, session: Session) -> access.Decision:
        return access.may_archive(role, user, session, archived=False)

    return _session_write(request, pk, Scope.LAUNCH, check, services.session_unarchive)


@api.get("/actions/{action_id}", response={200: s.ActionOut, **ERRORS}, tags=["actions"])
def action_status(request: HttpRequest, action_id: uuid.UUID) -> Any:
    """One of the caller's own actions: pending, sending, done (with its session) or failed."""
    need(request, Scope.READ)
    action = OutboxAction.objects.filter(pk=action_id, actor=caller(request)).first()
    if action is None:
        raise ApiError(404, "not_found", "No such object.")
    return _action(action)


@api.get("/approvals", response={200: s.SessionPage, **ERRORS}, tags=["sessions"])
def approvals(request: HttpRequest) -> Any:
    """The sessions whose plan the caller may approve now, the longest waiting first."""
    need(request, Scope.READ)
    rows = approvable_sessions_for_user(caller(request)).select_related("team", "launched_by")
    return {"items": list(rows[:MAX_LIMIT]), "next_cursor": None}


# --- teams and audit ------------------------------------------------------------------


@api.get("/teams", response={200: list[s.TeamOut], **ERRORS}, tags=["teams"])
def team_list(request: HttpRequest) -> Any:
    need(request, Scope.READ)
    user = caller(request)
    roles = {m.team_id: m.role for m in Membership.objects.filter(user=user)}
    return [
        {
            "slug": team.slug,
            "name": team.name,
            "role": roles[team.pk],
            "require_plan_approval": team.require_plan_approval,
            "forbid_self_approval": team.forbid_self_approval,
        }
        for team in teams_for_user(user)
    ]


@api.get("/teams/{slug}/members", response={200: list[s.MemberOut], **ERRORS}, tags=["teams"])
def team_members(request: HttpRequest, slug: str) -> Any:
    need(request, Scope.READ)
    membership = (
        Membership.objects.filter(user=caller(request), team__slug=slug)
        .select_related("team")
        .first()
    )
    if membership is None:
        raise ApiError(404, "not_found", "No such object.")
    members: QuerySet[Membership] = (
        Membership.objects.filter(team=membership.team)
        .select_related("user")
        .annotate(bot=Exists(ApiToken.objects.filter(user=OuterRef("user"), team__isnull=False)))
        .order_by("user__username")
    )
    return [
        {
            "username": m.user.get_username(),
            "role": m.role,
            "service_token": m.bot,  # type: ignore[attr-defined]
            "joined_at": m.created_at,
        }
        for m in members
    ]


@api.get("/audit", response={200: s.AuditPage, **ERRORS}, tags=["audit"])
def audit_list(
    request: HttpRequest,
    filters: Query[AuditQuery],
    cursor: str = "",
    limit: int = Query(50, ge=1, le=MAX_LIMIT),
) -> Any:
    """The audit history the caller may see (the audit page's filters), newest first."""
    need(request, Scope.READ)
    entries = audit_entries(request)
    if cursor:
        seq = _decode(cursor)
        if not isinstance(seq, int):
            raise invalid("cursor", "Not a cursor this API gave.")
        entries = entries.filter(seq__lt=seq)
    rows = list(entries[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": _encode(rows[-1].seq) if more and rows else None}


# The exports and events, and the service tokens' operations (docs/api.md).
api.add_router("", feeds.router)
api.add_router("", token_admin.router)
