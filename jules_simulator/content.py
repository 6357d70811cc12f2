"""Realistic text for simulated sessions: repositories, plans, progress, messages, diffs, PRs.

Everything here is a pure function of its arguments and a `random.Random`, so a seed always
gives the same words. Pools are built once at import; seeding thousands of sessions reuses
their strings instead of formatting new ones.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Repo:
    owner: str
    repo: str
    branches: tuple[str, ...]  # The first is the default branch.
    private: bool
    lang: str  # Picks the file names, commands and diffs of its sessions.


REPOS: tuple[Repo, ...] = (
    Repo("acme", "billing", ("main", "release-2026.03"), True, "python"),
    Repo("acme", "web", ("main", "develop"), True, "typescript"),
    Repo("acme", "api", ("main",), True, "python"),
    Repo("acme", "mobile", ("main", "feature/push"), True, "kotlin"),
    Repo("acme", "infra", ("main",), True, "terraform"),
    Repo("acme", "docs", ("main",), True, "markdown"),
    Repo("globex", "search", ("master", "next"), False, "go"),
    Repo("globex", "ledger", ("main",), False, "rust"),
)
REPOLESS_LANG = "python"

# Per language: the module a change touches, the test file, the test command and its output.
LANG = {
    "python": ("app/{name}.py", "tests/test_{name}.py", "pytest -q", "{n} passed in 3.{d}s"),
    "typescript": (
        "src/{name}.ts",
        "src/{name}.test.ts",
        "npm test -- --run",
        "Test Files  {d} passed\n     Tests  {n} passed",
    ),
    "kotlin": (
        "app/src/main/kotlin/{name}.kt",
        "app/src/test/kotlin/{name}Test.kt",
        "./gradlew test",
        "BUILD SUCCESSFUL in 4{d}s\n{n} actionable tasks: {d} executed",
    ),
    "terraform": (
        "modules/{name}/main.tf",
        "modules/{name}/variables.tf",
        "terraform validate",
        "Success! The configuration is valid.",
    ),
    "markdown": (
        "docs/{name}.md",
        "docs/index.md",
        "mkdocs build --strict",
        "INFO    -  Documentation built in 1.{d} seconds",
    ),
    "go": (
        "internal/{name}/{name}.go",
        "internal/{name}/{name}_test.go",
        "go test ./...",
        "ok  \tgithub.com/globex/search/internal/...\t0.{d}s",
    ),
    "rust": ("src/{name}.rs", "tests/{name}.rs", "cargo test", "test result: ok. {n} passed"),
}

TOPICS = (
    ("invoice rounding", "rounding"),
    ("the CSV export", "csv_export"),
    ("retry handling in the HTTP client", "http_client"),
    ("pagination of the orders endpoint", "orders"),
    ("the login rate limiter", "rate_limit"),
    ("timezone handling in reports", "reports"),
    ("the search query parser", "query_parser"),
    ("webhook signature checks", "webhooks"),
    ("the settings page", "settings"),
    ("currency formatting", "currency"),
    ("the nightly cleanup job", "cleanup"),
    ("feature flag lookups", "flags"),
)
PROMPT_TEMPLATES = (
    "Add unit tests for {topic}",
    "Fix the off-by-one error in {topic}",
    "Refactor {topic} into smaller functions",
    "Handle empty input in {topic}",
    "Add logging around {topic}",
    "Document {topic} in the README",
    "Speed up {topic}; it is slow on large inputs",
    "Replace the deprecated API used by {topic}",
)

PLAN_OPENERS = (
    "Explore the codebase to find where {topic} is implemented and how it is tested.",
    "Read the modules involved in {topic} and note their current behaviour.",
)
PLAN_MIDDLES = (
    "Write a failing test that reproduces the problem with {topic}.",
    "Change the implementation of {topic} so that the new tests pass.",
    "Update the callers of {topic} to the new behaviour.",
    "Add tests for the edge cases: empty input, very large values and unicode.",
    "Update the documentation and the changelog for {topic}.",
)
PLAN_CLOSERS = (
    "Run the full test suite and fix any regressions.",
    "Complete pre-commit steps to make sure proper testing, verification, review and "
    "reflection are done.",
    "Submit the change.",
)

AGENT_NOTES = (
    "I found where {topic} is handled and I'm starting on the tests.",
    "The existing tests pass; now adding the new cases for {topic}.",
    "The change to {topic} is in place and the suite is green.",
    "I've updated the callers as well so the behaviour stays consistent.",
)
QUESTIONS = (
    "Should negative totals round toward zero or away from it?",
    "Do you want the old behaviour kept behind a feature flag, or removed outright?",
    "The tests for {topic} need network access. May I mock the remote calls instead?",
    "There are two implementations of {topic}. Which one should I change?",
)
ACKNOWLEDGEMENTS = (
    "Thanks, that makes sense. I'll continue with that approach.",
    "Understood. Updating the plan accordingly and carrying on.",
    "Got it. I'll adjust the implementation and rerun the tests.",
)
FAILURES = (
    "Unable to install dependencies",
    "The test suite could not be started: missing system package libpq-dev",
    "The repository could not be cloned: the branch does not exist",
    "Execution environment timed out while running the build",
)
PROGRESS_HEADLINES = (
    ("Explored the repository", "Found the modules involved in {topic} and their tests."),
    ("Read {file}", "The current implementation of {topic} is in this file."),
    ("Edited {file}", "Updated {topic} and its docstrings."),
    ("Wrote the tests", "Added cases for empty input, large values and unicode."),
    ("Reviewed the diff", "Tidied names and comments before submitting."),
)
MEDIA_TITLE = "Frontend verification"
# A 1x1 transparent PNG: the smallest real image for media artifacts.
PNG_1PX = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5Er"
    "kJggg=="
)


def slug(text: str, limit: int = 40) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "change"


TAG_TEXT = re.compile(r"\[sim:(?:[^\]\"]|\"[^\"]*\")*\]")


def strip_tags(prompt: str) -> str:
    return TAG_TEXT.sub("", prompt).strip()


def title_for(prompt: str) -> str:
    """A generated title: the prompt's first sentence, capitalised, at most ~60 chars."""
    lines = [line.strip() for line in strip_tags(prompt).splitlines() if line.strip()]
    text = lines[0] if lines else "Untitled task"
    text = re.split(r"(?<=[.;!?])\s", text, maxsplit=1)[0].rstrip(".;!? ")
    if len(text) > 60:
        text = text[:60].rsplit(" ", 1)[0]
    return (text[:1].upper() + text[1:]) or "Untitled task"


