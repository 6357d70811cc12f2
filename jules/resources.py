"""Typed, tolerant views of the Jules API's resources (docs/jules-api.md#resources).

The schema drifts and proto3 omits defaults, so parsing never fails on missing or unknown
fields and keeps the JSON in `raw` (docs/jules-api.md#json-conventions).

Parsing is on the sync hot path (thousands of sessions, tens of thousands of activities),
so it reads each field once with plain dict lookups and keeps per-field work small.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from jules.errors import MalformedResponseError

T = TypeVar("T")

# --- session states: docs/jules-api.md#session-states ---------------------------------

STATE_UNSPECIFIED = "STATE_UNSPECIFIED"
QUEUED = "QUEUED"
PLANNING = "PLANNING"
AWAITING_PLAN_APPROVAL = "AWAITING_PLAN_APPROVAL"
AWAITING_USER_FEEDBACK = "AWAITING_USER_FEEDBACK"
IN_PROGRESS = "IN_PROGRESS"
PAUSED = "PAUSED"
FAILED = "FAILED"
COMPLETED = "COMPLETED"

STATES = frozenset(
    {
        STATE_UNSPECIFIED,
        QUEUED,
        PLANNING,
        AWAITING_PLAN_APPROVAL,
        AWAITING_USER_FEEDBACK,
        IN_PROGRESS,
        PAUSED,
        FAILED,
        COMPLETED,
    }
)
# The SDK's groups; COMPLETED is "terminal" but revives: docs/jules-api.md#state-groups
TERMINAL_STATES = frozenset({COMPLETED, FAILED})
NEEDS_USER_STATES = frozenset({AWAITING_PLAN_APPROVAL, AWAITING_USER_FEEDBACK})
BUSY_STATES = frozenset({QUEUED, PLANNING, IN_PROGRESS})


def normalize_state(value: Any) -> str:
    """A known state name, or STATE_UNSPECIFIED for anything else (the raw stays in `raw`)."""
    # A non-string (a list or an object from a drifting schema) is not hashable: no `in`.
    return value if isinstance(value, str) and value in STATES else STATE_UNSPECIFIED


def is_terminal(state: str) -> bool:
    return state in TERMINAL_STATES


def needs_user(state: str) -> bool:
    return state in NEEDS_USER_STATES


def is_busy(state: str) -> bool:
    return state in BUSY_STATES


# --- automation modes, activity and artifact kinds -------------------------------------

AUTOMATION_MODE_UNSPECIFIED = "AUTOMATION_MODE_UNSPECIFIED"
AUTO_CREATE_PR = "AUTO_CREATE_PR"
AUTOMATION_MODES = frozenset({AUTOMATION_MODE_UNSPECIFIED, AUTO_CREATE_PR})

AGENT_MESSAGED = "agentMessaged"
USER_MESSAGED = "userMessaged"
PLAN_GENERATED = "planGenerated"
PLAN_APPROVED = "planApproved"
PROGRESS_UPDATED = "progressUpdated"
SESSION_COMPLETED = "sessionCompleted"
SESSION_FAILED = "sessionFailed"
UNKNOWN = "unknown"
ACTIVITY_KINDS = (
    AGENT_MESSAGED,
    USER_MESSAGED,
    PLAN_GENERATED,
    PLAN_APPROVED,
    PROGRESS_UPDATED,
    SESSION_COMPLETED,
    SESSION_FAILED,
)

CHANGE_SET = "changeSet"
MEDIA = "media"
BASH_OUTPUT = "bashOutput"
ARTIFACT_KINDS = (CHANGE_SET, MEDIA, BASH_OUTPUT)

# --- timestamps: docs/jules-api.md#timestamps --------------------------------------------

_UTC = dt.UTC
_fromisoformat = dt.datetime.fromisoformat
_FRACTION = re.compile(r"\.(\d+)")


def parse_time(value: Any) -> dt.datetime | None:
    """RFC 3339 with 0, 3, 6 or 9 fractional digits and `Z` or an offset, as aware UTC.

    Nanoseconds are truncated to microseconds, which is all `datetime` holds. Anything
    unreadable gives None. Python 3.11's `fromisoformat` reads the service's usual
    `2025-10-03T05:43:42.801654Z` directly, so the slow path below runs only for odd
    inputs (lower-case `z`, more than six digits on runtimes that refuse them).
    """
    if not isinstance(value, str) or not value:
        return None
    parsed: dt.datetime | None
    try:
        parsed = _fromisoformat(value)
    except ValueError:
        parsed = _parse_time_slowly(value)
        if parsed is None:
            return None
    tz = parsed.tzinfo
    if tz is _UTC:
        return parsed
    if tz is None:
        # RFC 3339 always carries a zone; a bare local time from a drifting schema is most
        # plausibly UTC, which is what the service writes everywhere else.
        return parsed.replace(tzinfo=_UTC)
    try:
        return parsed.astimezone(_UTC)
    except OverflowError:
        # Year 1 ahead of UTC, or year 9999 behind it: no datetime holds it in UTC.
        return None


def _parse_time_slowly(value: str) -> dt.datetime | None:
    text = value.strip().replace("t", "T")
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    match = _FRACTION.search(text)
    if match is not None:
        digits = match.group(1)[:6]
        text = text[: match.start()] + "." + digits + text[match.end() :]
    try:
        return _fromisoformat(text)
    except ValueError:
        return None


def format_time(value: dt.datetime) -> str:
    """The microsecond `Z` form the live service writes (`2025-10-03T05:43:42.801654Z`)."""
    return value.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- tolerant field readers --------------------------------------------------------------
# Each takes whatever the JSON held and returns the field's type, falling back to the
# proto3 default; these are what make a nested oddity degrade instead of crash.

# Shared and read-only: absent sub-objects are common, so they cost no allocation. It is
# never stored in a resource's `raw`, where a caller might mutate it.
_EMPTY: dict[str, Any] = {}


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _id(value: Any) -> str:
    """Ids are strings (session ids exceed 2^53); a number from a drifting schema is
    turned into its exact decimal text rather than dropped."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _int(value: Any) -> int:
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return 0
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return 0


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _require_object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MalformedResponseError(
            f"Jules sent a {what} that is not a JSON object ({type(data).__name__})."
        )
    return data


