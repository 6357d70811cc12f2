"""Realistic text for simulated sessions: plans, messages, diffs and pull requests."""

from __future__ import annotations

import random
import re

PLAN_STEPS = [
    "Read the code paths the task touches and note their current behaviour.",
    "Write failing tests that pin the expected behaviour.",
    "Change the implementation until the new tests pass.",
    "Run the whole test suite and fix regressions.",
    "Update the documentation and the changelog.",
    "Review the diff and tidy names and comments.",
]
PROGRESS = [
    ("Explored the repository", "Found the modules involved and their tests."),
    ("Ran bash command", "Command: pytest -q\nOutput: 41 passed"),
    ("Wrote the tests", "Added cases for the edge conditions."),
    ("Implemented the change", "Updated the implementation and its docstrings."),
    ("Ran bash command", "Command: pytest -q\nOutput: 47 passed"),
]
AGENT_NOTES = [
    "I found the relevant code and I'm starting on the tests.",
    "The existing tests pass; now adding the new cases.",
    "The change is in place and the suite is green.",
]
QUESTIONS = [
    "Should negative totals round toward zero or away from it?",
    "Do you want the old behaviour kept behind a flag?",
]
FAILURES = [
    "Unable to install dependencies",
    "The test suite could not be started: missing system package libpq-dev",
]


def slug(text: str, limit: int = 40) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (words[:limit].rstrip("-")) or "change"


def title_for(prompt: str) -> str:
    first = re.sub(r"\[sim:[^\]]*\]", "", prompt).strip().splitlines()
    text = first[0] if first else "Untitled task"
    return (text[:1].upper() + text[1:])[:80]


def plan_steps(rng: random.Random) -> list[str]:
    count = rng.randint(3, 5)
    return PLAN_STEPS[:count]


def unified_diff(prompt: str, rng: random.Random) -> str:
    name = slug(title_for(prompt)).replace("-", "_")[:30] or "change"
    lines = rng.randint(3, 8)
    added = "\n".join(f"+    assert {name}_case_{i}() == {i}" for i in range(lines))
    return (
        f"diff --git a/tests/test_{name}.py b/tests/test_{name}.py\n"
        "new file mode 100644\n"
        "index 0000000..1f2e3d4\n"
        "--- /dev/null\n"
        f"+++ b/tests/test_{name}.py\n"
        f"@@ -0,0 +1,{lines + 2} @@\n"
        f"+from app.{name} import *\n"
        f"+def test_{name}():\n"
        f"{added}\n"
        f"diff --git a/app/{name}.py b/app/{name}.py\n"
        "index 3b18e51..9c4d2a7 100644\n"
        f"--- a/app/{name}.py\n"
        f"+++ b/app/{name}.py\n"
        "@@ -10,7 +10,8 @@ def compute(value):\n"
        "     if value is None:\n"
        "         return 0\n"
        "-    return round(value)\n"
        "+    # Round toward zero, as the task asks.\n"
        "+    return int(value)\n"
        " \n"
        " \n"
        " def helper():\n"
    )


# A 1x1 transparent PNG, base64: the smallest real image for media artifacts.
PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
