"""CI skips nothing: with REQUIRE_SERVICES=1 or REQUIRE_BROWSER=1 a test that skips itself fails."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIPPING = """
import pytest

def test_needs_a_peer():
    pytest.skip("no peer here")

@pytest.mark.skipif(True, reason="marked away")
def test_marked():
    pass

def test_plain():
    pass
"""


@pytest.mark.parametrize(
    ("env", "failed", "skipped"),  # a skip in setup (a mark, a fixture) fails as an error
    [
        ({}, 0, 2),
        ({"REQUIRE_SERVICES": "1"}, 1, 0),
        ({"REQUIRE_BROWSER": "yes"}, 1, 0),
    ],
)
def test_a_skip_fails_only_where_nothing_may_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env, failed, skipped
):
    monkeypatch.delenv("REQUIRE_SERVICES", raising=False)
    monkeypatch.delenv("REQUIRE_BROWSER", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(SKIPPING)
    result = pytester.runpytest_subprocess(
        "-p", "tests.no_skips", "-p", "no:django", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, failed=failed, errors=failed, skipped=skipped)
    if failed:
        result.stdout.fnmatch_lines(
            ["*skipped on CI*marked away*", "*skipped on CI, where nothing may skip*no peer here*"],
            consecutive=False,
        )
