"""Typed, bounded run-time settings and the record of who changed them."""

from __future__ import annotations

import dataclasses

from storage.db import Database
from storage.models import Limits, SettingChange, Settings

NAMES = tuple(field.name for field in dataclasses.fields(Settings))


class SettingsStore:
    """The current settings: stored values over the configured defaults, always within the limits."""

    def __init__(self, db: Database, defaults: Settings, limits: Limits) -> None:
        for name in NAMES:
            _check(limits, name, getattr(defaults, name))
        self._db = db
        self.defaults = defaults
        self.limits = limits

    async def get(self) -> Settings:
        """The settings now in force."""
        rows = await self._db.fetchall("SELECT name, value FROM settings")
        # A value stored under wider limits than today's is clamped rather than trusted.
        stored = {row["name"]: self._clamp(row["name"], row["value"]) for row in rows if row["name"] in NAMES}
        return dataclasses.replace(self.defaults, **stored)

    async def set(self, name: str, value: int, changed_by: int) -> SettingChange:
        """Change one setting; ValueError for an unknown name or a value out of bounds."""
        if name not in NAMES:
            raise ValueError(f"unknown setting {name!r}; known: {', '.join(NAMES)}")
        _check(self.limits, name, value)
        now = self._db.clock()
        async with self._db.transaction() as tx:
            row = await tx.fetchone("SELECT value FROM settings WHERE name = ?", (name,))
            old = row["value"] if row is not None else None
            await tx.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
            await tx.execute(
                "INSERT INTO settings_history (name, old_value, new_value, changed_by, changed_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, old, value, changed_by, now),
            )
        return SettingChange(name=name, old_value=old, new_value=value, changed_by=changed_by, changed_at=now)

    def _clamp(self, name: str, value: int) -> int:
        low, high = _bounds(self.limits, name)
        return min(max(int(value), low), high)


def _bounds(limits: Limits, name: str) -> tuple[int, int]:
    bounds: tuple[int, int] = getattr(limits, name)
    return bounds


def _check(limits: Limits, name: str, value: int) -> None:
    low, high = _bounds(limits, name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
