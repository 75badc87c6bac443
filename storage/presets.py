"""Named style presets with validated, case-insensitively unique names."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import unicodedata
from pathlib import Path

from storage.db import Database
from storage.models import Preset

logger = logging.getLogger(__name__)

MAX_NAME_LENGTH = 32
# The image files an operator may drop into the presets folder (the formats the bot accepts as photos).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def validate_preset_name(name: str) -> str:
    """Return `name` NFC-normalised, or raise ValueError saying what is wrong with it.

    Letters and digits of any script, `_` and `-`; 1 to MAX_NAME_LENGTH characters; not starting with `-`.
    """
    name = unicodedata.normalize("NFC", name)
    if not name:
        raise ValueError("a preset name cannot be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a preset name has at most {MAX_NAME_LENGTH} characters")
    if name.startswith("-"):
        raise ValueError("a preset name cannot start with '-'")
    for char in name:
        if char not in "_-" and unicodedata.category(char)[0] not in "LN":
            raise ValueError(f"a preset name may hold only letters, digits, '_' and '-', not {char!r}")
    return name


def name_key(name: str) -> str:
    """The form two names share when they count as the same preset."""
    return unicodedata.normalize("NFC", validate_preset_name(name).casefold())


class Presets:
    """Add, remove, find and list presets."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, name: str, image_path: Path, added_by: int) -> Preset | None:
        """Add a preset; None if the name is taken, ValueError if it is not a valid name."""
        name = validate_preset_name(name)
        now = self._db.clock()
        rows = await self._db.fetchall(
            "INSERT INTO presets (name, name_key, image_path, added_by, created_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name_key) DO NOTHING RETURNING *",
            (name, name_key(name), str(image_path), added_by, now),
        )
        return _preset(rows[0]) if rows else None

    async def add_folder(self, folder: Path) -> list[Preset]:
        """Make every image in `folder` a preset named by its file stem, unless that name is taken.

        Files whose stem is no valid preset name are left alone: the images the bot saved itself for
        /addstyle are named by their hash and are presets already.
        """
        added = []
        for path in await asyncio.to_thread(_images_in, folder):
            try:
                name = validate_preset_name(path.stem)
            except ValueError:
                continue
            preset = await self.add(name, path, added_by=0)
            if preset is not None:
                logger.info("preset %s loaded from %s", name, path.name)
                added.append(preset)
        return added

    async def remove(self, name: str) -> bool:
        """Remove the preset called `name`; False if there is none."""
        key = _key_or_none(name)
        return key is not None and bool(
            await self._db.fetchall("DELETE FROM presets WHERE name_key = ? RETURNING id", (key,))
        )

    async def get(self, name: str) -> Preset | None:
        """The preset called `name` in any letter case, if any."""
        key = _key_or_none(name)
        if key is None:
            return None
        row = await self._db.fetchone("SELECT * FROM presets WHERE name_key = ?", (key,))
        return _preset(row) if row is not None else None

    async def all(self) -> list[Preset]:
        """Every preset, by name."""
        rows = await self._db.fetchall("SELECT * FROM presets ORDER BY name_key")
        return [_preset(row) for row in rows]


def _key_or_none(name: str) -> str | None:
    try:
        return name_key(name)
    except ValueError:
        return None


def _preset(row: sqlite3.Row) -> Preset:
    return Preset(
        name=row["name"],
        image_path=Path(row["image_path"]),
        added_by=row["added_by"],
        created_at=row["created_at"],
    )


def _images_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