def topic_for(prompt: str) -> str:
    """The thing a prompt is about, for plans and messages ("the CSV export")."""
    text = strip_tags(prompt).lower()
    for topic, _ in TOPICS:
        if topic.lower() in text:
            return topic
    words = re.findall(r"[a-z][a-z0-9_-]+", text)
    return " ".join(words[-3:]) if words else "the task"


def module_for(prompt: str) -> str:
    text = strip_tags(prompt).lower()
    for topic, module in TOPICS:
        if topic.lower() in text:
            return module
    words = re.findall(r"[a-z]+", text)
    return "_".join(words[-2:])[:24] or "change"


def seeded_prompt(rng: random.Random) -> str:
    topic, _ = rng.choice(TOPICS)
    return rng.choice(PROMPT_TEMPLATES).format(topic=topic)


def plan_titles(rng: random.Random, prompt: str, count: int | None = None) -> list[str]:
    """Plan step texts in a sensible order; like live plans, the whole step is the title."""
    topic = topic_for(prompt)
    size = max(1, count if count is not None else rng.randint(3, 6))
    closers = list(
        PLAN_CLOSERS[-1:] if size < 5 else PLAN_CLOSERS[-2:] if size < 6 else PLAN_CLOSERS
    )
    if size == 1:
        closers = []
    wanted = min(len(PLAN_MIDDLES), max(0, size - 1 - len(closers)))
    middles = sorted(rng.sample(range(len(PLAN_MIDDLES)), k=wanted))
    steps = [rng.choice(PLAN_OPENERS), *(PLAN_MIDDLES[i] for i in middles), *closers]
    return [step.format(topic=topic) for step in steps[:size]]


