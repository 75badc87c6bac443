"""Writing a file atomically: a reader (another worker, the bot, a second fetch) never sees half of one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["replacing", "write_atomic"]


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to, renamed over `path` when the block ends without error.

    The temporary file sits in the same folder (a rename across file systems is not atomic) and is named
    per process, so two processes writing the same file cannot mix their bytes; it is removed on failure.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to `path` atomically and return `path`."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return path
