"""Template sources: mistakes that render as visible text instead of failing."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_no_django_template_comment_spans_lines():
    # `{# ... #}` is one line only in Django; across lines it is printed on the page.
    unclosed = re.compile(r"\{#(?:(?!#\}).)*$", re.M)
    found = [
        f"{path.relative_to(TEMPLATES)}:{text[: m.start()].count(chr(10)) + 1}"
        for path in TEMPLATES.rglob("*.html")
        for text in [path.read_text()]
        for m in unclosed.finditer(text)
    ]
    assert found == []
