"""Typed, tolerant views of the Jules API's resources (jules-api.md §5).

Parsing never fails on omitted defaults, unknown fields, unknown enum values or unknown
activity and artifact kinds; the raw JSON is kept on every resource so nothing the
service sent is lost. Only a resource that is not a JSON object at all is malformed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sessions_app.jules.errors import MalformedResponseError

T = TypeVar("T")

STATES = frozenset(
    {
        "STATE_UNSPECIFIED",
        "QUEUED",
        "PLANNING",
        "AWAITING_PLAN_APPROVAL",
        "AWAITING_USER_FEEDBACK",
        "IN_PROGRESS",
        "PAUSED",
        "FAILED",
        "COMPLETED",
    }
)
ACTIVITY_KINDS = (
    "agentMessaged",
    "userMessaged",
    "planGenerated",
    "planApproved",
    "progressUpdated",
    "sessionCompleted",
    "sessionFailed",
)
AUTOMATION_MODES = frozenset({"AUTOMATION_MODE_UNSPECIFIED", "AUTO_CREATE_PR"})


def parse_time(value: Any) -> dt.datetime | None:
    """RFC 3339 with 0 to 9 fractional digits and `Z` or an offset, as aware UTC."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    dot = text.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        fraction = text[dot + 1 : end][:6].ljust(6, "0")
        text = text[: dot + 1] + fraction + text[end:]
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def format_time(value: dt.datetime) -> str:
    """Microsecond `Z` form, as the live service writes it."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return 0
    return 0


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _require_object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MalformedResponseError(f"Expected a {what} object, got {type(data).__name__}.")
    return data


@dataclass(slots=True)
class PullRequest:
    url: str = ""
    title: str = ""
    description: str = ""
    base_ref: str = ""
    head_ref: str = ""

    @property
    def number(self) -> int | None:
        tail = self.url.rstrip("/").rsplit("/", 1)[-1]
        return int(tail) if tail.isdigit() else None


@dataclass(slots=True)
class ChangeSet:
    source: str = ""
    unidiff_patch: str = ""
    base_commit_id: str = ""
    suggested_commit_message: str = ""


def _change_set(data: Any) -> ChangeSet:
    data = _obj(data)
    patch = _obj(data.get("gitPatch"))
    return ChangeSet(
        source=_str(data.get("source")),
        unidiff_patch=_str(patch.get("unidiffPatch")),
        base_commit_id=_str(patch.get("baseCommitId")),
        suggested_commit_message=_str(patch.get("suggestedCommitMessage")),
    )


@dataclass(slots=True)
class SessionOutput:
    pull_request: PullRequest | None = None
    change_set: ChangeSet | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Session:
    id: str
    name: str = ""
    prompt: str = ""
    title: str = ""
    state: str = "STATE_UNSPECIFIED"
    source: str = ""
    starting_branch: str = ""
    working_branch: str = ""
    environment_variables_enabled: bool = False
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
        data = _require_object(data, "Session")
        name = _str(data.get("name"))
        session_id = _str(data.get("id")) or name.removeprefix("sessions/")
        context = _obj(data.get("sourceContext"))
        repo_context = _obj(context.get("githubRepoContext"))
        state = _str(data.get("state")) or "STATE_UNSPECIFIED"
        outputs = []
        for item in _list(data.get("outputs")):
            item = _obj(item)
            pr = _obj(item.get("pullRequest")) if "pullRequest" in item else None
            outputs.append(
                SessionOutput(
                    pull_request=PullRequest(
                        url=_str(pr.get("url")),
                        title=_str(pr.get("title")),
                        description=_str(pr.get("description")),
                        base_ref=_str(pr.get("baseRef")),
                        head_ref=_str(pr.get("headRef")),
                    )
                    if pr is not None
                    else None,
                    change_set=_change_set(item["changeSet"]) if "changeSet" in item else None,
                    raw=item,
                )
            )
        approval = data.get("requirePlanApproval")
        return cls(
            id=session_id,
            name=name or f"sessions/{session_id}",
            prompt=_str(data.get("prompt")),
            title=_str(data.get("title")),
            state=state if state in STATES else "STATE_UNSPECIFIED",
            source=_str(context.get("source")),
            starting_branch=_str(repo_context.get("startingBranch")),
            working_branch=_str(context.get("workingBranch")),
            environment_variables_enabled=context.get("environmentVariablesEnabled") is True,
            require_plan_approval=approval if isinstance(approval, bool) else None,
            automation_mode=_str(data.get("automationMode")),
            create_time=parse_time(data.get("createTime")),
            update_time=parse_time(data.get("updateTime")),
            url=_str(data.get("url")),
            archived=data.get("archived") is True,
            outputs=outputs,
            raw=data,
        )


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


@dataclass(slots=True)
class Media:
    data: str = ""
    mime_type: str = ""


@dataclass(slots=True)
class BashOutput:
    command: str = ""
    output: str = ""
    exit_code: int = 0


@dataclass(slots=True)
class Artifact:
    kind: str
    change_set: ChangeSet | None = None
    media: Media | None = None
    bash_output: BashOutput | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def _artifact(data: Any) -> Artifact:
    data = _obj(data)
    if "changeSet" in data:
        return Artifact("changeSet", change_set=_change_set(data["changeSet"]), raw=data)
    if "media" in data:
        media = _obj(data["media"])
        return Artifact(
            "media",
            media=Media(data=_str(media.get("data")), mime_type=_str(media.get("mimeType"))),
            raw=data,
        )
    if "bashOutput" in data:
        bash = _obj(data["bashOutput"])
        return Artifact(
            "bashOutput",
            bash_output=BashOutput(
                command=_str(bash.get("command")),
                output=_str(bash.get("output")),
                exit_code=_int(bash.get("exitCode")),
            ),
            raw=data,
        )
    return Artifact("unknown", raw=data)


@dataclass(slots=True)
class Activity:
    id: str
    name: str = ""
    session_id: str = ""
    description: str = ""
    create_time: dt.datetime | None = None
    create_time_raw: str = ""
    originator: str = "system"
    kind: str = "unknown"
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
        data = _require_object(data, "Activity")
        name = _str(data.get("name"))
        parts = name.split("/")
        activity_id = _str(data.get("id")) or (parts[-1] if len(parts) == 4 else "")
        raw_time = _str(data.get("createTime"))
        kind = next((k for k in ACTIVITY_KINDS if k in data), "unknown")
        payload = _obj(data.get(kind)) if kind != "unknown" else {}
        plan = None
        if kind == "planGenerated":
            plan_data = _obj(payload.get("plan"))
            plan = Plan(
                id=_str(plan_data.get("id")),
                create_time=parse_time(plan_data.get("createTime")),
                steps=[
                    PlanStep(
                        id=_str(step.get("id")),
                        title=_str(step.get("title")),
                        description=_str(step.get("description")),
                        index=_int(step.get("index")),
                    )
                    for step in map(_obj, _list(plan_data.get("steps")))
                ],
            )
        return cls(
            id=activity_id,
            name=name,
            session_id=parts[1] if len(parts) >= 2 and parts[0] == "sessions" else "",
            description=_str(data.get("description")),
            create_time=parse_time(raw_time),
            create_time_raw=raw_time,
            originator=_str(data.get("originator")) or "system",
            kind=kind,
            agent_message=_str(payload.get("agentMessage")),
            user_message=_str(payload.get("userMessage")),
            plan=plan,
            approved_plan_id=_str(payload.get("planId")),
            progress_title=_str(payload.get("title")) if kind == "progressUpdated" else "",
            progress_description=(
                _str(payload.get("description")) if kind == "progressUpdated" else ""
            ),
            failure_reason=_str(payload.get("reason")),
            artifacts=[_artifact(a) for a in _list(data.get("artifacts"))],
            raw=data,
        )


@dataclass(slots=True)
class Source:
    name: str
    id: str = ""
    owner: str = ""
    repo: str = ""
    is_private: bool = False
    default_branch: str = ""
    branches: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> Source:
        data = _require_object(data, "Source")
        name = _str(data.get("name"))
        repo = _obj(data.get("githubRepo"))
        return cls(
            name=name,
            id=_str(data.get("id")) or name.removeprefix("sources/"),
            owner=_str(repo.get("owner")),
            repo=_str(repo.get("repo")),
            is_private=repo.get("isPrivate") is True,
            default_branch=_str(_obj(repo.get("defaultBranch")).get("displayName")),
            branches=[
                _str(_obj(b).get("displayName"))
                for b in _list(repo.get("branches"))
                if _str(_obj(b).get("displayName"))
            ],
            raw=data,
        )


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str | None = None


def create_body(
    *,
    prompt: str,
    source: str | None = None,
    starting_branch: str | None = None,
    title: str | None = None,
    require_plan_approval: bool | None = None,
    automation_mode: str | None = None,
) -> dict[str, Any]:
    """The bare Session body of sessions.create; unset fields are omitted (§3)."""
    body: dict[str, Any] = {"prompt": prompt}
    if source:
        body["sourceContext"] = {
            "source": source if source.startswith("sources/") else f"sources/{source}",
            "githubRepoContext": {"startingBranch": starting_branch or "main"},
        }
    if title:
        body["title"] = title
    if require_plan_approval is not None:
        body["requirePlanApproval"] = require_plan_approval
    if automation_mode:
        body["automationMode"] = automation_mode
    return body
