"""Preset names: validation, normalisation and case-insensitive uniqueness."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import Preset, Store, validate_preset_name
from tests.storage.support import START


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "a/b",
        "a\\b",
        "",
        "x" * 33,
        "a\x00b",
        "a\nb",
        "\x1b[31m",
        ".hidden",
        "..",
        "a.b",
        "a b",
        "-rf",
        "abc\u202e",  # right-to-left override
        "star*",
    ],
)
def test_bad_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="preset name"):
        validate_preset_name(name)


@pytest.mark.parametrize("name", ["monet", "Van_Gogh-2", "Ван_Гог", "北斎", "x" * 32])
def test_good_names_pass_unchanged(name: str) -> None:
    assert validate_preset_name(name) == name


def test_names_are_nfc_normalised() -> None:
    assert validate_preset_name("Ce\u0301zanne") == "C\u00e9zanne"


async def test_add_get_list_remove(store: Store) -> None:
    added = await store.presets.add("Monet", Path("/data/presets/abc.jpg"), added_by=5)

    assert added == Preset(
        name="Monet", image_path=Path("/data/presets/abc.jpg"), added_by=5, created_at=START
    )
    assert await store.presets.get("monet") == added
    assert await store.presets.get("MONET") == added
    await store.presets.add("durer", Path("/data/presets/def.jpg"), added_by=5)
    assert [preset.name for preset in await store.presets.all()] == ["durer", "Monet"]

    assert await store.presets.remove("mOnEt") is True
    assert await store.presets.remove("monet") is False
    assert await store.presets.get("Monet") is None


async def test_names_are_unique_ignoring_case_and_normal_form(store: Store) -> None:
    assert await store.presets.add("Cézanne", Path("a.jpg"), added_by=1) is not None

    assert await store.presets.add("CÉZANNE", Path("b.jpg"), added_by=2) is None
    assert await store.presets.add("Ce\u0301zanne", Path("c.jpg"), added_by=2) is None
    assert [preset.image_path for preset in await store.presets.all()] == [Path("a.jpg")]


async def test_store_refuses_bad_names(store: Store) -> None:
    with pytest.raises(ValueError, match="preset name"):
        await store.presets.add("../../etc/passwd", Path("a.jpg"), added_by=1)
    assert await store.presets.get("../x") is None
    assert await store.presets.remove("a/b") is False
    assert await store.presets.all() == []
