"""Rendering what agents and people wrote, and what the agent changed.

Markdown goes through a real parser that keeps raw HTML as text, and then nh3, so only an allow-list of tags, attributes
and URL schemes reaches the page. Patches are parsed into files and hunks with old and new
line numbers, and coloured with Pygments through CSS classes (`hl-*`, defined in
portal.css), never inline styles. Media become `data:` URLs only for a few image types.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePosixPath

import markdown as md
import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.token import STANDARD_TYPES, _TokenType
from pygments.util import ClassNotFound

ALLOWED_TAGS = {
    "a",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
# Images are left out on purpose: an agent's markdown could otherwise make every viewer's
# browser fetch an address of its choosing.
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}
ALLOWED_SCHEMES = {"http", "https", "mailto"}


_parsers = threading.local()


def _parser() -> md.Markdown:
    """A Markdown parser that passes no raw HTML through: `<div>`, `List<String>` or
    `<Button>` in what someone wrote is text to show, not markup for nh3 to strip.
    One per thread, as a parser keeps state while it converts."""
    parser: md.Markdown | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = md.Markdown(extensions=["fenced_code", "tables", "sane_lists"])
        parser.preprocessors.deregister("html_block")
        parser.inlinePatterns.deregister("html")
        _parsers.parser = parser
    return parser


def render_markdown(text: str) -> SafeString:
    """Markdown to HTML that is safe to put in a page as it is."""
    parser = _parser()
    try:
        html = parser.convert(text or "")
    finally:
        parser.reset()
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 - nh3 sanitised it just above.


# --- media ----------------------------------------------------------------------------

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
# A screenshot is small; a larger blob would bloat every poll of the page.
MAX_MEDIA_BYTES = 4 * 1024 * 1024
_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def media_data_url(mime_type: str, data: str) -> str | None:
    """A `data:` URL for an image artifact, or None when it is not a plain image.

    Only four raster types pass: SVG can carry scripts, and anything else would not render.
    The data must be well-formed base64, so nothing but the image can ride in the URL.
    """
    mime = (mime_type or "").strip().lower()
    payload = re.sub(r"\s+", "", data or "")
    if mime not in IMAGE_TYPES or not payload or len(payload) > MAX_MEDIA_BYTES * 4 // 3 + 4:
        return None
    if not _BASE64.match(payload):
        return None
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    return f"data:{mime};base64,{payload}"


# --- diffs ----------------------------------------------------------------------------


@dataclass
class DiffLine:
    kind: str  # "add", "del", "ctx", or "note" ("\ No newline at end of file")
    text: str
    old: int | None = None
    new: int | None = None
    html: SafeString | None = None

    @property
    def sign(self) -> str:
        return {"add": "+", "del": "-", "ctx": " "}.get(self.kind, "")


@dataclass
class DiffHunk:
    header: str
    old_start: int
    new_start: int
    lines: list[DiffLine] = field(default_factory=list)


@dataclass
class DiffFile:
    old_path: str
    new_path: str
    status: str = "modified"  # added, deleted, renamed, copied, modified, mode
    binary: bool = False
    added: int = 0
    removed: int = 0
    hunks: list[DiffHunk] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.old_path if self.status == "deleted" else self.new_path

    @property
    def renamed(self) -> bool:
        return self.status in {"renamed", "copied"} and self.old_path != self.new_path

    @property
    def line_count(self) -> int:
        return sum(len(h.lines) for h in self.hunks)


@dataclass
class DiffSummary:
    files: list[DiffFile]

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    @property
    def removed(self) -> int:
        return sum(f.removed for f in self.files)


HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
GIT_HEADER = re.compile(r"^diff --git (?:\"?a/)(.*?)\"? (?:\"?b/)(.*?)\"?$")


def _strip_prefix(path: str) -> str:
    path = path.split("\t", 1)[0].strip().strip('"')
    if path == "/dev/null":
        return path
    for prefix in ("a/", "b/"):
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def parse_diff(patch: str) -> list[DiffFile]:
    """Split a unified (git) diff into files and hunks with numbered lines.

    Hunk bodies are read by the counts in their `@@` header, so a removed line that starts
    with `--` is never mistaken for a file header. Renames, copies, new and deleted files,
    mode changes and binary files are recognised from git's extended headers; a plain
    `diff -u` without them works too.
    """
    files: list[DiffFile] = []
    current: DiffFile | None = None
    hunk: DiffHunk | None = None
    old_left = new_left = 0
    old_no = new_no = 0

    for line in (patch or "").splitlines():
        if current is not None and hunk is not None and (old_left > 0 or new_left > 0):
            marker = line[:1]
            if marker == "+":
                hunk.lines.append(DiffLine("add", line[1:], None, new_no))
                current.added += 1
                new_no += 1
                new_left -= 1
                continue
            if marker == "-":
                hunk.lines.append(DiffLine("del", line[1:], old_no, None))
                current.removed += 1
                old_no += 1
                old_left -= 1
                continue
            if marker == " " or line == "":
                hunk.lines.append(DiffLine("ctx", line[1:], old_no, new_no))
                old_no += 1
                new_no += 1
                old_left -= 1
                new_left -= 1
                continue
            if marker != "\\":
                # Anything else ends a hunk whose header promised more lines than it had.
                hunk = None
        if line.startswith("\\") and hunk is not None:
            hunk.lines.append(DiffLine("note", line[1:].strip()))
            continue
        if line.startswith("diff --git "):
            match = GIT_HEADER.match(line)
            current = DiffFile(match.group(1), match.group(2)) if match else DiffFile("", "")
            files.append(current)
            hunk = None
            continue
        if line.startswith("--- ") and (current is None or current.hunks):
            # A plain unified diff (no git header): each `---`/`+++` pair starts a file.
            current = DiffFile("", "")
            files.append(current)
            hunk = None
        if current is None:
            continue
        if match := HUNK.match(line):
            old_no, new_no = int(match.group(1)), int(match.group(3))
            old_left = int(match.group(2)) if match.group(2) is not None else 1
            new_left = int(match.group(4)) if match.group(4) is not None else 1
            hunk = DiffHunk(line, old_no, new_no)
            current.hunks.append(hunk)
        elif line.startswith("--- "):
            path = _strip_prefix(line[4:])
            if path == "/dev/null":
                current.status = "added"
            else:
                current.old_path = path
        elif line.startswith("+++ "):
            path = _strip_prefix(line[4:])
            if path == "/dev/null":
                current.status = "deleted"
            else:
                current.new_path = path
        elif line.startswith("new file mode"):
            current.status = "added"
        elif line.startswith("deleted file mode"):
            current.status = "deleted"
        elif line.startswith("rename from "):
            current.status, current.old_path = "renamed", line[len("rename from ") :]
        elif line.startswith("rename to "):
            current.status, current.new_path = "renamed", line[len("rename to ") :]
        elif line.startswith("copy from "):
            current.status, current.old_path = "copied", line[len("copy from ") :]
        elif line.startswith("copy to "):
            current.status, current.new_path = "copied", line[len("copy to ") :]
        elif line.startswith("new mode") and current.status == "modified":
            current.status = "mode"
        elif line.startswith(("Binary files ", "GIT binary patch")):
            current.binary = True
    for diff_file in files:
        if not diff_file.new_path:
            diff_file.new_path = diff_file.old_path
        if not diff_file.old_path:
            diff_file.old_path = diff_file.new_path
        if diff_file.status == "mode" and diff_file.hunks:
            diff_file.status = "modified"
    return files


# --- syntax colouring -----------------------------------------------------------------

# Past these sizes the diff is shown uncoloured: colouring costs time on every render.
HIGHLIGHT_MAX_LINES = 4000
HIGHLIGHT_MAX_LINE_LENGTH = 1000


@lru_cache(maxsize=256)
def _lexer_for(name: str) -> Lexer:
    try:
        return get_lexer_for_filename(name, stripnl=False, stripall=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


def _css_class(ttype: _TokenType) -> str:
    current: _TokenType | None = ttype
    while current is not None and current not in STANDARD_TYPES:
        current = current.parent
    short = STANDARD_TYPES.get(current, "") if current is not None else ""
    # Plain text and whitespace need no span; leaving them bare keeps big diffs lighter.
    return f"hl-{short}" if short and short != "w" else ""


def highlight_lines(lines: list[str], filename: str) -> list[SafeString] | None:
    """Colour consecutive lines of one file as a block; one safe HTML string per line.

    Lexing the block (rather than line by line) keeps multi-line strings and comments
    right. Returns None when the lexer's output does not split back into the same number
    of lines, so the caller shows the text plainly instead of misaligned.
    """
    if not lines:
        return []
    lexer = _lexer_for(PurePosixPath(filename).name or "file.txt")
    out: list[list[list[str]]] = [[]]
    for ttype, value in lexer.get_tokens("\n".join(lines) + "\n"):
        css = _css_class(ttype)
        for index, piece in enumerate(value.split("\n")):
            if index:
                out.append([])
            if not piece:
                continue
            if out[-1] and out[-1][-1][0] == css:
                # Neighbours of one colour share a span: fewer tags in big diffs.
                out[-1][-1][1] += piece
            else:
                out[-1].append([css, piece])
    if out and not out[-1]:
        out.pop()
    if len(out) != len(lines):
        return None
    return [
        mark_safe(  # noqa: S308 - every piece is escaped here.
            "".join(
                f'<span class="{css}">{escape(text)}</span>' if css else str(escape(text))
                for css, text in parts
            )
        )
        for parts in out
    ]


def highlight_file(diff_file: DiffFile) -> None:
    """Fill `html` on every add/del/ctx line: old side and new side of each hunk coloured."""
    for hunk in diff_file.hunks:
        code = [line for line in hunk.lines if line.kind != "note"]
        too_big = len(code) > HIGHLIGHT_MAX_LINES or any(
            len(line.text) > HIGHLIGHT_MAX_LINE_LENGTH for line in code
        )
        old_side = [line for line in code if line.kind in {"ctx", "del"}]
        new_side = [line for line in code if line.kind in {"ctx", "add"}]
        old_html = None if too_big else highlight_lines([x.text for x in old_side], diff_file.path)
        new_html = None if too_big else highlight_lines([x.text for x in new_side], diff_file.path)
        if old_html is not None:
            for line, html in zip(old_side, old_html, strict=True):
                line.html = html
        if new_html is not None:
            # Context lines take the new side's colouring; both sides agree on them.
            for line, html in zip(new_side, new_html, strict=True):
                line.html = html


def render_diff(patch: str, *, highlight: bool = True) -> DiffSummary:
    """Parse a patch and colour it (unless the whole patch is too large to colour)."""
    files = parse_diff(patch)
    if highlight and sum(f.line_count for f in files) <= HIGHLIGHT_MAX_LINES:
        for diff_file in files:
            if not diff_file.binary:
                highlight_file(diff_file)
    return DiffSummary(files)
