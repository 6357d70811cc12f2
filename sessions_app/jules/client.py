"""The one module that speaks the Jules REST API (v1alpha), per jules-api.md.

One pooled `requests.Session`, explicit connect and read timeouts, retries with
exponential backoff and full jitter inside a caller-set time budget, `Retry-After`
honoured as a minimum wait. The API key travels only in the `X-Goog-Api-Key` header and
never appears in logs, reprs or exception messages.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from sessions_app.jules import errors
from sessions_app.jules.resources import Activity, Page, Session, Source, create_body

logger = logging.getLogger("sessions_app.jules")

DEFAULT_BASE_URL = "https://jules.googleapis.com/v1alpha"


def _session_name(session_id: str) -> str:
    return session_id if session_id.startswith("sessions/") else f"sessions/{session_id}"


def _source_name(source: str) -> str:
    return source if source.startswith("sources/") else f"sources/{source}"


class JulesClient:
    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retry_budget: float = 60.0,
        max_retries: int = 8,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        http: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        user_agent: str = "jules-team-portal",
    ) -> None:
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.retry_budget = retry_budget
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._clock = clock
        if http is None:
            http = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=20, max_retries=0)
            http.mount("http://", adapter)
            http.mount("https://", adapter)
        self._http = http
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        self._lock = threading.Lock()
        self.request_count = 0

    def __repr__(self) -> str:
        return f"JulesClient(base_url={self.base_url!r}, api_key=<redacted>)"

    # --- transport ----------------------------------------------------------------

    def _backoff(self, attempt: int, error: errors.JulesError) -> float:
        # Full jitter: a random wait up to the exponential ceiling, so many clients that
        # failed together do not retry together; Retry-After is a floor, not a hint.
        ceiling = min(self.backoff_cap, self.backoff_base * (2**attempt))
        wait = random.uniform(0, ceiling)
        if error.retry_after is not None:
            wait = max(wait, error.retry_after)
        return wait

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> requests.Response:
        headers = dict(self._headers)
        headers["X-Goog-Api-Key"] = self._api_key
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        with self._lock:
            self.request_count += 1
        try:
            return self._http.request(
                method,
                f"{self.base_url}/{path}",
                params=params,
                data=data,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.exceptions.ChunkedEncodingError:
            raise errors.MalformedResponseError("The response from Jules was cut off.") from None
        except requests.exceptions.ConnectTimeout:
            raise _network_error("Connecting to Jules timed out.", sent=False) from None
        except requests.exceptions.ConnectionError as exc:
            if "IncompleteRead" in str(exc):
                raise errors.MalformedResponseError(
                    "The response from Jules was cut off."
                ) from None
            # A refused connection surely did not deliver the request; a reset might have.
            sent = (
                "refused" not in str(exc).lower() and "newconnectionerror" not in repr(exc).lower()
            )
            raise _network_error("Could not connect to Jules.", sent=sent) from None
        except requests.exceptions.Timeout:
            raise _network_error("Jules did not answer in time.", sent=True) from None
        except requests.exceptions.RequestException as exc:
            raise _network_error(f"Request failed ({exc.__class__.__name__}).", sent=True) from None

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """One call with retries. Non-idempotent calls retry only when surely not applied."""
        started = self._clock()
        attempt = 0
        while True:
            try:
                response = self._send(method, path, params=params, body=body)
                return self._decode(response)
            except errors.JulesError as error:
                if not self._should_retry(error, idempotent, attempt):
                    raise
                wait = self._backoff(attempt, error)
                if self._clock() - started + wait > self.retry_budget:
                    raise
                logger.warning(
                    "Jules %s %s failed (%s); retry %d in %.1fs",
                    method,
                    path.split("?")[0],
                    error.__class__.__name__,
                    attempt + 1,
                    wait,
                )
                self._sleep(wait)
                attempt += 1

    def _should_retry(self, error: errors.JulesError, idempotent: bool, attempt: int) -> bool:
        if not error.retryable or attempt >= self.max_retries:
            return False
        if idempotent:
            return True
        # Spec §9: retry create and sendMessage only when the request surely did not take
        # effect: refused connections, 429 and 503.
        if isinstance(error, errors.RateLimitedError):
            return True
        if error.status == 503:
            return True
        return error.status is None and getattr(error, "sent", True) is False

    def _decode(self, response: requests.Response) -> dict[str, Any]:
        status = response.status_code
        text = response.content.decode("utf-8", errors="replace")
        if not 200 <= status < 300:
            raise errors.error_from_response(status, text, response.headers)
        if not text.strip():
            return {}
        try:
            data = json.loads(text)
        except ValueError:
            raise errors.MalformedResponseError(
                "Jules answered with a body that is not valid JSON.", status=status
            ) from None
        if not isinstance(data, dict):
            raise errors.MalformedResponseError(
                "Jules answered with JSON that is not an object.", status=status
            )
        return data

    # --- sessions -------------------------------------------------------------------

    # Reference: jules-api.md §3 (1) sessions.create
    def create_session(
        self,
        *,
        prompt: str,
        source: str | None = None,
        starting_branch: str | None = None,
        title: str | None = None,
        require_plan_approval: bool | None = None,
        automation_mode: str | None = None,
    ) -> Session:
        body = create_body(
            prompt=prompt,
            source=source,
            starting_branch=starting_branch,
            title=title,
            require_plan_approval=require_plan_approval,
            automation_mode=automation_mode,
        )
        data = self._request("POST", "sessions", body=body, idempotent=False)
        session = Session.from_json(data)
        # The immediate response may be partial; re-read it when the state is missing.
        if "state" not in data and session.id:
            return self.get_session(session.id)
        return session

    # Reference: jules-api.md §3 (2) sessions.get
    def get_session(self, session_id: str) -> Session:
        return Session.from_json(self._request("GET", _session_name(session_id)))

    # Reference: jules-api.md §3 (3) sessions.list, §4 filters
    def list_sessions(
        self,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        archived: bool | None = False,
    ) -> Page[Session]:
        params: dict[str, Any] = {}
        if page_size:
            params["pageSize"] = page_size
        if page_token:
            params["pageToken"] = page_token
        if archived is True:
            params["filter"] = "archived = true"
        elif archived is None:
            params["filter"] = "archived = true OR archived = false"
        data = self._request("GET", "sessions", params=params)
        return Page([Session.from_json(s) for s in _items(data, "sessions")], _token(data))

    def iter_sessions(
        self, *, page_size: int = 100, archived: bool | None = False
    ) -> Iterator[Session]:
        return _follow(
            lambda token: self.list_sessions(
                page_size=page_size, page_token=token, archived=archived
            )
        )

    # Reference: jules-api.md §3 (4) sessions.delete
    def delete_session(self, session_id: str) -> None:
        self._request("DELETE", _session_name(session_id))

    # Reference: jules-api.md §3 (5) sessions.sendMessage
    def send_message(self, session_id: str, prompt: str) -> None:
        self._request(
            "POST",
            f"{_session_name(session_id)}:sendMessage",
            body={"prompt": prompt},
            idempotent=False,
        )

    # Reference: jules-api.md §3 (6) sessions.approvePlan
    def approve_plan(self, session_id: str) -> None:
        self._request("POST", f"{_session_name(session_id)}:approvePlan", body={})

    # Reference: jules-api.md §3 (7) sessions.archive — `{}` or a Session
    def archive_session(self, session_id: str) -> Session | None:
        data = self._request("POST", f"{_session_name(session_id)}:archive", body={})
        return Session.from_json(data) if data.get("name") or data.get("id") else None

    # Reference: jules-api.md §3 (8) sessions.unarchive — `{}` or a Session
    def unarchive_session(self, session_id: str) -> Session | None:
        data = self._request("POST", f"{_session_name(session_id)}:unarchive", body={})
        return Session.from_json(data) if data.get("name") or data.get("id") else None

    # --- activities -----------------------------------------------------------------

    # Reference: jules-api.md §3 (9) sessions.activities.list, §4 create_time filter
    def list_activities(
        self,
        session_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        create_time_after: str | None = None,
        retry_not_found: int = 0,
    ) -> Page[Activity]:
        params: dict[str, Any] = {}
        if page_size:
            params["pageSize"] = page_size
        if page_token:
            params["pageToken"] = page_token
        if create_time_after:
            params["filter"] = f'create_time > "{create_time_after}"'
        path = f"{_session_name(session_id)}/activities"
        delay = 1.0
        for attempt in range(retry_not_found + 1):
            try:
                data = self._request("GET", path, params=params)
                break
            except errors.NotFoundError:
                # A just-created session's activities answer 404 for a few seconds (§7.5).
                if attempt >= retry_not_found:
                    raise
                self._sleep(delay)
                delay *= 2
        return Page([Activity.from_json(a) for a in _items(data, "activities")], _token(data))

    def iter_activities(
        self,
        session_id: str,
        *,
        page_size: int = 100,
        create_time_after: str | None = None,
        retry_not_found: int = 0,
    ) -> Iterator[Activity]:
        return _follow(
            lambda token: self.list_activities(
                session_id,
                page_size=page_size,
                page_token=token,
                create_time_after=create_time_after,
                retry_not_found=retry_not_found if token is None else 0,
            )
        )

    # Reference: jules-api.md §3 (10) sessions.activities.get
    def get_activity(self, session_id: str, activity_id: str) -> Activity:
        name = f"{_session_name(session_id)}/activities/{activity_id.rsplit('/', 1)[-1]}"
        return Activity.from_json(self._request("GET", name))

    # --- sources ----------------------------------------------------------------------

    # Reference: jules-api.md §3 (11) sources.list, §4 name filter
    def list_sources(
        self,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        names: Sequence[str] | None = None,
    ) -> Page[Source]:
        params: dict[str, Any] = {}
        if page_size:
            params["pageSize"] = page_size
        if page_token:
            params["pageToken"] = page_token
        if names:
            params["filter"] = " OR ".join(f"name={_source_name(n)}" for n in names)
        data = self._request("GET", "sources", params=params)
        return Page([Source.from_json(s) for s in _items(data, "sources")], _token(data))

    def iter_sources(
        self, *, page_size: int = 100, names: Sequence[str] | None = None
    ) -> Iterator[Source]:
        return _follow(
            lambda token: self.list_sources(page_size=page_size, page_token=token, names=names)
        )

    # Reference: jules-api.md §3 (12) sources.get — multi-segment name, slashes kept
    def get_source(self, name_or_id: str) -> Source:
        name = _source_name(name_or_id)
        return Source.from_json(self._request("GET", quote(name, safe="/")))


def _items(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise errors.MalformedResponseError(f"'{key}' in the list response is not a list.")
    return value


def _token(data: dict[str, Any]) -> str | None:
    token = data.get("nextPageToken")
    return token if isinstance(token, str) and token else None


def _network_error(message: str, *, sent: bool) -> errors.TransientServerError:
    error = errors.TransientServerError(message)
    error.sent = sent  # type: ignore[attr-defined]
    return error


def _follow(fetch: Callable[[str | None], Page[Any]]) -> Iterator[Any]:
    """Every item of a list, page after page, passing each `nextPageToken` as `pageToken`."""
    token: str | None = None
    while True:
        page = fetch(token)
        yield from page.items
        token = page.next_page_token
        if not token:
            return