def progress(rng: random.Random, prompt: str, lang: str, index: int) -> tuple[str, str]:
    topic = topic_for(prompt)
    source, tests, _, _ = LANG.get(lang, LANG[REPOLESS_LANG])
    file = (tests if index % 3 == 2 else source).format(name=module_for(prompt))
    title, description = PROGRESS_HEADLINES[index % len(PROGRESS_HEADLINES)]
    return title.format(file=file), description.format(topic=topic)


def bash_run(rng: random.Random, lang: str, index: int) -> tuple[str, str, int]:
    """A command, its combined output and exit code; the first run of a test fails."""
    _, _, command, output = LANG.get(lang, LANG[REPOLESS_LANG])
    if index == 0 and lang == "python":
        return (
            command,
            "F.\n=================================== FAILURES ===================================\n"
            "E   AssertionError: assert 3 == 2\n1 failed, 41 passed in 2.87s",
            1,
        )
    return command, output.format(n=40 + index * 3, d=rng.randint(1, 9)), 0


def agent_note(rng: random.Random, prompt: str) -> str:
    return rng.choice(AGENT_NOTES).format(topic=topic_for(prompt))


def question(rng: random.Random, prompt: str) -> str:
    return rng.choice(QUESTIONS).format(topic=topic_for(prompt))


def acknowledgement(rng: random.Random) -> str:
    return rng.choice(ACKNOWLEDGEMENTS)


def failure_reason(rng: random.Random) -> str:
    return rng.choice(FAILURES)


def working_branch(title: str, rng: random.Random) -> str:
    return f"jules/{slug(title, 32)}-{rng.getrandbits(16):04x}"


def commit_message(title: str) -> str:
    lowered = title[:1].lower() + title[1:]
    kind = "test" if "test" in lowered else "docs" if "document" in lowered else "fix"
    if lowered.startswith(("add ", "replace ", "speed ", "refactor ")):
        kind = "feat" if kind == "fix" else kind
    return f"{kind}: {lowered[:64]}"


def pr_description(title: str, prompt: str, lang: str) -> str:
    _, _, command, _ = LANG.get(lang, LANG[REPOLESS_LANG])
    task = strip_tags(prompt).splitlines()[0].rstrip(".") if strip_tags(prompt) else title
    return (
        f"{title}.\n\n"
        "## Summary\n"
        f"- {task}, as the task asked.\n"
        "- Adds tests that pin the new behaviour.\n\n"
        "## Testing\n"
        f"- `{command}`\n\n"
        "---\n*PR created automatically by Jules for task "
        "[this session](https://jules.google.com).*"
    )


def _hunk(start: int, before: list[str], old: list[str], new: list[str], after: list[str]) -> str:
    """One hunk whose header counts match its lines exactly."""
    lines = [f" {line}" for line in before]
    lines += [f"-{line}" for line in old] + [f"+{line}" for line in new]
    lines += [f" {line}" for line in after]
    old_count = len(before) + len(old) + len(after)
    new_count = len(before) + len(new) + len(after)
    return f"@@ -{start},{old_count} +{start},{new_count} @@\n" + "".join(f"{x}\n" for x in lines)


def _modified(path: str, rng: random.Random, hunk: str) -> str:
    index = f"{rng.getrandbits(28):07x}..{rng.getrandbits(28):07x}"
    return (
        f"diff --git a/{path} b/{path}\nindex {index} 100644\n--- a/{path}\n+++ b/{path}\n" + hunk
    )


def _added(path: str, rng: random.Random, lines: list[str]) -> str:
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\n"
        f"index 0000000..{rng.getrandbits(28):07x}\n--- /dev/null\n+++ b/{path}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n" + "".join(f"+{line}\n" for line in lines)
    )


