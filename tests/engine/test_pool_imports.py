"""The job types sit below the pool and its workers: `engine.jobs` imports no sibling but `engine.params`."""

from __future__ import annotations

import ast
from pathlib import Path

import engine.jobs
import engine.pool

ENGINE = Path(engine.jobs.__file__).parent


def engine_imports(path: Path) -> set[str]:
    """Every `engine.*` module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("engine.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("engine"):
            found.add(node.module)
    return found


def test_jobs_import_no_sibling_but_params() -> None:
    assert engine_imports(ENGINE / "jobs.py") == {"engine.params"}


def test_pool_re_exports_the_job_types() -> None:
    for name in ["JobSpec", "Outcome", "ProgressCallback", "ProgressEvent"]:
        assert getattr(engine.pool, name) is getattr(engine.jobs, name)
        assert name in engine.pool.__all__
