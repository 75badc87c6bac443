"""Atomic, durable writes: the whole file or none, synced (file, then folder) before the caller goes on."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine.host.files import write_atomic

Synced = list[tuple[str, int, bool]]


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Synced:
    """Every fsync as (file or folder, its inode, whether tmp_path/out/result.png existed then)."""
    calls: Synced = []
    real = os.fsync

    def fsync(fd: int) -> None:
        mode = os.fstat(fd)
        kind = "folder" if stat.S_ISDIR(mode.st_mode) else "file"
        calls.append((kind, mode.st_ino, (tmp_path / "out" / "result.png").exists()))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_the_file_is_synced_before_the_rename_and_its_folder_after(synced: Synced, tmp_path: Path) -> None:
    path = tmp_path / "out" / "result.png"
    data = bytes(range(256)) * 4096
    assert write_atomic(path, data) == path
    assert path.read_bytes() == data
    assert [p.name for p in path.parent.iterdir()] == ["result.png"]  # the temporary file is gone
    # The renamed file is the synced one (a rename keeps the inode); the folder, with its new entry, after.
    assert synced == [("file", path.stat().st_ino, False), ("folder", path.parent.stat().st_ino, True)]


def test_a_file_that_outlives_nothing_is_not_synced(synced: Synced, tmp_path: Path) -> None:
    path = tmp_path / "out" / "result.png"
    write_atomic(path, b"scratch", durable=False)
    assert (path.read_bytes(), synced) == (b"scratch", [])


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out" / "result.png"
    with pytest.raises(TypeError):
        write_atomic(path, "not bytes")  # type: ignore[arg-type]
    assert list(path.parent.iterdir()) == []