# Per language: context before, removed lines, added lines, context after, the new test file.
# NAME stands for the module the prompt is about.
CODE_CHANGES: dict[str, tuple[list[str], list[str], list[str], list[str], list[str]]] = {
    "python": (
        [
            "def NAME(value):",
            '    """Return the value, normalised."""',
            "    if value is None:",
            "        return 0",
        ],
        ["    return round(value)"],
        ["    # Round toward zero, as the task asks.", "    return int(value)"],
        ["", ""],
        [
            "from app.NAME import NAME",
            "",
            "",
            "def test_NAME_rounds_toward_zero():",
            "    assert NAME(2.7) == 2",
            "    assert NAME(-2.7) == -2",
            "",
            "",
            "def test_NAME_accepts_none():",
            "    assert NAME(None) == 0",
        ],
    ),
    "typescript": (
        [
            "export function NAME(value: number | null): number {",
            "  if (value === null) {",
            "    return 0;",
            "  }",
        ],
        ["  return Math.round(value);"],
        ["  // Round toward zero, as the task asks.", "  return Math.trunc(value);"],
        ["}", ""],
        [
            'import { describe, expect, it } from "vitest";',
            'import { NAME } from "./NAME";',
            "",
            'describe("NAME", () => {',
            '  it("rounds toward zero", () => {',
            "    expect(NAME(2.7)).toBe(2);",
            "    expect(NAME(-2.7)).toBe(-2);",
            "  });",
            "});",
        ],
    ),
    "kotlin": (
        [
            "fun NAME(value: Double?): Long {",
            "    if (value == null) {",
            "        return 0",
            "    }",
        ],
        ["    return value.roundToLong()"],
        ["    // Round toward zero, as the task asks.", "    return value.toLong()"],
        ["}", ""],
        [
            "import kotlin.test.Test",
            "import kotlin.test.assertEquals",
            "",
            "class NAMETest {",
            "    @Test",
            "    fun roundsTowardZero() {",
            "        assertEquals(2, NAME(2.7))",
            "        assertEquals(-2, NAME(-2.7))",
            "    }",
            "}",
        ],
    ),
    "go": (
        ["func NAME(value float64) int {", "\tif value == 0 {", "\t\treturn 0", "\t}"],
        ["\treturn int(math.Round(value))"],
        ["\t// Round toward zero, as the task asks.", "\treturn int(value)"],
        ["}", ""],
        [
            "package NAME",
            "",
            'import "testing"',
            "",
            "func TestRoundsTowardZero(t *testing.T) {",
            "\tif got := NAME(2.7); got != 2 {",
            '\t\tt.Fatalf("got %d, want 2", got)',
            "\t}",
            "}",
        ],
    ),
    "rust": (
        ["pub fn NAME(value: f64) -> i64 {", "    if value == 0.0 {", "        return 0;", "    }"],
        ["    value.round() as i64"],
        ["    // Round toward zero, as the task asks.", "    value.trunc() as i64"],
        ["}", ""],
        [
            "use ledger::NAME;",
            "",
            "#[test]",
            "fn rounds_toward_zero() {",
            "    assert_eq!(NAME(2.7), 2);",
            "    assert_eq!(NAME(-2.7), -2);",
            "}",
        ],
    ),
}


def unified_diff(rng: random.Random, prompt: str, lang: str) -> str:
    """A unified diff that applies: the changed source file and, for code, a new test file."""
    name = module_for(prompt)
    source_path, test_path, _, _ = LANG.get(lang, LANG[REPOLESS_LANG])
    source, test = source_path.format(name=name), test_path.format(name=name)
    start = rng.randint(8, 120)
    if lang == "markdown":
        hunk = _hunk(
            start,
            [f"## {name.replace('_', ' ').title()}", ""],
            ["This section is out of date."],
            [f"Describes how {topic_for(prompt)} works today.", "", "See the examples below."],
            ["", "### Examples"],
        )
        return _modified(source, rng, hunk)
    if lang == "terraform":
        hunk = _hunk(
            start,
            [f'variable "{name}_retention_days" {{', "  type        = number"],
            ["  default     = 7"],
            ["  default     = 30", '  description = "Days to keep objects before deletion."'],
            ["}", ""],
        )
        return _modified(source, rng, hunk)
    before, old, new, after, tests = CODE_CHANGES.get(lang, CODE_CHANGES["python"])
    before, old, new, after, tests = (
        [line.replace("NAME", name) for line in part] for part in (before, old, new, after, tests)
    )
    tests += [""] * rng.randint(0, 1)
    return _modified(source, rng, _hunk(start, before, old, new, after)) + _added(test, rng, tests)
