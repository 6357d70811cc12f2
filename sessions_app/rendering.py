"""Rendering agent and user text: markdown through a real parser, then sanitised; diffs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import markdown as md
import nh3
from django.utils.safestring import SafeString, mark_safe

ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "blockquote",
    "a",
    "h1",
    "h2",
    "h3",
    "h4",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "hr",
}


def render_markdown(text: str) -> SafeString:
    html = md.markdown(text or "", extensions=["fenced_code", "tables"])
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 just above.


@dataclass
class DiffLine:
    kind: str  # "add", "del", "ctx", "hunk"
    text: str
    old: int | None = None
    new: int | None = None


@dataclass
class DiffFile:
    old_path: str
    new_path: str
    added: int = 0
    removed: int = 0
    status: str = "modified"
    lines: list[DiffLine] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.new_path if self.new_path != "/dev/null" else self.old_path


HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def parse_diff(patch: str) -> list[DiffFile]:
    """Split a unified diff into files with +/- counts and numbered lines."""
    files: list[DiffFile] = []
    current: DiffFile | None = None
    old = new = 0
    for line in (patch or "").splitlines():
        if line.startswith("diff --git "):
            parts = line.split(" ")
            a = parts[2][2:] if len(parts) > 2 else ""
            b = parts[3][2:] if len(parts) > 3 else a
            current = DiffFile(a, b)
            files.append(current)
            continue
        if current is None:
            continue
        if line.startswith("new file"):
            current.status = "added"
        elif line.startswith("deleted file"):
            current.status = "deleted"
        elif line.startswith("rename from"):
            current.status = "renamed"
        elif line.startswith("Binary files"):
            current.status = "binary"
        elif line.startswith(("--- ", "+++ ", "index ")) and not current.lines:
            continue
        elif match := HUNK.match(line):
            old, new = int(match.group(1)), int(match.group(2))
            current.lines.append(DiffLine("hunk", line))
        elif line.startswith("+"):
            current.added += 1
            current.lines.append(DiffLine("add", line[1:], None, new))
            new += 1
        elif line.startswith("-"):
            current.removed += 1
            current.lines.append(DiffLine("del", line[1:], old, None))
            old += 1
        elif line.startswith(" ") or line == "":
            current.lines.append(DiffLine("ctx", line[1:], old, new))
            old += 1
            new += 1
    return files
