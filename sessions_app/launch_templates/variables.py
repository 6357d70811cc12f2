"""Named variables in a template's prompt and title: `{{ name }}`. Pure, no ORM.

A few names are filled by the portal for each session (`BUILTINS`); every other name the
launcher fills. Rendering is one pass, so a value that itself looks like `{{ x }}` stays as
it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,49})\s*\}\}")
# Filled by the portal for each session: the repository ("owner/repo"), its branch, and
# the launch's date (in the schedule's time zone for a scheduled run, else UTC).
BUILTINS = ("repo", "branch", "date")
MAX_VALUE_LENGTH = 5000


class MissingVariables(ValueError):
    def __init__(self, names: list[str]) -> None:
        self.names = names
        super().__init__("Fill in " + ", ".join(names) + ".")


def variables_in(*texts: str) -> list[str]:
    """The names the launcher fills, in order of first use, built-ins left out."""
    seen: dict[str, None] = {}
    for text in texts:
        for match in VARIABLE.finditer(text or ""):
            name = match.group(1)
            if name not in BUILTINS:
                seen.setdefault(name, None)
    return list(seen)


def missing(names: Iterable[str], values: Mapping[str, str]) -> list[str]:
    return [name for name in names if not str(values.get(name, "")).strip()]


def render(text: str, values: Mapping[str, str]) -> str:
    """`text` with every variable replaced; MissingVariables names any left unfilled."""
    absent = missing(variables_in(text), values)
    if absent:
        raise MissingVariables(absent)

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return str(values[name])
        return match.group(0)

    return VARIABLE.sub(fill, text or "")
