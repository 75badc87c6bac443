"""The data directory: hashed names, atomic writes, and purging old or unused files."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

import pytest

from storage import DataDir, JobStatus, Settings, Store
from tests.storage.support import REQUEST, FakeClock

DAY = 86_400.0


def test_uploads_are_named_by_content_hash(tmp_path: Path) -> None:
    files = DataDir(tmp_path)
    files.create()

    path = files.save_upload(b"jpeg bytes", ".jpg")

    assert path == tmp_path / "uploads" / f"{hashlib.sha256(b'jpeg bytes').hexdigest()}.jpg"
    assert path.read_bytes() == b"jpeg bytes"
    assert files.save_upload(b"jpeg bytes", ".jpg") == path
    assert files.save_preset(b"png", ".png").parent == tmp_path / "presets"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.name.startswith(".tmp")) == []


def test_a_download_is_named_by_its_hash_once_complete(tmp_path: Path) -> None:
    files = DataDir(tmp_path)
    files.create()
    data = bytes(range(256)) * 9000  # over two of the chunks it is hashed in

    incoming = files.incoming(".mp4")
    assert incoming.parent == files.uploads
    assert incoming.name.startswith(".tmp-")
    assert incoming in set(files.managed_files())  # a crash before naming it leaves the janitor's file
    incoming.write_bytes(data)
    path = files.save_downloaded(incoming, ".mp4")

    assert path == files.uploads / f"{hashlib.sha256(data).hexdigest()}.mp4"
    assert path.read_bytes() == data
    assert not incoming.exists()
    with pytest.raises(ValueError, match="extension"):
        files.incoming(".exe")


def test_an_upload_is_on_disk_with_its_folder_entry_before_it_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = DataDir(tmp_path)
    files.create()
    synced: list[tuple[str, int]] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        mode = os.fstat(fd)
        synced.append(("folder" if stat.S_ISDIR(mode.st_mode) else "file", mode.st_ino))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = files.save_upload(b"jpeg bytes", ".jpg")
    assert path.read_bytes() == b"jpeg bytes"
    # The renamed file is the synced one (a rename keeps the inode), then the folder with its new entry.
    assert synced == [("file", path.stat().st_ino), ("folder", files.uploads.stat().st_ino)]


@pytest.mark.parametrize("ext", ["", "jpg", ".JPG", ".exe", "/../x.jpg", ".jpg/"])
def test_only_known_extensions(tmp_path: Path, ext: str) -> None:
    files = DataDir(tmp_path)
    files.create()

    with pytest.raises(ValueError, match="extension"):
        files.save_upload(b"x", ext)
    with pytest.raises(ValueError, match="extension"):
        files.result_path(1, ext)
    assert list(files.uploads.iterdir()) == []


def test_results_by_job_id(tmp_path: Path) -> None:
    files = DataDir(tmp_path)
    files.create()

    path = files.save_result(12, b"png bytes")

    assert path == tmp_path / "results" / "job-12.png"
    assert path.read_bytes() == b"png bytes"
    assert files.save_result(12, b"newer") == path
    assert path.read_bytes() == b"newer"
    assert files.remove_results(12) == 1
    assert files.remove_results(12) == 0


async def test_purge_keeps_what_is_used_and_recent(tmp_path: Path) -> None:
    clock = FakeClock(time.time())
    async with Store.open(tmp_path, clock=clock) as store:
        files = store.files
        content = files.save_upload(b"content", ".jpg")
        style = files.save_upload(b"style", ".jpg")
        queued_input = files.save_upload(b"queued", ".jpg")
        in_session = files.save_upload(b"session", ".png")
        preset_image = files.save_preset(b"preset", ".jpg")
        orphan_preset = files.save_preset(b"orphan", ".jpg")
        await store.presets.add("monet", preset_image, added_by=1)
        await store.sessions.set_content(5, 5, in_session, (4, 4))

        old = await store.jobs.submit(1, 1, content, [style], REQUEST, work=1.0)
        await store.jobs.claim_next()
        await store.jobs.finish(old.id, files.save_result(old.id, b"old result"))
        await store.jobs.mark_delivered(old.id)
        clock.advance(8 * DAY)  # beyond the default 7 days of retention
        recent = await store.jobs.submit(2, 2, queued_input, [preset_image], REQUEST, work=1.0)
        await store.jobs.claim_next()
        recent_result = files.save_result(recent.id, b"recent result")
        await store.jobs.finish(recent.id, recent_result)
        await store.jobs.mark_delivered(recent.id)
        cancelled = await store.jobs.submit(4, 4, queued_input, [style], REQUEST, work=1.0)
        await store.jobs.claim_next()
        await store.jobs.cancel(cancelled.id)
        late_result = files.save_result(cancelled.id, b"written after the cancel")  # finish() refused it
        await store.jobs.submit(3, 3, queued_input, [style], REQUEST, work=1.0)
        fresh = files.save_upload(b"just arrived", ".jpg")
        os.utime(fresh, (clock.now, clock.now))  # saved "now" on the store's clock

        assert await store.purge_files(grace=60) == 4

        assert not files.result_path(old.id).exists()
        old_job = await store.jobs.get(old.id)
        assert old_job is not None
        assert (old_job.status, old_job.result_path) == (JobStatus.DELIVERED, None)
        assert not content.exists()  # only the purged job used it
        assert not orphan_preset.exists()
        assert not late_result.exists()
        # `style` is an input of the queued job, `fresh` is newer than the grace period.
        assert all(path.exists() for path in (style, queued_input, in_session, preset_image, recent_result))
        assert fresh.exists()
        assert await store.purge_files(grace=60) == 0


async def test_purge_never_deletes_what_an_operator_put_in_presets(tmp_path: Path) -> None:
    clock = FakeClock(time.time())
    async with Store.open(tmp_path, clock=clock) as store:
        copied = store.files.presets / "starry.jpg"
        copied.write_bytes(b"an operator's preset, copied with its old date")
        os.utime(copied, (clock.now - 30 * DAY, clock.now - 30 * DAY))
        orphan = store.files.save_preset(b"saved by the bot, then its preset was removed", ".jpg")
        os.utime(orphan, (clock.now - DAY, clock.now - DAY))

        assert await store.purge_files(grace=60) == 1

        assert copied.exists()
        assert not orphan.exists()


async def test_purge_compares_files_not_path_strings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows written while the data folder was given as an absolute path, purged with a relative one."""
    clock = FakeClock(time.time())
    async with Store.open(tmp_path / "data", clock=clock) as store:
        upload = store.files.save_upload(b"content of a queued job", ".jpg")
        preset = store.files.save_preset(b"preset", ".jpg")
        await store.presets.add("monet", preset, added_by=1)
        await store.jobs.submit(1, 1, upload, [preset], REQUEST, work=1.0)
    for path in (upload, preset):
        os.utime(path, (clock.now - DAY, clock.now - DAY))
    monkeypatch.chdir(tmp_path)
    async with Store.open(Path("data"), clock=clock) as store:
        assert not store.files.uploads.is_absolute()
        assert await store.purge_files(grace=60) == 0
    assert upload.exists()
    assert preset.exists()


