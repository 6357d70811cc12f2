"""The API's one error shape: `{"error": {"code", "message", "fields"}}`."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from sessions_app.access import ActionNotAllowed, RoleRequired


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or {}
        self.headers = headers or {}


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid", "The request has invalid values.", {field: [message]})


CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found"}


def _fields(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for error in errors:
        # Ninja's locations start with where the value came from (query, body, path).
        loc = [str(part) for part in error.get("loc", ())][1:]
        if loc and loc[0] in ("payload", "body", "filters"):
            loc = loc[1:]
        fields.setdefault(".".join(loc) or "request", []).append(str(error.get("msg", "")))
    return fields


def install(api: NinjaAPI) -> None:
    def answer(request: HttpRequest, error: ApiError) -> HttpResponse:
        body = {"error": {"code": error.code, "message": error.message, "fields": error.fields}}
        response = api.create_response(request, body, status=error.status)
        for name, value in error.headers.items():
            response[name] = value
        return response

    @api.exception_handler(ApiError)
    def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return answer(request, exc)

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return answer(request, ApiError(404, "not_found", "No such object."))

    @api.exception_handler(RoleRequired)
    def _role(request: HttpRequest, exc: RoleRequired) -> HttpResponse:
        return answer(request, forbidden(str(exc)))

    @api.exception_handler(ActionNotAllowed)
    def _conflict(request: HttpRequest, exc: ActionNotAllowed) -> HttpResponse:
        # Roles and scopes are checked before the service runs, so what the service
        # still refuses is the object's state: a conflict.
        return answer(request, ApiError(409, "conflict", str(exc)))

    @api.exception_handler(NinjaValidationError)
    def _invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        fields = _fields(list(exc.errors))
        return answer(request, ApiError(422, "invalid", "The request has invalid values.", fields))

    @api.exception_handler(AuthenticationError)
    def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        message = "Send a live token as `Authorization: Bearer <token>`, or sign in."
        return answer(request, ApiError(401, "unauthenticated", message))

    @api.exception_handler(HttpError)
    def _http(request: HttpRequest, exc: HttpError) -> HttpResponse:
        code = CODES.get(exc.status_code, "error")
        return answer(request, ApiError(exc.status_code, code, str(exc.message)))
