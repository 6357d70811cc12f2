"""What the API's operation modules share: the declared error answers, the idempotent
POST, form errors as 422, and the audit filters (docs/api.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict
from ninja import Header, Schema
from ninja.responses import Status

from sessions_app.api import schemas as s
from sessions_app.api.auth import caller, caller_key
from sessions_app.api.errors import ApiError, invalid
from sessions_app.audit.filters import AuditFilterForm, filtered_entries
from sessions_app.models import AuditEntry, IdempotentAnswer

ERRORS: dict[int, Any] = dict.fromkeys((401, 403, 404, 422, 429), s.ErrorOut)
# 400: a body that is not JSON at all.
WRITE_ERRORS: dict[int, Any] = {**ERRORS, 400: s.ErrorOut, 409: s.ErrorOut}
MAX_LIMIT = 200
# Declared on every POST so that the schema shows it; `idempotent` reads it.
IDEMPOTENCY_KEY = Header(
    "",
    alias="Idempotency-Key",
    max_length=200,
    description="Retrying with the same key returns the first answer instead of acting twice.",
)


class AuditQuery(Schema):
    """The audit page's filters, as the audit list and its export declare them."""

    team: int | None = None
    person: str = ""
    action: str = ""
    session: int | None = None
    since: dt.date | None = None
    until: dt.date | None = None


AUDIT_FILTERS = tuple(AuditQuery.model_fields)


def form_errors(form: Any, extra: dict[str, list[str]] | None = None) -> None:
    fields = {name: [str(e) for e in errors] for name, errors in form.errors.items()}
    fields.update(extra or {})
    if fields:
        raise ApiError(422, "invalid", "The request has invalid values.", fields)


def idempotent(request: HttpRequest, act: Callable[[], tuple[int, Any]]) -> Status[Any]:
    """Run `act` once per `Idempotency-Key`: a retry gets the first answer back."""
    key = request.headers.get("Idempotency-Key", "")
    if not key:
        return Status(*act())
    if len(key) > 200:
        raise invalid("Idempotency-Key", "At most 200 characters.")
    who = caller_key(request)
    first = IdempotentAnswer.objects.filter(caller=who, key=key).first()
    if first is not None:
        if first.path != request.path:
            raise invalid("Idempotency-Key", "This key was used for another request.")
        return Status(first.status, first.body)
    status, body = act()
    try:
        with transaction.atomic():
            IdempotentAnswer.objects.create(
                caller=who, key=key, path=request.path, status=status, body=body
            )
    except IntegrityError:
        pass  # A concurrent retry stored its answer first.
    return Status(status, body)


def audit_entries(request: HttpRequest) -> QuerySet[AuditEntry]:
    """The entries the audit page's filters in the query select, newest first; a filter
    with a bad value is a 422, never dropped (the answer would hold more than was asked)."""
    user = caller(request)
    data = QueryDict(mutable=True)
    for name in AUDIT_FILTERS:
        if name in request.GET:
            data[name] = request.GET[name]
    form = AuditFilterForm(data, user=user)
    form.is_valid()
    form_errors(form)
    return filtered_entries(user, form.cleaned_data)
