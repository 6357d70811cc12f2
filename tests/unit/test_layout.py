"""The layout's rules, read from the source: who may import whom (docs/architecture.md)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("jules", "jules_simulator", "sessions_app", "julesweb")


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: not in functions or classes, and not
    under `if TYPE_CHECKING:`."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level(block)
            for handler in node.handlers:
                yield from _module_level(handler.body)
        elif isinstance(node, ast.With):
            yield from _module_level(node.body)


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project's modules that importing `name` runs, as far as the tree knows."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _module_level(tree.body):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a import b` imports the module a.b when there is one, else a name of a.
            candidates = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        for candidate in candidates:
            if candidate not in modules:
                continue
            targets.add(candidate)
            # Importing a.b.c first imports the packages a and a.b.
            parts = candidate.split(".")
            for end in range(1, len(parts)):
                parent = ".".join(parts[:end])
                if parent in modules and not (name == parent or name.startswith(parent + ".")):
                    targets.add(parent)
    targets.discard(name)
    return targets


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_a_cycle(graph, set(component)) for component in components]


def _a_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node] & component):
            if target == start:
                return [*paths[node], start]
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    return sorted(component)


def test_it_finds_a_cycle_when_there_is_one():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_it_reads_the_sync_and_outbox_imports():
    graph = _graph()
    # The walk sees the edges it is meant to guard.
    assert "sessions_app.tasks" in graph["sessions_app.outbox.delivery"]
    assert "sessions_app.connections.client" in graph["sessions_app.sync.engine"]
    assert "sessions_app.sync" in graph["sessions_app.outbox.delivery"]


def test_there_is_no_import_cycle_among_the_projects_modules():
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_jules_client_imports_nothing_of_django_the_simulator_or_the_portal():
    forbidden = ("django", "jules_simulator", "sessions_app", "julesweb")
    offences = []
    for path in sorted((ROOT / "jules").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                if name.split(".")[0] in forbidden:
                    offences.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert offences == []


def test_the_sync_never_imports_the_tasks():
    # The engine hands back what is due and a task enqueues it (docs/architecture.md), so
    # the sync stays below the tasks, even in function bodies.
    offences = []
    for path in sorted((ROOT / "sessions_app" / "sync").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (
                node.module == "sessions_app.tasks"
                or (node.module == "sessions_app" and any(a.name == "tasks" for a in node.names))
            ):
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offences == []


def test_only_the_sync_store_factory_asks_the_database_vendor():
    # The engine and the writers write through the store chosen for the pass
    # (sessions_app/sync/store.py), never by vendor.
    offences = []
    for path in sorted((ROOT / "sessions_app" / "sync").rglob("*.py")):
        if path.name == "store.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr == "vendor":
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno} reads .vendor")
            if isinstance(node, ast.Name | ast.Attribute) and "is_postgresql" in ast.unparse(node):
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno} asks is_postgresql")
    assert offences == []


# --- what each package may import, at any depth -------------------------------------


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


def _view_modules() -> list[Path]:
    app = ROOT / "sessions_app"
    return sorted(p for p in app.rglob("*.py") if p.name == "views.py" or p.parent.name == "views")


def test_no_view_imports_the_jules_client() -> None:
    """Views reach Jules only through services; the sync and the outbox through connections."""
    views = _view_modules()
    assert len(views) >= 5
    hits = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in views
        for module in sorted(imported_modules(path))
        if module.split(".")[0] in {"jules", "jules_simulator"}
    ]
    assert hits == []
