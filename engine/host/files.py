"""Writing a file atomically and durably: a reader (another worker, the bot, a second fetch) never sees half
of one, and once the writer returns a power loss cannot leave it empty or missing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["replacing", "sync", "write_atomic"]


def sync(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to the disk (fsync)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def replacing(path: Path, durable: bool = True) -> Iterator[Path]:
    """A temporary path beside `path` to write to, renamed over `path` when the block ends without error.

    The temporary file sits in the same folder (a rename across file systems is not atomic) and is named
    per process, so two processes writing the same file cannot mix their bytes; it is removed on failure.
    When `durable`, the file is synced before the rename and the folder after it: without that, a file
    renamed into place can come back empty after a power loss (ext4's delayed allocation), though the
    caller has since recorded it as written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        if durable:
            sync(tmp)
        tmp.replace(path)
        if durable:
            sync(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes, durable: bool = True) -> Path:
    """Write `data` to `path` atomically (and durably, see `replacing`) and return `path`."""
    with replacing(path, durable) as tmp:
        tmp.write_bytes(data)
    return path
