"""The job types sit below the pools and their workers, and the package exports them once."""

from __future__ import annotations

import ast
from pathlib import Path

import engine.workers
import engine.workers.jobs

WORKERS = Path(engine.workers.__file__).parent


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