# --- sessions: docs/jules-api.md#session -------------------------------------------------

_PR_NUMBER = re.compile(r"/pull/(\d+)")


@dataclass(slots=True)
class PullRequest:
    url: str = ""
    title: str = ""
    description: str = ""
    base_ref: str = ""
    head_ref: str = ""

    @property
    def number(self) -> int | None:
        """The PR number, parsed from the URL: the API has no number field."""
        match = _PR_NUMBER.search(self.url)
        return int(match.group(1)) if match else None


@dataclass(slots=True)
class ChangeSet:
    source: str = ""
    unidiff_patch: str = ""
    base_commit_id: str = ""
    suggested_commit_message: str = ""


def _pull_request(value: Any) -> PullRequest:
    data = _obj(value)
    return PullRequest(
        url=_str(data.get("url")),
        title=_str(data.get("title")),
        description=_str(data.get("description")),
        base_ref=_str(data.get("baseRef")),
        head_ref=_str(data.get("headRef")),
    )


def _change_set(value: Any) -> ChangeSet:
    data = _obj(value)
    patch = _obj(data.get("gitPatch"))
    return ChangeSet(
        source=_str(data.get("source")),
        unidiff_patch=_str(patch.get("unidiffPatch")),
        base_commit_id=_str(patch.get("baseCommitId")),
        suggested_commit_message=_str(patch.get("suggestedCommitMessage")),
    )


@dataclass(slots=True)
class SessionOutput:
    """One entry of `outputs[]`: a pull request or a change set (either may be None)."""

    pull_request: PullRequest | None = None
    change_set: ChangeSet | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def _session_output(value: Any) -> SessionOutput:
    data = value if isinstance(value, dict) else {}
    pr = data.get("pullRequest")
    cs = data.get("changeSet")
    return SessionOutput(
        pull_request=None if pr is None else _pull_request(pr),
        change_set=None if cs is None else _change_set(cs),
        raw=data,
    )


