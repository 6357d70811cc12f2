"""Where code may reach: static checks of imports over the source files (no import runs)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (inside functions and TYPE_CHECKING too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def forbidden_imports(package: str, forbidden: tuple[str, ...]) -> list[str]:
    hits = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in sorted(imported_modules(path)):
            if module.split(".")[0] in forbidden:
                hits.append(f"{path.relative_to(ROOT)} imports {module}")
    return hits


def test_the_simulator_imports_nothing_of_the_portal_or_django() -> None:
    assert forbidden_imports("jules_simulator", ("sessions_app", "julesweb", "django")) == []


def test_the_check_sees_an_import_hidden_in_a_function(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text(
        "def f():\n    from django.conf import settings\n    import sessions_app.tasks\n"
    )
    assert imported_modules(source) == {"django.conf", "sessions_app.tasks"}
