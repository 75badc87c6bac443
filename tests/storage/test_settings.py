"""Settings: defaults from configuration, bounds, and the history of changes."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from storage import Limits, SettingChange, Settings, Store
from tests.storage.support import START, FakeClock


async def test_defaults_come_from_configuration(tmp_path: Path) -> None:
    async with Store.open(tmp_path, defaults=Settings(iterations=300)) as store:
        assert await store.settings.get() == Settings(
            iterations=300, max_image_size=1024, retention_days=7, input_retention_days=1
        )


def audit(store: Store) -> list[tuple[object, ...]]:
    """The settings_history table, oldest first, as an operator's query reads it."""
    with contextlib.closing(sqlite3.connect(store.files.db_path)) as conn:
        query = "SELECT name, old_value, new_value, changed_by, changed_at FROM settings_history ORDER BY id"
        return conn.execute(query).fetchall()


async def test_set_records_who_changed_what(store: Store, clock: FakeClock) -> None:
    first = await store.settings.set("iterations", 800, changed_by=11)
    clock.advance(60)
    second = await store.settings.set("iterations", 1200, changed_by=12)
    await store.settings.set("max_image_size", 768, changed_by=11)

    assert first == SettingChange("iterations", None, 800, 11, START)
    assert second == SettingChange("iterations", 800, 1200, 12, START + 60)
    assert await store.settings.get() == Settings(iterations=1200, max_image_size=768, retention_days=7)
    # The audit trail an operator reads with sqlite3 (docs/configuration.md).
    assert audit(store) == [
        ("iterations", None, 800, 11, START),
        ("iterations", 800, 1200, 12, START + 60),
        ("max_image_size", None, 768, 11, START + 60),
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("iterations", 0),
        ("iterations", 5001),
        ("iterations", -3),
        ("iterations", True),
        ("iterations", 2.5),
        ("max_image_size", 63),
        ("max_image_size", 4097),
        ("retention_days", 0),
        ("retention_days", 366),
        ("input_retention_days", -1),
        ("input_retention_days", 366),
    ],
)
async def test_values_out_of_bounds_are_refused(store: Store, name: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"{name} must be a whole number"):
        await store.settings.set(name, value, changed_by=1)
    assert await store.settings.get() == Settings()
    assert audit(store) == []


async def test_bounds_are_inclusive(store: Store) -> None:
    await store.settings.set("iterations", 1, changed_by=1)
    assert (await store.settings.get()).iterations == 1
    await store.settings.set("iterations", 5000, changed_by=1)
    assert (await store.settings.get()).iterations == 5000


async def test_unknown_setting_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown setting"):
        await store.settings.set("token", 1, changed_by=1)


async def test_defaults_outside_limits_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="iterations must be"):
        await Store.open(tmp_path, defaults=Settings(iterations=10), limits=Limits(iterations=(50, 100)))


async def test_stored_value_is_clamped_when_limits_narrow(tmp_path: Path) -> None:
    async with Store.open(tmp_path) as store:
        await store.settings.set("iterations", 4000, changed_by=1)

    async with Store.open(tmp_path, limits=Limits(iterations=(1, 1000))) as store:
        assert (await store.settings.get()).iterations == 1000
