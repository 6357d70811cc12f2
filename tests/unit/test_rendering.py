"""Markdown sanitising, the diff parser and highlighter, and the media restriction."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

import pytest

from sessions_app.sessions.rendering import (
    highlight_lines,
    media_data_url,
    parse_diff,
    render_diff,
    render_markdown,
)

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()


# --- markdown -------------------------------------------------------------------------


def test_it_renders_markdown_with_a_real_parser():
    html = render_markdown("# Title\n\n- **bold** and `code`\n\n```\nx = 1\n```")
    assert "<h1>Title</h1>" in html
    assert "<li><strong>bold</strong> and <code>code</code></li>" in html
    assert "<pre><code>x = 1\n</code></pre>" in html


@pytest.mark.parametrize(
    "text, forbidden",
    [
        ("<script>alert(1)</script>", "<script"),
        ("[click](javascript:alert(1))", "javascript:"),
        ('<a href="javascript:alert(1)">x</a>', "javascript:"),
        ("<img src=x onerror=alert(1)>", "onerror"),
        ('<p onclick="alert(1)">hi</p>', "onclick"),
        ("<iframe src=https://evil.example></iframe>", "<iframe"),
        ("<style>body{display:none}</style>", "<style"),
        ('<a href="data:text/html,<script>alert(1)</script>">x</a>', "data:"),
        ("![pixel](https://tracker.example/p.png)", "<img"),
    ],
)
def test_it_leaves_nothing_active_in_markdown(text, forbidden):
    # Raw HTML now stays visible as text, so the forbidden words may be read on the page;
    # none may be markup: no such tag, attribute or link target.
    assert forbidden not in _markup(render_markdown(text))


class _Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.append(f"<{tag}")
        self.parts.extend(f"{name}={value}" for name, value in attrs)


def _markup(html: str) -> str:
    """The tags and attributes of some HTML, without its text."""
    parser = _Markup()
    parser.feed(html)
    return " ".join(parser.parts)


@pytest.mark.parametrize(
    "text, shown",
    [
        ("Use <div> tags", "Use &lt;div&gt; tags"),
        ("Use `<div>` tags", "Use <code>&lt;div&gt;</code> tags"),
        ("A List<String> of <Button> props", "A List&lt;String&gt; of &lt;Button&gt; props"),
        ("<div>\nblock\n</div>", "&lt;div&gt;"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("a &amp; b", "a &amp; b"),
    ],
)
def test_it_keeps_text_that_looks_like_html_visible(text, shown):
    assert shown in render_markdown(text)


def test_it_still_links_autolinks():
    html = render_markdown("See <https://example.com/x>.")
    assert 'href="https://example.com/x"' in html


def test_it_keeps_safe_links_and_marks_them_noopener():
    html = render_markdown("[docs](https://example.com/a?b=1)")
    assert 'href="https://example.com/a?b=1"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_it_escapes_html_in_inline_code():
    assert "&lt;script&gt;" in render_markdown("`<script>alert(1)</script>`")


# --- diffs ----------------------------------------------------------------------------

MODIFIED = """\
diff --git a/billing/round.py b/billing/round.py
index 1111111..2222222 100644
--- a/billing/round.py
+++ b/billing/round.py
@@ -10,4 +10,5 @@ def round_total(value):
     cents = value * 100
-    return int(cents) / 100
+    # Round half away from zero.
+    return math.floor(cents + 0.5) / 100
 # end
@@ -40,2 +41,2 @@ class Invoice:
-    total = 0
+    total = Decimal(0)
     lines = []
"""


def test_it_counts_changes_and_numbers_both_sides():
    [f] = parse_diff(MODIFIED)
    assert (f.old_path, f.new_path, f.status) == (
        "billing/round.py",
        "billing/round.py",
        "modified",
    )
    assert (f.added, f.removed) == (3, 2)
    first, second = f.hunks
    assert (first.old_start, first.new_start) == (10, 10)
    numbered = [(line.kind, line.old, line.new) for line in first.lines]
    assert numbered == [
        ("ctx", 10, 10),
        ("del", 11, None),
        ("add", None, 11),
        ("add", None, 12),
        ("ctx", 12, 13),
    ]
    assert [(line.kind, line.old, line.new) for line in second.lines] == [
        ("del", 40, None),
        ("add", None, 41),
        ("ctx", 41, 42),
    ]


def test_it_reads_hunks_by_their_counts_so_dashes_stay_lines():
    patch = "--- a/notes.md\n+++ b/notes.md\n@@ -1,2 +1,1 @@\n---- a rule\n+++ new heading\n-x\n"
    [f] = parse_diff(patch)
    kinds = [(line.kind, line.text) for line in f.hunks[0].lines]
    assert kinds == [("del", "--- a rule"), ("add", "++ new heading"), ("del", "x")]
    assert (f.added, f.removed) == (1, 2)


def test_it_recognises_new_deleted_renamed_and_binary_files():
    patch = """\
