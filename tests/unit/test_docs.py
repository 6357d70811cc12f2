"""The code cites the project's own documents only, and every anchor it cites exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "docs" / "jules-api.md"
CODE_DIRS = ("jules", "jules_simulator", "sessions_app", "julesweb", "tests", "bench")
# Built from parts, so that this file does not match its own patterns.
SECTION_SIGN = "\N{SECTION SIGN}"
OUTSIDE_PATHS = ("../" + "shared", "shared" + "/jules-api")
CITATION = re.compile(r"docs/jules-api\.md#([A-Za-z0-9_-]+)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def _text_files(*roots: Path) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        candidates = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in candidates:
            if path.is_file() and "__pycache__" not in path.parts:
                files.append(path)
    return files


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None  # Binary files (images, fonts) cite nothing.


def _code_files() -> list[Path]:
    return _text_files(*(ROOT / name for name in CODE_DIRS))


def _documents() -> list[Path]:
    return [p for p in [*ROOT.glob("*.md"), *(ROOT / "docs").rglob("*.md")] if p.is_file()]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a document, with GitHub's `-1`, `-2` for repeats."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = HEADING.match(line)
        if fenced or match is None:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def test_it_computes_github_style_anchors():
    assert slug("Quotas and rate limits") == "quotas-and-rate-limits"
    assert slug("Activities 404 after create") == "activities-404-after-create"
    assert slug("The `create_time` filter, again") == "the-create_time-filter-again"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n### B.c\n") == {"a", "a-1", "bc"}


def test_it_cites_no_section_signs_or_paths_outside_the_repository():
    offences = []
    for path in [*_code_files(), *_documents()]:
        text = _read(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if SECTION_SIGN in line or any(outside in line for outside in OUTSIDE_PATHS):
                offences.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offences, "Cite a heading of docs/jules-api.md instead:\n" + "\n".join(offences)


def test_it_cites_only_anchors_that_exist_in_the_protocol_document():
    known = anchors(PROTOCOL.read_text(encoding="utf-8"))
    cited = 0
    missing = []
    for path in [*_code_files(), *_documents()]:
        text = _read(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for anchor in CITATION.findall(line):
                cited += 1
                if anchor not in known:
                    missing.append(f"{path.relative_to(ROOT)}:{number}: #{anchor}")
    assert not missing, "No such heading in docs/jules-api.md:\n" + "\n".join(missing)
    assert cited > 0  # The citations were found at all, so the check above means something.


def test_it_links_within_the_protocol_document_only_to_its_own_headings():
    text = PROTOCOL.read_text(encoding="utf-8")
    known = anchors(text)
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert links
    assert sorted(set(links) - known) == []
