"""The engine's layers: `host` below everything, the job types below the pools and their workers (which the
package exports once), and neither the CLI nor the maths reaching into the workers (doctor uses a pool
through the package, as the bot does)."""

from __future__ import annotations

import ast
from pathlib import Path

import engine
import engine.workers
import engine.workers.jobs

ENGINE = Path(engine.__file__).parent
WORKERS = ENGINE / "workers"


def engine_imports(path: Path) -> set[str]:
    """Every `engine.*` module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("engine.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("engine"):
            found.add(node.module)
    return found


def test_jobs_import_no_sibling_only_params_and_images() -> None:
    assert engine_imports(WORKERS / "jobs.py") == {"engine.params", "engine.images"}


def test_package_exports_the_job_types_themselves() -> None:
    names = ["JobSpec", "Outcome", "Failure", "ProgressCallback", "ProgressEvent", "EngineBackend"]
    for name in [*names, "JobHandle"]:
        assert getattr(engine.workers, name) is getattr(engine.workers.jobs, name)
        assert name in engine.workers.__all__


def test_host_imports_nothing_else_of_the_engine() -> None:
    for path in sorted((ENGINE / "host").glob("*.py")):
        assert {name for name in engine_imports(path) if not name.startswith("engine.host")} == set(), path


def test_only_the_workers_import_the_workers() -> None:
    """`neural-style doctor` runs a pool as the bot does, through the package's exports; nothing else
    outside workers/ touches them."""
    outside = [path for path in sorted(ENGINE.rglob("*.py")) if WORKERS not in path.parents]
    assert outside
    users = {
        p.name: engine_imports(p)
        for p in outside
        if any(n.startswith("engine.workers") for n in engine_imports(p))
    }
    assert list(users) == ["doctor.py"]
    assert {n for n in users["doctor.py"] if n.startswith("engine.workers")} == {"engine.workers"}