@dataclass(slots=True)
class Session:
    name: str = ""
    id: str = ""
    prompt: str = ""
    title: str = ""
    state: str = STATE_UNSPECIFIED
    source: str = ""
    starting_branch: str = ""
    working_branch: str = ""
    environment_variables_enabled: bool = False
    # Input-only fields that reads may not echo: None means "not said", not "false".
    require_plan_approval: bool | None = None
    automation_mode: str = ""
    create_time: dt.datetime | None = None
    update_time: dt.datetime | None = None
    url: str = ""
    archived: bool = False
    outputs: list[SessionOutput] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> Session:
        data = _require_object(data, "session")
        get = data.get
        name = _str(get("name"))
        session_id = _id(get("id")) or (name[9:] if name.startswith("sessions/") else "")
        context = _obj(get("sourceContext"))
        outputs = get("outputs")
        approval = get("requirePlanApproval")
        return cls(
            name=name or (f"sessions/{session_id}" if session_id else ""),
            id=session_id,
            prompt=_str(get("prompt")),
            title=_str(get("title")),
            state=normalize_state(get("state")),
            source=_str(context.get("source")),
            starting_branch=_str(_obj(context.get("githubRepoContext")).get("startingBranch")),
            working_branch=_str(context.get("workingBranch")),
            environment_variables_enabled=context.get("environmentVariablesEnabled") is True,
            require_plan_approval=approval if isinstance(approval, bool) else None,
            automation_mode=_str(get("automationMode")),
            create_time=parse_time(get("createTime")),
            update_time=parse_time(get("updateTime")),
            url=_str(get("url")),
            archived=get("archived") is True,
            outputs=[_session_output(o) for o in outputs] if isinstance(outputs, list) else [],
            raw=data,
        )

    @property
    def web_url(self) -> str:
        """The web app link: `url`, else the pattern of docs/jules-api.md#names-and-ids."""
        if self.url or not self.id:
            return self.url
        return f"https://jules.google.com/session/{self.id}"

    @property
    def state_raw(self) -> str:
        """The state exactly as sent, for states newer than this client."""
        return _str(self.raw.get("state"))

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def needs_user(self) -> bool:
        return self.state in NEEDS_USER_STATES

    @property
    def pull_request(self) -> PullRequest | None:
        return next((o.pull_request for o in self.outputs if o.pull_request), None)

    @property
    def change_set(self) -> ChangeSet | None:
        return next((o.change_set for o in self.outputs if o.change_set), None)


# --- activities: docs/jules-api.md#activity ----------------------------------------------


@dataclass(slots=True)
class PlanStep:
    id: str = ""
    title: str = ""
    description: str = ""
    index: int = 0


@dataclass(slots=True)
class Plan:
    id: str = ""
    steps: list[PlanStep] = field(default_factory=list)
    create_time: dt.datetime | None = None


def _plan(value: Any) -> Plan:
    data = _obj(value)
    steps = []
    for item in _list(data.get("steps")):
        step = _obj(item)
        steps.append(
            PlanStep(
                id=_id(step.get("id")),
                title=_str(step.get("title")),
                description=_str(step.get("description")),
                index=_int(step.get("index")),
            )
        )
    return Plan(id=_id(data.get("id")), steps=steps, create_time=parse_time(data.get("createTime")))


@dataclass(slots=True)
class Media:
    data: str = ""  # base64, as sent; decoding is the reader's business
    mime_type: str = ""


@dataclass(slots=True)
class BashOutput:
    command: str = ""
    output: str = ""
    exit_code: int = 0


@dataclass(slots=True)
class Artifact:
    kind: str = UNKNOWN
    change_set: ChangeSet | None = None
    media: Media | None = None
    bash_output: BashOutput | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def _artifact(value: Any) -> Artifact:
    data = value if isinstance(value, dict) else {}
    if CHANGE_SET in data:
        return Artifact(CHANGE_SET, change_set=_change_set(data[CHANGE_SET]), raw=data)
    if MEDIA in data:
        media = _obj(data[MEDIA])
        return Artifact(
            MEDIA,
            media=Media(data=_str(media.get("data")), mime_type=_str(media.get("mimeType"))),
            raw=data,
        )
    if BASH_OUTPUT in data:
        bash = _obj(data[BASH_OUTPUT])
        return Artifact(
            BASH_OUTPUT,
            bash_output=BashOutput(
                command=_str(bash.get("command")),
                output=_str(bash.get("output")),
                exit_code=_int(bash.get("exitCode")),
            ),
            raw=data,
        )
    return Artifact(UNKNOWN, raw=data)


