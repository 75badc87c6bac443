"""The package boundaries of the house style, checked on the source (ast), not by convention.

Besides which package may import which: no import cycle among the modules of bot/, engine/ and storage/
(imports inside functions count, since they run too), no private name (`_x`) imported from another module,
no module over `MAX_LINES` lines, and no module (benchmarks and tests included) that changes the
environment when it is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "engine", "storage")
MAX_LINES = 400

FORBIDDEN = {
    "engine": {"telegram", "aiosqlite", "bot", "storage"},
    "storage": {"engine", "telegram", "bot"},
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_across_its_boundary(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no sources found for {package}"
    breaches = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package]) for path in files
    }
    assert {k: v for k, v in breaches.items() if v} == {}


def test_checker_sees_both_import_forms(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import telegram.ext\nfrom storage.store import Store\nfrom . import local\n")
    assert imported_roots(sample) == {"telegram", "storage"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every module of `packages` under `root`, by dotted name."""
    return {module_name(p, root): p for package in packages for p in sorted((root / package).rglob("*.py"))}


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """The known modules `name` imports (anywhere in it), each with the names it takes from that module."""
    is_package = path.name == "__init__.py"
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name in known]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + is_package]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            taken: list[str] = []
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in known:  # `from engine.weights import fetch`: the module itself
                    found.append((submodule, []))
                else:
                    taken.append(alias.name)
            if source in known and taken:
                found.append((source, taken))
    return found


def graph(known: dict[str, Path]) -> dict[str, set[str]]:
    return {
        name: {target for target, _ in imports(name, path, known)} - {name} for name, path in known.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted: every import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def private_imports(known: dict[str, Path]) -> list[str]:
    return sorted(
        f"{name} imports {taken} from {source}"
        for name, path in known.items()
        for source, names in imports(name, path, known)
        for taken in names
        if taken.startswith("_") and source != name
    )


def test_no_import_cycle_among_modules() -> None:
    edges = graph(modules(ROOT))
    assert "engine.workers.jobs" in edges["engine.workers.queued"]  # it does see the real imports
    assert cycles(edges) == []


def test_no_private_name_imported_from_another_module() -> None:
    assert private_imports(modules(ROOT)) == []


def over_limit(known: dict[str, Path]) -> dict[str, int]:
    lengths = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in known.values()}
    return {path: length for path, length in lengths.items() if length > MAX_LINES}


def test_no_module_over_the_line_limit() -> None:
    assert over_limit(modules(ROOT)) == {}


def test_checkers_see_cycles_inside_functions_private_names_and_relative_imports(tmp_path: Path) -> None:
    package = tmp_path / "engine"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from engine.b import g\n    return g\n")
    (package / "b.py").write_text("from . import c\nfrom .a import _hidden\n\ndef g(): ...\n")
    (package / "c.py").write_text("import engine.a\n")
    known = modules(tmp_path, ("engine",))
    assert cycles(graph(known)) == [["engine.a", "engine.b", "engine.c"]]
    assert private_imports(known) == ["engine.b imports _hidden from engine.a"]
    (package / "c.py").write_text("")
    assert cycles(graph(known)) == [["engine.a", "engine.b"]]
    (package / "b.py").write_text("def g(): ...\n")
    assert cycles(graph(known)) == []


def test_bot_process_does_not_load_tensorflow() -> None:
    # The engine's workers load TensorFlow; the bot process only talks to them and stays light.
    import subprocess
    import sys

    code = "import sys, bot.app, bot.__main__; print('tensorflow' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "False"


ENVIRON_WRITES = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"}


def environment_writes_on_import(path: Path) -> list[int]:
    """Lines of `path` that change os.environ when the module is imported: module-level statements (not in
    a function) that assign, delete or update an item of os.environ, or call os.putenv/os.unsetenv."""

    def is_environ(node: ast.AST) -> bool:
        return ast.unparse(node) == "os.environ"

    lines = []
    pending: list[ast.AST] = [
        s
        for s in ast.parse(path.read_text()).body
        if not isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue  # runs when called, not on import (a class body's methods included)
        targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else []
        if isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Subscript) and is_environ(t.value) for t in targets):
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner, name = node.func.value, node.func.attr
            if (is_environ(owner) and name in ENVIRON_WRITES) or ast.unparse(node.func) in (
                "os.putenv",
                "os.unsetenv",
            ):
                lines.append(node.lineno)
        pending.extend(ast.iter_child_nodes(node))
    return sorted(lines)


def test_no_module_changes_the_environment_when_imported() -> None:
    # Tests import benchmark modules (tests/test_upclose.py imports bench/upclose.py and, through it,
    # others); one that set RAY_AUTH_MODE on import made every in-process Ray cluster of the suite refuse
    # its driver. Changing the environment belongs in a main() or a worker's start-up.
    sources = [p for folder in (*PACKAGES, "bench", "tests") for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(sources) > 100
    writes = {str(p.relative_to(ROOT)): lines for p in sources if (lines := environment_writes_on_import(p))}
    assert writes == {}


def test_environment_checker_sees_module_level_writes_only(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import os\n"
        "os.environ.update(A='1')\n"
        "if True:\n"
        "    os.environ['B'] = '2'\n"
        "copy = {**os.environ, 'C': '3'}\n"
        "def main():\n"
        "    os.environ['D'] = '4'\n"
        "class K:\n"
        "    def m(self):\n"
        "        os.putenv('E', '5')\n"
        "os.putenv('F', '6')\n"
    )
    assert environment_writes_on_import(source) == [2, 4, 11]
