"""Request validation the way Google front ends do it: proto3 JSON, query binding, filters.

Bodies are parsed against the message they bind to: unknown fields, wrong types and bad enum
values are 400 INVALID_ARGUMENT with the front end's wording; `null` means unset; both the
lowerCamelCase and the original snake_case names are accepted, as proto3 JSON parsers do.
Query parameters must name a request field (or a Google system parameter), which is why
`createTime=` is a 400 on activities.list (docs/jules-api.md#query-parameters).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jules_simulator.clock import parse_ts_ns
from jules_simulator.errors import invalid
from jules_simulator.model import AUTOMATION_MODES, STATES

ENUM_PREFIX = "type.googleapis.com/google.labs.jules.v1alpha"
# Standard parameters every Google API accepts in the query string; ignored here (responses
# are always compact JSON). `key` is one, but the simulator authenticates by header only.
SYSTEM_PARAMETERS = {
    "$.xgafv",
    "access_token",
    "alt",
    "callback",
    "fields",
    "key",
    "oauth_token",
    "prettyPrint",
    "quotaUser",
    "uploadType",
    "upload_protocol",
}
LIST_PARAMETERS = {"pageSize": "pageSize", "page_size": "pageSize", "pageToken": "pageToken"}
LIST_PARAMETERS |= {"page_token": "pageToken", "filter": "filter"}


@dataclass(frozen=True)
class Field:
    json_name: str
    proto_name: str
    kind: str  # string, bool, timestamp, list, enum, or message
    enum: tuple[str, ...] = ()
    enum_type: str = ""
    message: dict[str, Field] | None = None


def _fields(*fields: Field) -> dict[str, Field]:
    table = {f.json_name: f for f in fields}
    table |= {f.proto_name: f for f in fields}
    return table


GITHUB_REPO_CONTEXT = _fields(Field("startingBranch", "starting_branch", "string"))
SOURCE_CONTEXT = _fields(
    Field("source", "source", "string"),
    Field("githubRepoContext", "github_repo_context", "message", message=GITHUB_REPO_CONTEXT),
    Field("workingBranch", "working_branch", "string"),
    Field("environmentVariablesEnabled", "environment_variables_enabled", "bool"),
)
SESSION = _fields(
    Field("name", "name", "string"),
    Field("id", "id", "string"),
    Field("prompt", "prompt", "string"),
    Field("sourceContext", "source_context", "message", message=SOURCE_CONTEXT),
    Field("title", "title", "string"),
    Field("requirePlanApproval", "require_plan_approval", "bool"),
    Field(
        "automationMode",
        "automation_mode",
        "enum",
        AUTOMATION_MODES,
        f"{ENUM_PREFIX}.AutomationMode",
    ),
    Field("createTime", "create_time", "timestamp"),
    Field("updateTime", "update_time", "timestamp"),
    Field("state", "state", "enum", STATES, f"{ENUM_PREFIX}.Session.State"),
    Field("url", "url", "string"),
    Field("outputs", "outputs", "list"),
    Field("archived", "archived", "bool"),
)
SEND_MESSAGE = _fields(Field("prompt", "prompt", "string"))
EMPTY: dict[str, Field] = {}


def parse_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is `{}`."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        position = getattr(exc, "pos", 0)
        raise invalid(
            f"Invalid JSON payload received. Unexpected token at position {position}."
        ) from None
    if not isinstance(data, dict):
        raise invalid(
            'Invalid JSON payload received. Unknown name "": Root element must be a message.'
        )
    return data


def _where(at: str | None, proto_name: str) -> str:
    return f"{at}.{proto_name}" if at else proto_name


def _bad_value(at: str, type_name: str, value: Any) -> Exception:
    return invalid(
        f"Invalid value at '{at}' ({type_name}), {json.dumps(value, ensure_ascii=False)}", at
    )


def read_message(data: dict[str, Any], fields: dict[str, Field], at: str | None) -> dict[str, Any]:
    """Check `data` against a message; return its set fields by lowerCamelCase name."""
    result: dict[str, Any] = {}
    for name, value in data.items():
        spec = fields.get(name)
        if spec is None:
            where = f" at '{at}'" if at else ""
            raise invalid(
                f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.',
                at or name,
            )
        if value is None:
            continue  # proto3 JSON: null is the default value, i.e. unset.
        where = _where(at, spec.proto_name)
        result[spec.json_name] = _read_value(spec, value, where)
    return result


def _read_value(spec: Field, value: Any, where: str) -> Any:
    if spec.kind == "string":
        if not isinstance(value, str):
            raise _bad_value(where, "TYPE_STRING", value)
        return value
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise _bad_value(where, "TYPE_BOOL", value)
        return value
    if spec.kind == "timestamp":
        if not isinstance(value, str) or parse_ts_ns(value) is None:
            raise invalid(
                f"Invalid value at '{where}' (type.googleapis.com/google.protobuf.Timestamp), {json.dumps(value)}",
                where,
            )
        return value
    if spec.kind == "list":
        if not isinstance(value, list):
            raise invalid(f"Invalid value at '{where}', expected a list.", where)
        return value
    if spec.kind == "enum":
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(spec.enum):
            return spec.enum[value]
        if isinstance(value, str) and value in spec.enum:
            return value
        raise _bad_value(where, spec.enum_type, value)
    if not isinstance(value, dict):
        raise invalid(f"Invalid value at '{where}', expected an object.", where)
    return read_message(value, spec.message or {}, where)


def create_fields(data: dict[str, Any]) -> dict[str, Any]:
    """sessions.create: the bare Session, input fields checked, output fields ignored."""
    session = read_message(data, SESSION, "session")
    prompt = session.get("prompt", "")
    if not prompt.strip():
        raise invalid("Invalid argument: session.prompt is required.", "session.prompt")
    fields: dict[str, Any] = {"prompt": prompt}
    if session.get("title"):
        fields["title"] = session["title"]
    fields["require_plan_approval"] = session.get("requirePlanApproval", False)
    fields["automation_mode"] = session.get("automationMode", "")
    context = session.get("sourceContext")
    if context is not None:
        if not context.get("source"):
            raise invalid(
                "Invalid argument: session.source_context.source is required.",
                "session.source_context.source",
            )
        branch = (context.get("githubRepoContext") or {}).get("startingBranch", "")
        if not branch:
            raise invalid(
                "Invalid argument: session.source_context.github_repo_context.starting_branch "
                "is required.",
                "session.source_context.github_repo_context.starting_branch",
            )
        fields["source"] = context["source"]
        fields["starting_branch"] = branch
        fields["env_vars"] = context.get("environmentVariablesEnabled", False)
    return fields


def message_prompt(data: dict[str, Any]) -> str:
    prompt = read_message(data, SEND_MESSAGE, None).get("prompt", "")
    if not prompt.strip():
        raise invalid("Invalid argument: prompt is required.", "prompt")
    return str(prompt)


def empty_request(data: dict[str, Any]) -> None:
    read_message(data, EMPTY, None)


def check_query(query: dict[str, list[str]], allowed: dict[str, str]) -> dict[str, str]:
    """Bind query parameters to request fields; an unknown one is a 400, as live."""
    bound: dict[str, str] = {}
    for name, values in query.items():
        if name in SYSTEM_PARAMETERS:
            continue
        if name not in allowed:
            raise invalid(
                f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query '
                f"parameter. Field '{name}' could not be found in request message.",
            )
        bound[allowed[name]] = values[0]
    return bound


def page_size(raw: str | None, default: int) -> int:
    """0 or absent: the default; over 100: clamped; negative: 400 (docs/jules-api.md#pagination)"""
    if raw is None or raw == "":
        return default
    try:
        size = int(raw)
    except ValueError:
        raise invalid(
            f"Invalid value at 'page_size' (TYPE_INT32), \"{raw}\"", "page_size"
        ) from None
    if size < 0:
        raise invalid("Invalid argument: page_size must not be negative.", "page_size")
    if size == 0:
        return default
    return min(size, 100)


ARCHIVED_ONLY = re.compile(r"^\s*archived\s*=\s*true\s*$")
ARCHIVED_BOTH = re.compile(
    r"^\s*archived\s*=\s*(true|false)\s+OR\s+archived\s*=\s*(true|false)\s*$"
)
CREATE_TIME_AFTER = re.compile(r"""^\s*create_time\s*>\s*(?:"([^"]*)"|'([^']*)')\s*$""")
SOURCE_NAME = re.compile(r"""^name\s*=\s*(?:"([^"]+)"|'([^']+)'|(\S+))$""")


def _bad_filter(text: str) -> Exception:
    return invalid(f'Invalid filter: "{text}".', "filter")


def sessions_filter(text: str | None) -> frozenset[bool]:
    """Which `archived` values a sessions.list filter selects: docs/jules-api.md#sessions-filter"""
    if text is None or not text.strip():
        return frozenset({False})
    if ARCHIVED_ONLY.match(text):
        return frozenset({True})
    match = ARCHIVED_BOTH.match(text)
    if match and {match.group(1), match.group(2)} == {"true", "false"}:
        return frozenset({True, False})
    raise _bad_filter(text)


def activities_filter(text: str | None) -> int | None:
    """The exclusive `create_time >` pivot in nanoseconds, or None without a filter."""
    if text is None or not text.strip():
        return None
    match = CREATE_TIME_AFTER.match(text)
    if match is None:
        raise _bad_filter(text)
    pivot = parse_ts_ns(match.group(1) if match.group(1) is not None else match.group(2))
    if pivot is None:
        raise invalid(f'Invalid filter: "{text}": the time is not RFC 3339.', "filter")
    return pivot


def sources_filter(text: str | None) -> set[str] | None:
    """The names an OR-joined `name=` filter selects, or None without a filter."""
    if text is None or not text.strip():
        return None
    names: set[str] = set()
    for part in re.split(r"\s+OR\s+", text.strip()):
        match = SOURCE_NAME.match(part.strip())
        if match is None:
            raise _bad_filter(text)
        names.add(next(g for g in match.groups() if g is not None))
    return names
