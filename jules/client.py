"""The one module that speaks the Jules REST API (v1alpha): docs/jules-api.md.

One pooled `requests.Session`, explicit timeouts, retries with full jitter inside a
budget (docs/jules-api.md#retries). The key travels only in its header and never shows in
reprs, logs or exceptions (docs/jules-api.md#secrets).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.client import IncompleteRead as HttpIncompleteRead
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import requests
import urllib3.exceptions
from requests.sessions import merge_hooks, merge_setting

from jules import deadline as deadlines
from jules.errors import (
    DeadlineExceededError,
    JulesError,
    MalformedResponseError,
    NotFoundError,
    RateLimitedError,
    ResponseTooLargeError,
    TransientServerError,
    error_from_response,
)
from jules.inflight import InFlight
from jules.resources import (
    Activity,
    Page,
    Session,
    Source,
    create_body,
    format_time,
    source_name,
)

logger = logging.getLogger("jules")

DEFAULT_BASE_URL = "https://jules.googleapis.com/v1alpha"
# Enough connections for the sync's parallel workers and a few web requests at once.
POOL_SIZE = 20
# A 2xx body that is not JSON is re-read at most this many times (GETs only): a cut-off
# body is a transport fault, but a body that is wrong every time will not heal.
MALFORMED_RETRIES = 2
# The SDK's first wait, too: docs/jules-api.md#activities-404-after-create
NOT_FOUND_FIRST_WAIT = 1.0
# More parallel creates fail live: docs/jules-api.md#parallel-creates
MAX_CREATES_IN_FLIGHT = 3
# Larger answers are refused before they fill the memory (a page of activities with big
# patches stays far below it).
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# Bodies are read in chunks of this size; the deadline and the size are checked per chunk.
CHUNK_BYTES = 64 * 1024

T = TypeVar("T")


class JulesClient:
    """A client of one Jules account (one API key). Thread-safe for concurrent calls.

    `environment_once`: read the proxy and CA bundle settings of the environment when the
    client is made rather than on every request (see `_read_environment_once`); the sync
    uses it, since it makes thousands of requests with one client.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retry_budget: float = 60.0,
        max_retries: int = 8,
        malformed_retries: int = MALFORMED_RETRIES,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        http: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        user_agent: str = "jules-team-portal",
        environment_once: bool = False,
        total_timeout: float | None = None,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        # Keys pasted from a settings page often carry a trailing newline.
        key = api_key.strip()
        if not key.isascii() or not key.isprintable() or " " in key:
            # Said without the key itself: the point of the check is not to leak it.
            raise ValueError("The Jules API key contains characters a header cannot carry.")
        self._api_key = key
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry_budget = retry_budget
        self.max_retries = max_retries
        self.malformed_retries = malformed_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        # One call, its retries and waits included, ends within `total_timeout`
        # (docs/reliability.md#remote-deadline). By default as long as the retry budget
        # and one more exchange could last; `math.inf` turns it off, as None does the cap.
        if total_timeout is None:
            total_timeout = retry_budget + connect_timeout + read_timeout
        self.total_timeout = total_timeout
        self.max_response_bytes = max_response_bytes
        self._timeout = (connect_timeout, read_timeout)
        self._sleep = sleep
        self._clock = clock
        self._random = random.Random()
        self._owns_http = http is None
        if http is None:
            http = requests.Session()
            # urllib3's own retries stay off: this class decides what is safe to resend.
            # Its connections can be ended at the total deadline (jules/deadline.py).
            adapter = deadlines.DeadlineAdapter(
                pool_connections=4, pool_maxsize=POOL_SIZE, max_retries=0
            )
            http.mount("https://", adapter)
            http.mount("http://", adapter)
            if environment_once:
                _read_environment_once(http, self.base_url)
        self._http = http
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if key:
            # An empty key is sent as no header at all, which the service reports as
            # CREDENTIALS_MISSING rather than as an invalid key.
            self._headers["X-Goog-Api-Key"] = key
        # The headers of a GET as `requests` would merge them, when GETs may skip its
        # per-call preparation (see `_send_get`); None: every call goes through it.
        self._get_headers: requests.structures.CaseInsensitiveDict[str] | None = None
        if environment_once and self._owns_http and _plain_url(f"{self.base_url}/sessions"):
            self._get_headers = merge_setting(
                self._headers, http.headers, dict_class=requests.structures.CaseInsensitiveDict
            )
        self._body_headers = {**self._headers, "Content-Type": "application/json"}
        self._count_lock = threading.Lock()
        self._create_slots = threading.BoundedSemaphore(MAX_CREATES_IN_FLIGHT)
        self.request_count = 0
        # The adaptive limit of GETs in flight (jules/inflight.py); None: no limit here.
        self.inflight: InFlight | None = None

    def __repr__(self) -> str:
        return f"JulesClient(base_url={self.base_url!r}, api_key=<redacted>)"

    def close(self) -> None:
        """Close the connection pool, if this client made it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> JulesClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- sessions ------------------------------------------------------------------------

    # sessions.create: docs/jules-api.md#create-a-session
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
        """Create a session; without `source` it is repoless.

        At most three creates of this client are in flight at once; more wait.

        Not idempotent: resent only after a refused connection, a connect timeout, a 429 or
        a 503. After any other failure the session may exist; list recent sessions and
        match before creating again.
        """
        body = create_body(
            prompt=prompt,
            source=source,
            starting_branch=starting_branch,
            title=title,
            require_plan_approval=require_plan_approval,
            automation_mode=automation_mode,
        )
        with self._create_slots:
            data = self._call("POST", "sessions", body=body, idempotent=False)
        session = Session.from_json(data)
        if not session.id:
            raise MalformedResponseError(
                "Jules accepted the new session but its answer did not name it; "
                "look for it among recent sessions before creating it again.",
                status=200,
            )
        if "state" in data:
            return session
        # The immediate answer may be partial (the guide shows only name, id, title,
        # sourceContext and prompt), so read the full session. It exists either way, so a
        # failed read returns the partial one rather than reporting a failed create.
        try:
            return self.get_session(session.id)
        except JulesError as error:
            logger.warning(
                "Jules created session %s, but reading it back failed: %s", session.id, error
            )
            return session

    # sessions.get: docs/jules-api.md#get-a-session
    def get_session(self, session_id: str) -> Session:
        return Session.from_json(self._call("GET", _session_path(session_id)))

    # sessions.list: docs/jules-api.md#list-sessions
    def list_sessions(
        self,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        archived: bool | None = False,
    ) -> Page[Session]:
        """One page, newest first. `archived`: False = not archived (the service's
        default), True = archived only, None = all."""
        query = _page_query(page_size, page_token)
        if archived is True:
            query["filter"] = "archived = true"
        elif archived is None:
            query["filter"] = "archived = true OR archived = false"
        data = self._call("GET", "sessions", query=query)
        return Page([Session.from_json(s) for s in _items(data, "sessions")], _token(data))

    def iter_sessions(
        self, *, page_size: int = 100, archived: bool | None = False
    ) -> Iterator[Session]:
        """Every session, following `nextPageToken` to the last page."""
        return _iterate(
            lambda token: self.list_sessions(
                page_size=page_size, page_token=token, archived=archived
            )
        )

    # sessions.delete: docs/jules-api.md#delete-a-session
    def delete_session(self, session_id: str) -> None:
        """Delete permanently. A 404 after an attempt whose fate was unknown counts as
        done: that attempt most likely deleted it."""
        self._call("DELETE", _session_path(session_id), not_found_after_ambiguous_ok=True)

    # sessions.sendMessage: docs/jules-api.md#send-a-message
    def send_message(self, session_id: str, prompt: str) -> None:
        """Send a message (an answer, feedback, or a follow-up that revives a session).

        Not idempotent, so resent only when the first attempt surely did not take effect;
        after an ambiguous failure, look for the `userMessaged` activity before resending.
        """
        self._call(
            "POST",
            f"{_session_path(session_id)}:sendMessage",
            body={"prompt": prompt},
            idempotent=False,
        )

    # sessions.approvePlan: docs/jules-api.md#approve-a-plan
    def approve_plan(self, session_id: str) -> None:
        """Approve the latest plan. Retried like any idempotent call; if an earlier attempt
        did approve, the retry may meet 400 FAILED_PRECONDITION, so after that error a
        caller should re-read the session (or its `planApproved` activity) before
        reporting a refusal."""
        self._call("POST", f"{_session_path(session_id)}:approvePlan", body={})

    # sessions.archive, answering `{}` or the Session: docs/jules-api.md#archive-and-unarchive
    def archive_session(self, session_id: str) -> Session | None:
        data = self._call("POST", f"{_session_path(session_id)}:archive", body={})
        return _session_or_none(data)

    # sessions.unarchive: docs/jules-api.md#archive-and-unarchive
    def unarchive_session(self, session_id: str) -> Session | None:
        data = self._call("POST", f"{_session_path(session_id)}:unarchive", body={})
        return _session_or_none(data)

    # --- activities ----------------------------------------------------------------------

    # sessions.activities.list: docs/jules-api.md#list-activities
    def list_activities(
        self,
        session_id: str,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        create_time_after: str | dt.datetime | None = None,
        retry_not_found: int = 0,
    ) -> Page[Activity]:
        """One page, oldest first.

        `create_time_after` keeps only activities strictly newer than it; pass an
        activity's `create_time_raw` verbatim. `retry_not_found` re-asks that many times
        after a 404, waiting 1 s, then 2 s, 4 s…, because a session created a moment ago
        answers 404 here for a few seconds.
        """
        path = f"{_session_path(session_id)}/activities"
        query = _page_query(page_size, page_token)
        if create_time_after:
            query["filter"] = f'create_time > "{_pivot(create_time_after)}"'
        wait = NOT_FOUND_FIRST_WAIT
        attempt = 0
        while True:
            try:
                data = self._call("GET", path, query=query)
                break
            except NotFoundError:
                if attempt >= retry_not_found:
                    raise
                # INFO, not WARNING: right after a create this is expected, not a fault.
                logger.info(
                    "Jules has no activities for %s yet; asking again in %.1f s", path, wait
                )
                self._sleep(wait)
                wait = min(wait * 2, self.backoff_cap)
                attempt += 1
        bare_id = path.split("/", 2)[1]
        activities = [Activity.from_json(a) for a in _items(data, "activities")]
        for activity in activities:
            # An activity without a name still belongs to the session that was asked.
            if not activity.session_id:
                activity.session_id = bare_id
        return Page(activities, _token(data))

    def iter_activities(
        self,
        session_id: str,
        *,
        page_size: int = 100,
        create_time_after: str | dt.datetime | None = None,
        retry_not_found: int = 0,
    ) -> Iterator[Activity]:
        """Every activity (newer than `create_time_after`), following `nextPageToken`.

        Only the first page retries a 404: once a page has been served the session exists.
        """
        return _iterate(
            lambda token: self.list_activities(
                session_id,
                page_size=page_size,
                page_token=token,
                create_time_after=create_time_after,
                retry_not_found=retry_not_found if token is None else 0,
            )
        )

    # sessions.activities.get: docs/jules-api.md#get-an-activity
    def get_activity(self, session_id: str, activity_id: str) -> Activity:
        """`activity_id` may be the bare id or the full `sessions/…/activities/…` name."""
        activity_id = activity_id.strip()
        if activity_id.startswith("sessions/"):
            path = _encode(activity_id)
        else:
            path = f"{_session_path(session_id)}/activities/{_encode(_bare(activity_id))}"
        return Activity.from_json(self._call("GET", path))

    # --- sources -------------------------------------------------------------------------

    # sources.list: docs/jules-api.md#list-sources
    def list_sources(
        self,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
        names: Sequence[str] | None = None,
    ) -> Page[Source]:
        """One page of connected repositories; `names` (names or ids) narrows it."""
        query = _page_query(page_size, page_token)
        if names:
            query["filter"] = " OR ".join(f"name={source_name(n.strip())}" for n in names)
        data = self._call("GET", "sources", query=query)
        return Page([Source.from_json(s) for s in _items(data, "sources")], _token(data))

    def iter_sources(
        self, *, page_size: int = 100, names: Sequence[str] | None = None
    ) -> Iterator[Source]:
        return _iterate(
            lambda token: self.list_sources(page_size=page_size, page_token=token, names=names)
        )

    # sources.get, a name of several segments: docs/jules-api.md#get-a-source
    def get_source(self, name_or_id: str) -> Source:
        """`sources/github/acme/billing` or its id `github/acme/billing`."""
        name = name_or_id.strip()
        if not name:
            raise ValueError("A source name is required.")
        return Source.from_json(self._call("GET", _encode(source_name(name))))

    # --- transport -----------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        idempotent: bool = True,
        not_found_after_ambiguous_ok: bool = False,
    ) -> dict[str, Any]:
        """One operation: attempts until success, a final error, or the budget runs out."""
        url = f"{self.base_url}/{path}"
        if query:
            url = f"{url}?{urlencode(query, quote_via=quote)}"
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        started = self._clock()
        # What is left of the total deadline for the next attempt; None: no deadline.
        left = self.total_timeout if math.isfinite(self.total_timeout) else None
        retries = 0
        malformed = 0
        ambiguous = False
        while True:
            try:
                if method == "GET" and self.inflight is not None:
                    return self._limited_attempt(url, left)
                return self._attempt(method, url, payload, left)
            except NotFoundError:
                if not_found_after_ambiguous_ok and ambiguous:
                    return {}
                raise
            except JulesError as error:
                if not self._may_retry(error, method, idempotent, retries, malformed):
                    raise
                wait = self._backoff(retries, error)
                spent = self._clock() - started + wait
                if spent > self.retry_budget:
                    raise
                if left is not None:
                    left = self.total_timeout - spent
                    if left <= 0:
                        raise  # No time would be left for the next attempt.
                malformed += isinstance(error, MalformedResponseError)
                ambiguous = ambiguous or not error.not_applied
                logger.warning(
                    "Jules %s %s failed: %s; retry %d of %d in %.2f s",
                    method,
                    path,
                    error,
                    retries + 1,
                    self.max_retries,
                    wait,
                )
                self._sleep(wait)
                retries += 1

    def _limited_attempt(self, url: str, left: float | None) -> dict[str, Any]:
        """A GET attempt within the adaptive limit of requests in flight (jules/inflight.py)."""
        assert self.inflight is not None
        with self.inflight.slot() as outcome:
            try:
                return self._attempt("GET", url, None, left)
            except (RateLimitedError, TransientServerError) as error:
                outcome.throttled = True
                outcome.retry_after = error.retry_after
                raise

    def _may_retry(
        self, error: JulesError, method: str, idempotent: bool, retries: int, malformed: int
    ) -> bool:
        if not error.retryable or retries >= self.max_retries:
            return False
        if isinstance(error, MalformedResponseError):
            # Only a read can be repeated for its body; a write's effect already happened.
            return method == "GET" and malformed < self.malformed_retries
        if not idempotent:
            # Resent only when surely not applied: docs/jules-api.md#non-idempotent-calls
            return error.not_applied
        return True

    def _backoff(self, retries: int, error: JulesError) -> float:
        # Full jitter: a random wait below the exponential ceiling, so clients that failed
        # together do not come back together. Retry-After is a floor, never shortened.
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0**retries)
        wait = self._random.uniform(0.0, ceiling)
        if error.retry_after is not None:
            wait = max(wait, error.retry_after)
        return wait

    def _attempt(
        self, method: str, url: str, payload: bytes | None, remaining: float | None
    ) -> dict[str, Any]:
        """One HTTP exchange, mapped to a JSON object or a `JulesError`.

        `remaining`: seconds left of the call's total deadline; the socket timeouts shrink
        to it, and a watch ends the exchange when it has passed.
        """
        with self._count_lock:
            self.request_count += 1
        timeout = self._timeout
        watch = None
        if remaining is not None:
            if remaining < self.read_timeout or remaining < self.connect_timeout:
                timeout = (min(self.connect_timeout, remaining), min(self.read_timeout, remaining))
            watch = deadlines.arm(time.monotonic() + remaining)
        try:
            try:
                if method == "GET" and self._get_headers is not None and not self._http.cookies:
                    response = self._send_get(url, timeout)
                else:
                    response = self._http.request(
                        method,
                        url,
                        data=payload,
                        headers=self._headers if payload is None else self._body_headers,
                        timeout=timeout,
                        # A redirect would carry the key header to wherever it points.
                        allow_redirects=False,
                        stream=True,
                    )
            except requests.exceptions.RequestException as exc:
                if watch is not None and watch.expired():
                    raise self._deadline_error() from None
                # `from None`: the original may quote the URL or headers, and nothing of it
                # should travel further than this line.
                raise self._transport_error(exc) from None
            content = self._read_body(response, watch)
        finally:
            if watch is not None:
                deadlines.disarm(watch)
        status = response.status_code
        if not 200 <= status < 300:
            text = content.decode("utf-8", errors="replace")
            raise self._scrubbed(error_from_response(status, text, response.headers))
        if not content or content.isspace():
            return {}  # An empty 2xx body means `{}`: docs/jules-api.md#transport
        try:
            data = loads_json(content)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to read
            raise MalformedResponseError(
                "Jules answered with a body that is not JSON.", status=status
            ) from None
        if not isinstance(data, dict):
            raise MalformedResponseError(
                "Jules answered with JSON that is not an object.", status=status
            )
        return data

    def _read_body(self, response: requests.Response, watch: deadlines.Watch | None) -> bytes:
        """The whole (decoded) body, within the size cap and the deadline."""
        limit = self.max_response_bytes
        status = response.status_code
        if limit is not None:
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > limit:
                response.close()
                raise self._too_large_error(status)
        if response.raw is None:
            # An injected session that answered with a body already read.
            content = response.content or b""
            if limit is not None and len(content) > limit:
                raise self._too_large_error(status)
            return content
        chunks: list[bytes] = []
        size = 0
        problem: JulesError | None = None
        try:
            for chunk in response.raw.stream(CHUNK_BYTES, decode_content=True):
                size += len(chunk)
                if limit is not None and size > limit:
                    problem = self._too_large_error(status)
                    break
                if watch is not None and watch.expired():
                    problem = self._deadline_error()
                    break
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if watch is not None and watch.expired():
                problem = self._deadline_error()
            else:
                problem = self._transport_error(_as_requests_error(exc))
        if problem is None and watch is not None and watch.fired:
            # The watchdog's shutdown reads as a normal end of the headers or the body.
            problem = self._deadline_error()
        if problem is not None:
            # A half-read connection cannot serve another request.
            response.close()
            raise problem
        return b"".join(chunks)

    def _deadline_error(self) -> DeadlineExceededError:
        return DeadlineExceededError(
            f"Jules did not finish answering within {self.total_timeout:g} s, the most one "
            "request may take."
        )

    def _too_large_error(self, status: int) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"The answer was larger than {self.max_response_bytes:,} bytes, the most the "
            "portal reads; it was not read.",
            status=status,
        )

    def _send_get(self, url: str, timeout: tuple[float, float]) -> requests.Response:
        """A GET as `Session.request` sends it, without its per-call merging.

        Only for a client made with `environment_once` over its own session, while the
        session holds no cookies: then the merged headers, hooks, proxies and CA settings
        are the same on every call, so they are worked out once, and the URL (built from
        a base URL that `requests` leaves unchanged, and percent-encoded paths and
        queries) needs no normalising. The same `send`, so the same errors.
        """
        assert self._get_headers is not None
        prepared = requests.PreparedRequest()
        prepared.method = "GET"
        prepared.url = url
        prepared.headers = requests.structures.CaseInsensitiveDict(self._get_headers)
        prepared.hooks = merge_hooks(prepared.hooks, self._http.hooks)
        http = self._http
        return http.send(
            prepared,
            timeout=timeout,
            allow_redirects=False,
            proxies=http.proxies,
            stream=True,
            verify=http.verify,
            cert=http.cert,
        )

    def _transport_error(self, exc: requests.exceptions.RequestException) -> JulesError:
        """A readable error for a transport failure, written here so it holds no key."""
        causes = list(_causes(exc))
        if any(isinstance(c, _CUT_OFF) for c in causes) or isinstance(
            exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
        ):
            return MalformedResponseError("The response from Jules was cut off.")
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return TransientServerError(
                f"Connecting to Jules timed out after {self.connect_timeout:g} s.", unsent=True
            )
        # A timeout while reading the body arrives wrapped as a ConnectionError.
        if isinstance(exc, requests.exceptions.ReadTimeout) or any(
            isinstance(c, urllib3.exceptions.ReadTimeoutError) for c in causes
        ):
            return TransientServerError(f"Jules did not answer within {self.read_timeout:g} s.")
        if isinstance(exc, requests.exceptions.SSLError):
            # Not counted as unsent: a TLS failure can also strike after the request went
            # out, and nothing here tells a failed handshake from a broken session.
            return TransientServerError("The secure connection to Jules failed.")
        if isinstance(exc, requests.exceptions.ConnectionError):
            if any(isinstance(c, _NOT_CONNECTED) for c in causes):
                return TransientServerError(
                    "Could not connect to Jules (refused or unreachable).", unsent=True
                )
            return TransientServerError("The connection to Jules broke before an answer.")
        if isinstance(exc, _BAD_REQUEST_SETUP):
            return JulesError(f"The request to Jules could not be made ({type(exc).__name__}).")
        return TransientServerError(f"The request to Jules failed ({type(exc).__name__}).")

    def _scrubbed(self, error: JulesError) -> JulesError:
        """The error with any echo of the key removed from its message."""
        key = self._api_key
        if key and key in error.message:
            error.message = error.message.replace(key, "<redacted>")
            error.args = (error.message,)
        return error


def _read_environment_once(http: requests.Session, base_url: str) -> None:
    """Read the proxy and CA bundle settings of the environment now, for every request.

    By default `requests` reads the environment again on every request (proxies,
    `NO_PROXY`, the CA bundle variables, `~/.netrc`), which costs a bulk reader such as
    the sync more CPU than parsing the answers. Every request of this client goes to
    `base_url`, so the answer is the same each time: `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`
    (unless `NO_PROXY` covers the host) and `REQUESTS_CA_BUNDLE`/`CURL_CA_BUNDLE` still
    apply, as read when the client is made. `~/.netrc` does not: the key header is the
    only credential this client sends.
    """
    from requests.utils import get_environ_proxies

    http.proxies.update(get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        http.verify = bundle
    http.trust_env = False


def _plain_url(url: str) -> bool:
    """Whether `requests` would send `url` unchanged (so it needs no preparing)."""
    try:
        prepared = requests.PreparedRequest()
        prepared.prepare_url(url, None)
    except requests.exceptions.RequestException:
        return False
    return prepared.url == url


def _json_float(text: str) -> float | str:
    """A JSON number as a float, or as its text when no float holds it (`1e400`)."""
    value = float(text)
    return value if math.isfinite(value) else text


# `\u0000` in a JSON string (after an even number of backslashes, so not `\\u0000`).
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


# A surrogate escape that is not half of a pair (`\ud800` alone), which no UTF-8 text
# can hold, after an even number of backslashes.
_LONE_SURROGATE = re.compile(
    rb"(?<!\\)((?:\\\\)*)(?:\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2})"
)


def loads_json(content: bytes) -> Any:
    """JSON read so that PostgreSQL can store it: docs/jules-api.md#json-reading

    Numbers too large for a float, NaN and Infinity stay text; U+0000 and lone surrogates
    become U+FFFD.
    """
    if b"\\u0000" in content:
        content = _NUL_ESCAPE.sub(rb"\1\\ufffd", content)
    if b"\\ud" in content or b"\\uD" in content:
        content = _LONE_SURROGATE.sub(rb"\1\\ufffd", content)
    return json.loads(content, parse_float=_json_float, parse_constant=str)


# Transport failures that mean the body was cut short: a fault of the response, not of
# the connection, so they are malformed responses (retryable for reads only).
_CUT_OFF = (urllib3.exceptions.IncompleteRead, HttpIncompleteRead)
# Failures before a connection existed: the request surely never reached the service.
_NOT_CONNECTED = (urllib3.exceptions.NewConnectionError, ConnectionRefusedError)
# Mistakes in what the client was asked to send; trying again cannot help.
_BAD_REQUEST_SETUP = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
)


def _as_requests_error(exc: BaseException) -> requests.exceptions.RequestException:
    """A failure while reading a body as `requests` would have raised it (`iter_content`)."""
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return requests.exceptions.ChunkedEncodingError(exc)
    if isinstance(exc, urllib3.exceptions.DecodeError):
        return requests.exceptions.ContentDecodingError(exc)
    if isinstance(exc, urllib3.exceptions.SSLError):
        return requests.exceptions.SSLError(exc)
    return requests.exceptions.ConnectionError(exc)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (urllib3 nests the root cause in `reason`
    and in `args`)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for inner in (
            getattr(current, "reason", None),
            current.__cause__,
            current.__context__,
            *current.args,
        ):
            if isinstance(inner, BaseException):
                stack.append(inner)


def _encode(name: str) -> str:
    """A resource name as a URL path: slashes kept, other non-path characters escaped so an
    odd id cannot become a query or fragment (docs/jules-api.md#names-and-ids)."""
    return quote(name, safe="/")


def _bare(session_id: str) -> str:
    return session_id.rsplit("/", 1)[-1]


def _session_path(session_id: str) -> str:
    """`sessions/{id}` from an id or a full name."""
    value = session_id.strip()
    if value.startswith("sessions/"):
        value = value[len("sessions/") :]
    if not value or "/" in value:
        raise ValueError(f"Not a Jules session id or name: {session_id!r}")
    return f"sessions/{_encode(value)}"


def _page_query(page_size: int | None, page_token: str | None) -> dict[str, str]:
    # Absent or 0 means the service's default size; larger than 100 it clamps itself.
    query: dict[str, str] = {}
    if page_size:
        query["pageSize"] = str(page_size)
    if page_token:
        query["pageToken"] = page_token
    return query


def _pivot(value: str | dt.datetime) -> str:
    text = format_time(value) if isinstance(value, dt.datetime) else value.strip()
    if '"' in text or "\\" in text:
        raise ValueError(f"Not a timestamp: {value!r}")
    return text


def _items(data: dict[str, Any], key: str) -> list[Any]:
    # A missing list or `{}` is an empty page: docs/jules-api.md#empty-lists
    value = data.get(key)
    if value is None or value == {}:
        return []
    if not isinstance(value, list):
        raise MalformedResponseError(f"Jules sent a list whose '{key}' is not a list.", status=200)
    return value


def _token(data: dict[str, Any]) -> str | None:
    token = data.get("nextPageToken")
    return token if isinstance(token, str) and token else None


def _session_or_none(data: dict[str, Any]) -> Session | None:
    return Session.from_json(data) if data.get("name") or data.get("id") else None


def _iterate(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Follow `nextPageToken` (sent back as `pageToken`) until a page has none."""
    token: str | None = None
    while True:
        page = fetch(token)
        yield from page.items
        if page.next_page_token is None:
            return
        if page.next_page_token == token:
            # The same token again would loop forever; the service is not paging.
            raise MalformedResponseError(
                "Jules returned the same page token twice; stopped paging.", status=200
            )
        token = page.next_page_token
