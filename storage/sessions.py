"""One session per chat: the inputs received so far and the chat's options."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from storage.db import Database, Transaction
from storage.models import Options, Session
from storage.presets import name_key

_SELECT = (
    "SELECT s.*, p.name AS preset_name, p.image_path AS preset_path"
    " FROM sessions s LEFT JOIN presets p ON p.id = s.style_preset_id WHERE s.chat_id = ?"
)


class Sessions:
    """Read and change chat sessions."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, chat_id: int) -> Session:
        """The chat's session; an empty one if the chat has none."""
        row = await self._db.fetchone(_SELECT, (chat_id,))
        return _session(row) if row is not None else Session(chat_id=chat_id, user_id=None)

    async def set_content(
        self,
        chat_id: int,
        user_id: int,
        path: Path,
        size: tuple[int, int],
        message_id: int | None = None,
        frames: int | None = None,
    ) -> Session:
        """Record the content photo (or clip, with the `frames` it paints), its (width, height) and the
        message it came in.

        The message id makes the change idempotent for the caller: a replayed update whose message is
        already the session's content has been applied.
        """
        width, height = size
        if width < 1 or height < 1:
            raise ValueError(f"image size must be positive, got {size}")
        if frames is not None and frames < 1:
            raise ValueError(f"a clip paints at least one frame, got {frames}")
        return await self._update(
            chat_id,
            user_id,
            "content_path = ?, content_width = ?, content_height = ?, content_message_id = ?,"
            " content_frames = ?",
            (str(path), width, height, message_id, frames),
        )

    async def set_style_upload(self, chat_id: int, user_id: int, path: Path) -> Session:
        """Use an uploaded image as the style (replaces a chosen preset)."""
        return await self._update(chat_id, user_id, "style_path = ?, style_preset_id = NULL", (str(path),))

    async def set_style_preset(self, chat_id: int, user_id: int, name: str) -> Session:
        """Use the preset called `name` as the style; KeyError if there is none."""
        try:
            key = name_key(name)
        except ValueError:
            raise KeyError(name) from None
        async with self._db.transaction() as tx:
            preset = await tx.fetchone("SELECT id FROM presets WHERE name_key = ?", (key,))
            if preset is None:
                raise KeyError(name)
            await self._upsert(
                tx, chat_id, user_id, "style_path = NULL, style_preset_id = ?", (preset["id"],)
            )
            row = await tx.fetchone(_SELECT, (chat_id,))
        assert row is not None
        return _session(row)

    async def set_options(self, chat_id: int, user_id: int, options: Options) -> Session:
        """Replace the chat's options."""
        return await self._update(
            chat_id,
            user_id,
            "output_size = ?, preserve_colors = ?, style_strength = ?, fast = ?, brush = ?",
            (
                options.output_size,
                options.preserve_colors,
                options.style_strength,
                options.fast,
                options.brush,
            ),
        )

    async def reset(self, chat_id: int) -> Session:
        """Forget the content and style received so far; the options stay."""
        async with self._db.transaction() as tx:
            await tx.execute(
                f"UPDATE sessions SET {CLEAR_INPUTS}, updated_at = ? WHERE chat_id = ?",
                (self._db.clock(), chat_id),
            )
            row = await tx.fetchone(_SELECT, (chat_id,))
        return _session(row) if row is not None else Session(chat_id=chat_id, user_id=None)

    async def expire(self, max_idle: float) -> int:
        """Reset sessions with inputs idle longer than `max_idle` seconds; return how many."""
        async with self._db.transaction() as tx:
            return await tx.execute(
                f"UPDATE sessions SET {CLEAR_INPUTS} WHERE updated_at < ?"
                " AND (content_path IS NOT NULL OR style_path IS NOT NULL OR style_preset_id IS NOT NULL)",
                (self._db.clock() - max_idle,),
            )

    async def _update(
        self, chat_id: int, user_id: int, assignments: str, params: tuple[object, ...]
    ) -> Session:
        async with self._db.transaction() as tx:
            await self._upsert(tx, chat_id, user_id, assignments, params)
            row = await tx.fetchone(_SELECT, (chat_id,))
        assert row is not None
        return _session(row)

    async def _upsert(
        self, tx: Transaction, chat_id: int, user_id: int, assignments: str, params: tuple[object, ...]
    ) -> None:
        now = self._db.clock()
        await tx.execute(
            "INSERT INTO sessions (chat_id, user_id, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (chat_id) DO NOTHING",
            (chat_id, user_id, now),
        )
        await tx.execute(
            f"UPDATE sessions SET {assignments}, user_id = ?, updated_at = ? WHERE chat_id = ?",
            (*params, user_id, now, chat_id),
        )


# What forgetting a chat's inputs sets: the photos go, the options stay.
CLEAR_INPUTS = (
    "content_path = NULL, content_width = NULL, content_height = NULL, content_message_id = NULL,"
    " content_frames = NULL, style_path = NULL, style_preset_id = NULL"
)


def _session(row: sqlite3.Row) -> Session:
    content = row["content_path"]
    style = row["style_path"] if row["style_path"] is not None else row["preset_path"]
    return Session(
        chat_id=row["chat_id"],
        user_id=row["user_id"],
        content_path=Path(content) if content is not None else None,
        content_size=(row["content_width"], row["content_height"]) if content is not None else None,
        content_message_id=row["content_message_id"] if content is not None else None,
        content_frames=row["content_frames"] if content is not None else None,
        style_path=Path(style) if style is not None else None,
        style_preset=row["preset_name"],
        options=Options(
            output_size=row["output_size"],
            preserve_colors=bool(row["preserve_colors"]),
            style_strength=row["style_strength"],
            fast=bool(row["fast"]),
            brush=row["brush"],
        ),
        updated_at=row["updated_at"],
    )