diff --git a/docs/new.md b/docs/new.md
new file mode 100644
index 0000000..1111111
--- /dev/null
+++ b/docs/new.md
@@ -0,0 +1,2 @@
+# New
+text
diff --git a/old.txt b/old.txt
deleted file mode 100644
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-gone
diff --git a/src/a b.py b/src/c.py
similarity index 95%
rename from src/a b.py
rename to src/c.py
--- a/src/a b.py
+++ b/src/c.py
@@ -1 +1 @@
-x = 1
+x = 2
diff --git a/logo.png b/logo.png
new file mode 100644
index 0000000..3333333
Binary files /dev/null and b/logo.png differ
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
"""
    new, deleted, renamed, binary, mode = parse_diff(patch)
    assert (new.status, new.path, new.added, new.hunks[0].lines[0].new) == (
        "added",
        "docs/new.md",
        2,
        1,
    )
    assert (deleted.status, deleted.path, deleted.removed) == ("deleted", "old.txt", 1)
    assert (renamed.status, renamed.old_path, renamed.new_path) == (
        "renamed",
        "src/a b.py",
        "src/c.py",
    )
    assert renamed.renamed and (renamed.added, renamed.removed) == (1, 1)
    assert binary.binary and binary.status == "added" and not binary.hunks
    assert mode.status == "mode" and not mode.hunks


def test_it_keeps_the_no_newline_marker_as_a_note():
    patch = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n"
    [f] = parse_diff(patch)
    assert [line.kind for line in f.hunks[0].lines] == ["del", "note", "add"]
    assert f.hunks[0].lines[1].text == "No newline at end of file"


def test_it_reads_several_plain_unified_files():
    patch = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n--- a/y.py\n+++ b/y.py\n@@ -3 +3,2 @@\n c\n+d\n"
    first, second = parse_diff(patch)
    assert (first.path, second.path) == ("x.py", "y.py")
    assert [(line.old, line.new) for line in second.hunks[0].lines] == [(3, 3), (None, 4)]


def test_it_survives_garbage():
    assert parse_diff("") == []
    assert parse_diff("not a diff\n@@ nonsense @@\n") == []
    [f] = parse_diff("diff --git a/x b/x\n@@ -1,5 +1,5 @@\n-only one line\n")
    assert f.removed == 1


def test_it_colours_code_by_file_extension_with_classes_only():
    summary = render_diff(MODIFIED)
    added = [line for line in summary.files[0].hunks[0].lines if line.kind == "add"]
    assert '<span class="hl-c' in added[0].html  # the comment
    assert '<span class="hl-k' in str(summary.files[0].hunks[0].lines[1].html)  # return
    assert "style=" not in "".join(str(line.html) for line in added)
    assert (summary.added, summary.removed) == (3, 2)


def test_it_escapes_code_while_colouring():
    [html] = highlight_lines(['x = "<script>alert(1)</script>"'], "a.py") or [""]
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_it_colours_multiline_strings_across_lines():
    lines = highlight_lines(['s = """start', "middle <b>", 'end"""'], "a.py")
    assert lines is not None and len(lines) == 3
    assert 'class="hl-s' in lines[1] and "&lt;b&gt;" in lines[1]


def test_it_falls_back_to_plain_text_for_unknown_extensions():
    [line] = highlight_lines(["just <text>"], "README.unknownext") or [""]
    assert line == "just &lt;text&gt;"


def test_it_does_not_colour_huge_patches():
    body = "".join(f"+line {n}\n" for n in range(5000))
    summary = render_diff(f"--- a/big.py\n+++ b/big.py\n@@ -0,0 +1,5000 @@\n{body}")
    assert summary.files[0].added == 5000
    assert all(line.html is None for line in summary.files[0].hunks[0].lines)


# --- media ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mime", ["image/png", "image/jpeg", "image/gif", "image/webp", "IMAGE/PNG"]
)
def test_it_shows_plain_images_as_data_urls(mime):
    assert media_data_url(mime, PNG) == f"data:{mime.lower()};base64,{PNG}"


@pytest.mark.parametrize(
    "mime, data",
    [
        ("image/svg+xml", PNG),
        ("text/html", PNG),
        ("image/png;charset=x", PNG),
        ("image/png", 'AAAA" onerror="alert(1)'),
        ("image/png", "not base64!"),
        ("image/png", ""),
        ("", PNG),
    ],
)
def test_it_refuses_other_media(mime, data):
    assert media_data_url(mime, data) is None
