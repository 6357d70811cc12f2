"""Per-session scenarios and their tag grammar.

The grammar and every option are documented in the package docstring
(`jules_simulator/__init__.py`), which the README links to.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

SCENARIOS = ("happy", "plan_approval", "question", "failure", "pause", "stall", "revive", "auto_pr")
MODES = {
    "plan_approval": ("wait", "timeout"),
    "question": ("wait", "complete"),
    "auto_pr": ("pr", "changeset_only", "none"),
}
PR_MODES = ("pr", "changeset_only", "none")
TOGGLES = ("bash", "media", "unknown", "empty_titles", "revisions")
TAG = re.compile(r"\[sim:((?:[^\]\"]|\"[^\"]*\")*)\]")
TOKEN = re.compile(r"""(\w+)=(?:"([^"]*)"|'([^']*)'|(\S+))|(\S+)""")
DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
TRUE = {"1", "true", "on", "yes"}
FALSE = {"0", "false", "off", "no"}


@dataclass(frozen=True)
class Scenario:
    """What one session will do; see the package docstring for each option."""

    name: str = "happy"
    mode: str = ""
    step: int = 2
    reason: str = ""
    pr: str = "pr"
    delay: float = 13_500.0  # revive: 225 virtual minutes, like the live gaps.
    duration: float | None = None  # stall, pause: resume after this many seconds.
    resume: bool = False  # plan_approval timeout: a later approvePlan resumes the work.
    wait: float = 300.0  # question complete: how long the question stays unanswered.
    steps: int | None = None  # The plan's size; 3 to 6 when unset.
    pace: float | None = None  # Mean seconds between activities; the config's when unset.
    bash: bool = False
    media: bool = False
    unknown: bool = False
    empty_titles: bool = False
    revisions: bool = False
    origin: str = "default"  # header, tag, queue or default: shown by the admin API.

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def find_tag(prompt: str) -> str | None:
    """The text inside the first `[sim:...]` tag of a prompt, if any."""
    match = TAG.search(prompt)
    return match.group(1) if match else None


def _duration(key: str, value: str) -> float:
    match = DURATION.match(value.strip().lower())
    if match is None:
        raise ValueError(f"{key}={value!r}: expected seconds, optionally with s, m, h or d")
    return float(match.group(1)) * UNITS[match.group(2)]


def _flag(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError(f"{key}={value!r}: expected 1 or 0")


def _count(key: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{key}={value!r}: expected a whole number") from None
    if number < minimum:
        raise ValueError(f"{key}={value!r}: must be at least {minimum}")
    return number


def parse_scenario(text: str, origin: str = "tag") -> Scenario:
    """Parse `NAME [key=value | key="quoted value" | word] ...`; ValueError when invalid."""
    parts = text.strip().split(None, 1)
    if not parts:
        raise ValueError("empty scenario")
    name = parts[0].lower()
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}")
    values: dict[str, Any] = {
        "name": name,
        "origin": origin,
        "step": 1 if name == "question" else 2,
    }
    values["mode"] = MODES[name][0] if name in MODES and name != "auto_pr" else ""
    rest = parts[1] if len(parts) > 1 else ""
    for match in TOKEN.finditer(rest):
        key, double, single, bare_value, word = match.groups()
        if word is not None:
            word = word.lower()
            if word in TOGGLES:
                values[word] = True
                continue
            key, value = "mode", word
        else:
            value = next(v for v in (double, single, bare_value) if v is not None)
        _apply(values, name, key.lower(), value)
    return Scenario(**values)


def _apply(values: dict[str, Any], name: str, key: str, value: str) -> None:
    if key == "mode":
        allowed = MODES.get(name)
        if allowed is None or value not in allowed:
            raise ValueError(f"{name} has no mode {value!r}")
        values["pr" if name == "auto_pr" else "mode"] = value
    elif key == "pr":
        if value not in PR_MODES:
            raise ValueError(f"pr={value!r}: expected one of {', '.join(PR_MODES)}")
        values["pr"] = value
    elif key == "step":
        values["step"] = _count(key, value, 0)
    elif key == "steps":
        values["steps"] = _count(key, value, 1)
    elif key == "reason":
        values["reason"] = value
    elif key in {"delay", "duration", "wait", "pace"}:
        seconds = _duration(key, value)
        if key == "pace" and seconds <= 0:
            raise ValueError("pace must be positive")
        values[key] = seconds
    elif key in TOGGLES or key == "resume":
        values[key] = _flag(key, value)
    else:
        raise ValueError(f"unknown scenario option {key!r}")
