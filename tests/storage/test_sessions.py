"""Chat sessions: inputs, style choice, options, reset and expiry."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import Options, Session, Store
from tests.storage.support import START, FakeClock


async def test_new_chat_has_an_empty_session(store: Store) -> None:
    assert await store.sessions.get(1) == Session(chat_id=1, user_id=None)


async def test_a_clip_as_content_keeps_its_frames_until_reset(store: Store) -> None:
    session = await store.sessions.set_content(1, 7, Path("/u/a.mp4"), (480, 270), 5, frames=36)
    assert (session.content_path, session.content_size, session.content_frames) == (
        Path("/u/a.mp4"),
        (480, 270),
        36,
    )
    photo = await store.sessions.set_content(1, 7, Path("/u/b.jpg"), (640, 480), 6)
    assert photo.content_frames is None  # a photo after the clip is a photo
    with pytest.raises(ValueError, match="frame"):
        await store.sessions.set_content(1, 7, Path("/u/a.mp4"), (480, 270), 7, frames=0)
    await store.sessions.set_content(1, 7, Path("/u/a.mp4"), (480, 270), 8, frames=36)
    assert (await store.sessions.reset(1)).content_frames is None


async def test_content_then_uploaded_style(store: Store, clock: FakeClock) -> None:
    session = await store.sessions.set_content(1, 7, Path("/u/a.jpg"), (640, 480))
    assert (session.content_path, session.content_size, session.ready) == (
        Path("/u/a.jpg"),
        (640, 480),
        False,
    )

    clock.advance(3)
    session = await store.sessions.set_style_upload(1, 7, Path("/u/b.jpg"))

    assert session == Session(
        chat_id=1,
        user_id=7,
        content_path=Path("/u/a.jpg"),
        content_size=(640, 480),
        style_path=Path("/u/b.jpg"),
        style_preset=None,
        options=Options(),
        updated_at=START + 3,
    )
    assert session.ready
    assert await store.sessions.get(1) == session


async def test_preset_style_replaces_upload_and_follows_preset_removal(store: Store) -> None:
    await store.presets.add("Monet", Path("/p/monet.jpg"), added_by=1)
    await store.sessions.set_style_upload(1, 7, Path("/u/b.jpg"))

    session = await store.sessions.set_style_preset(1, 7, "monet")
    assert (session.style_path, session.style_preset) == (Path("/p/monet.jpg"), "Monet")

    await store.presets.remove("Monet")
    session = await store.sessions.get(1)
    assert (session.style_path, session.style_preset) == (None, None)


@pytest.mark.parametrize("name", ["nope", "../x"])
async def test_unknown_preset_is_a_key_error(store: Store, name: str) -> None:
    with pytest.raises(KeyError):
        await store.sessions.set_style_preset(1, 7, name)
    assert await store.sessions.get(1) == Session(chat_id=1, user_id=None)


async def test_options_persist_and_survive_reset(store: Store) -> None:
    await store.sessions.set_content(1, 7, Path("/u/a.jpg"), (10, 10))
    options = Options(output_size=512, preserve_colors=True, style_strength=2.5, brush="small")

    assert (await store.sessions.set_options(1, 7, options)).options == options
    session = await store.sessions.reset(1)

    assert (session.content_path, session.content_size, session.style_path) == (None, None, None)
    assert session.options == options
    assert await store.sessions.get(2) == Session(chat_id=2, user_id=None)


@pytest.mark.parametrize(
    "kwargs",
    [{"output_size": 0}, {"style_strength": 0.0}, {"style_strength": float("inf")}, {"brush": "tiny"}],
)
def test_options_are_bounded(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        Options(**kwargs)  # type: ignore[arg-type]


async def test_expire_resets_only_stale_sessions(store: Store, clock: FakeClock) -> None:
    await store.sessions.set_content(1, 7, Path("/u/a.jpg"), (10, 10))
    await store.sessions.set_options(2, 8, Options(preserve_colors=True))
    clock.advance(3600)
    await store.sessions.set_content(3, 9, Path("/u/c.jpg"), (10, 10))
    clock.advance(60)

    assert await store.sessions.expire(max_idle=1800) == 1

    assert (await store.sessions.get(1)).content_path is None
    assert (await store.sessions.get(2)).options.preserve_colors is True
    assert (await store.sessions.get(3)).content_path == Path("/u/c.jpg")
    assert await store.sessions.expire(max_idle=1800) == 0