async def _delivered(store: Store, content: Path, style: Path) -> tuple[int, Path]:
    """A job painted and delivered now; its id and result file."""
    job = await store.jobs.submit(1, 1, content, [style], REQUEST, work=1.0)
    await store.jobs.claim_next()
    result = store.files.save_result(job.id, b"painting")
    await store.jobs.finish(job.id, result)
    await store.jobs.mark_delivered(job.id)
    return job.id, result


@pytest.mark.parametrize(("inputs_days", "results_days"), [(1, 7), (2, 3), (0, 1)])
async def test_purge_keeps_inputs_and_results_for_their_configured_days(
    tmp_path: Path, inputs_days: int, results_days: int
) -> None:
    clock = FakeClock(time.time())
    settings = Settings(retention_days=results_days, input_retention_days=inputs_days)
    async with Store.open(tmp_path, defaults=settings, clock=clock) as store:
        content, style = store.files.save_upload(b"photo", ".jpg"), store.files.save_upload(b"style", ".png")
        preset = store.files.save_preset(b"preset", ".jpg")
        await store.presets.add("monet", preset, added_by=1)
        for path in (content, style, preset):
            os.utime(path, (clock.now - DAY, clock.now - DAY))  # all saved well before the grace period
        job_id, result = await _delivered(store, content, style)
        _, preset_result = await _delivered(store, content, preset)
        finished = clock.now

        async def kept_after(days: float) -> list[bool]:
            clock.now = finished + days * DAY
            await store.purge_files(grace=60)
            return [path.exists() for path in (content, style, preset, result, preset_result)]

        if inputs_days:
            assert await kept_after(inputs_days - 0.1) == [True] * 5
        assert await kept_after(inputs_days + 0.1) == [False, False, True, True, True]
        assert await kept_after(results_days - 0.1) == [False, False, True, True, True]
        assert await kept_after(results_days + 0.1) == [False, False, True, False, False]
        job = await store.jobs.get(job_id)
        assert job is not None
        assert (job.status, job.result_path) == (JobStatus.DELIVERED, None)
        assert await store.presets.get("monet") is not None