@dataclass(slots=True)
class Activity:
    name: str = ""
    id: str = ""
    session_id: str = ""
    description: str = ""
    create_time: dt.datetime | None = None
    # Verbatim, because it is the pivot of the incremental `create_time >` filter and a
    # reformatted value could differ in precision or zone spelling.
    create_time_raw: str = ""
    originator: str = "system"
    kind: str = UNKNOWN
    agent_message: str = ""
    user_message: str = ""
    plan: Plan | None = None
    approved_plan_id: str = ""
    progress_title: str = ""
    progress_description: str = ""
    failure_reason: str = ""
    artifacts: list[Artifact] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> Activity:
        data = _require_object(data, "activity")
        get = data.get
        name = _str(get("name"))
        # sessions/{session}/activities/{activity}
        parts = name.split("/")
        named = len(parts) == 4 and parts[0] == "sessions" and parts[2] == "activities"
        raw_time = _str(get("createTime"))
        artifacts = get("artifacts")
        activity = cls(
            name=name,
            id=_id(get("id")) or (parts[3] if named else ""),
            session_id=parts[1] if named else "",
            description=_str(get("description")),
            create_time=parse_time(raw_time),
            create_time_raw=raw_time,
            # Not an enum: keep whatever string came, with the SDK's default when absent.
            originator=_str(get("originator")) or "system",
            artifacts=[_artifact(a) for a in artifacts] if isinstance(artifacts, list) else [],
            raw=data,
        )
        for kind in ACTIVITY_KINDS:
            if kind in data:
                activity.kind = kind
                _fill_payload(activity, kind, _obj(data[kind]))
                break
        return activity


def _fill_payload(activity: Activity, kind: str, payload: dict[str, Any]) -> None:
    if kind == AGENT_MESSAGED:
        activity.agent_message = _str(payload.get("agentMessage"))
    elif kind == USER_MESSAGED:
        activity.user_message = _str(payload.get("userMessage"))
    elif kind == PLAN_GENERATED:
        activity.plan = _plan(payload.get("plan"))
    elif kind == PLAN_APPROVED:
        activity.approved_plan_id = _id(payload.get("planId"))
    elif kind == PROGRESS_UPDATED:
        activity.progress_title = _str(payload.get("title"))
        activity.progress_description = _str(payload.get("description"))
    elif kind == SESSION_FAILED:
        activity.failure_reason = _str(payload.get("reason"))
    # sessionCompleted has no fields.


# --- sources: docs/jules-api.md#source --------------------------------------------------


def _branch_name(value: Any) -> str:
    # GitHubBranch is {displayName}; a bare string (the SDK's flattened form) is accepted.
    if isinstance(value, str):
        return value
    return _str(_obj(value).get("displayName"))


@dataclass(slots=True)
class Source:
    name: str = ""
    id: str = ""
    owner: str = ""
    repo: str = ""
    is_private: bool = False
    default_branch: str | None = None
    branches: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> Source:
        data = _require_object(data, "source")
        name = _str(data.get("name"))
        source_id = _id(data.get("id")) or (name[8:] if name.startswith("sources/") else "")
        repo = _obj(data.get("githubRepo"))
        default_branch = _branch_name(repo.get("defaultBranch"))
        return cls(
            name=name or (f"sources/{source_id}" if source_id else ""),
            id=source_id,
            owner=_str(repo.get("owner")),
            repo=_str(repo.get("repo")),
            is_private=repo.get("isPrivate") is True,
            default_branch=default_branch or None,
            branches=[b for b in map(_branch_name, _list(repo.get("branches"))) if b],
            raw=data,
        )


# --- pages -------------------------------------------------------------------------------


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of a list; `next_page_token` is None on the last page."""

    items: list[T]
    next_page_token: str | None = None


# --- request bodies ----------------------------------------------------------------------


def source_name(source: str) -> str:
    """`sources/github/acme/billing` from either that or the id `github/acme/billing`."""
    return source if source.startswith("sources/") else f"sources/{source}"


def create_body(
    *,
    prompt: str,
    source: str | None = None,
    starting_branch: str | None = None,
    title: str | None = None,
    require_plan_approval: bool | None = None,
    automation_mode: str | None = None,
) -> dict[str, Any]:
    """The body of sessions.create: the bare Session, not `{"session": ...}`.

    Unset (None) fields are omitted; no source means repoless. A missing branch is not
    guessed (a default may be `master`) but left for the service to reject with
    INVALID_ARGUMENT (docs/jules-api.md#create-a-session).
    """
    body: dict[str, Any] = {"prompt": prompt}
    if source:
        repo_context: dict[str, Any] = {}
        if starting_branch:
            repo_context["startingBranch"] = starting_branch
        body["sourceContext"] = {
            "source": source_name(source),
            "githubRepoContext": repo_context,
        }
    if title:
        body["title"] = title
    if require_plan_approval is not None:
        body["requirePlanApproval"] = require_plan_approval
    if automation_mode:
        body["automationMode"] = automation_mode
    return body
