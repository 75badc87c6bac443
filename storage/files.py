"""The data directory: the database, uploads, results, preset images and the presets' sheet.

File names come from a content hash or a job id, never from anything a user typed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".png", ".webp"})
CLIP_EXTENSIONS = frozenset({".mp4", ".mov", ".webm", ".mkv", ".gif"})  # animations and videos
EXTENSIONS = IMAGE_EXTENSIONS | CLIP_EXTENSIONS
"""The only file extensions callers may choose from."""


class DataDir:
    """Paths under one data directory, and atomic writes into it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.db_path = root / "bot.sqlite3"
        self.uploads = root / "uploads"
        self.results = root / "results"
        self.presets = root / "presets"
        self.sheets = root / "sheets"  # the /styles contact sheet, redrawn when the presets change

    def create(self) -> None:
        """Make the directories if they are missing."""
        for folder in (self.uploads, self.results, self.presets, self.sheets):
            folder.mkdir(parents=True, exist_ok=True)

    def save_upload(self, data: bytes, ext: str) -> Path:
        """Store a user's image under its content hash and return its path."""
        return self._save_by_hash(self.uploads, data, ext)

    def incoming(self, ext: str) -> Path:
        """A new empty file in uploads/ to download a large file into, before `save_downloaded` names it.

        A crash in between leaves it behind as a `.tmp-` file, which the disk janitor counts as the bot's.
        """
        fd, name = tempfile.mkstemp(dir=self.uploads, prefix=".tmp-", suffix=_checked(ext))
        os.close(fd)
        return Path(name)

    def save_downloaded(self, source: Path, ext: str) -> Path:
        """Move a file downloaded by `incoming` to its content hash's name, flushed to disk; its path.

        The file is hashed in chunks: a clip of many megabytes is never held in memory.
        """
        digest = hashlib.sha256()
        with source.open("rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
            os.fsync(file.fileno())
        path = self.uploads / f"{digest.hexdigest()}{_checked(ext)}"
        os.replace(source, path)
        _sync_folder(path.parent)
        return path

    def save_preset(self, data: bytes, ext: str) -> Path:
        """Store a preset's image under its content hash and return its path."""
        return self._save_by_hash(self.presets, data, ext)

    def result_path(self, job_id: int, ext: str = ".png") -> Path:
        """Where the result of job `job_id` belongs."""
        return self.results / f"job-{int(job_id)}{_checked(ext)}"

    def preview_path(self, job_id: int) -> Path:
        """Where the instant preview of job `job_id` belongs."""
        return self.results / f"job-{int(job_id)}-preview.jpg"

    def save_result(self, job_id: int, data: bytes, ext: str = ".png") -> Path:
        """Write the result of job `job_id` atomically and return its path."""
        path = self.result_path(job_id, ext)
        write_atomic(path, data)
        return path

    def remove_results(self, job_id: int) -> int:
        """Delete every result file of job `job_id`; return how many there were."""
        return remove([*(self.result_path(job_id, ext) for ext in EXTENSIONS), self.preview_path(job_id)])

    def managed_files(self) -> Iterator[Path]:
        """Every file the bot itself wrote: uploads, results, and preset images it saved by hash.

        Images an operator put into presets/ (named by the preset, any age) are the operator's and
        are never listed here, so nothing ever deletes them.
        """
        for folder in (self.uploads, self.results):
            yield from (path for path in folder.iterdir() if path.suffix in EXTENSIONS)
        yield from (path for path in self.presets.iterdir() if path.suffix in EXTENSIONS and _bots_own(path))

    def _save_by_hash(self, folder: Path, data: bytes, ext: str) -> Path:
        path = folder / f"{hashlib.sha256(data).hexdigest()}{_checked(ext)}"
        write_atomic(path, data)
        return path


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file next to `path`, flush it to disk, rename it over `path`, and flush
    the folder: only then does the file survive a power loss, as the row naming it, committed next, does.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(path: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk."""
    folder = os.open(path, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def remove(paths: Iterable[Path]) -> int:
    """Delete the files that exist among `paths`; return how many were deleted."""
    count = 0
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        count += 1
    return count


def _bots_own(path: Path) -> bool:
    """Whether `_save_by_hash` named the file (64 hex digits) or left it half-written (`.tmp-…`)."""
    hashed = len(path.stem) == 64 and all(c in "0123456789abcdef" for c in path.stem)
    return hashed or path.name.startswith(".tmp-")


def _checked(ext: str) -> str:
    if ext not in EXTENSIONS:
        raise ValueError(f"extension must be one of {sorted(EXTENSIONS)}, got {ext!r}")
    return ext
