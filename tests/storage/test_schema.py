"""Schema versions: a fresh database, upgrading version-1, -3 and -4 databases, refusing a newer one."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from storage import SCHEMA_VERSION, InboxItem, JobRequest, JobStatus, Options, Settings, Store
from storage.schema import MIGRATIONS
from tests.storage.support import REQUEST, FakeClock, submit

# The version-1 schema as released; databases in the field look like this.
V1_SCHEMA = """
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, chat_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN
        ('queued', 'running', 'done', 'delivered', 'failed', 'cancelled')),
    content_path TEXT NOT NULL, style_paths TEXT NOT NULL, params TEXT NOT NULL,
    iterations INTEGER NOT NULL CHECK (iterations > 0), progress INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0, status_message_id INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0, error TEXT, result_path TEXT, created_at REAL NOT NULL,
    started_at REAL, finished_at REAL, delivered_at REAL
);
CREATE INDEX jobs_status ON jobs (status, id);
CREATE INDEX jobs_chat ON jobs (chat_id, status);
CREATE INDEX jobs_user ON jobs (user_id, created_at);
CREATE TABLE presets (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL UNIQUE,
    image_path TEXT NOT NULL, added_by INTEGER NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE sessions (
    chat_id INTEGER PRIMARY KEY, user_id INTEGER, content_path TEXT, content_width INTEGER,
    content_height INTEGER, style_path TEXT,
    style_preset_id INTEGER REFERENCES presets (id) ON DELETE SET NULL,
    output_size INTEGER, preserve_colors INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL
);
CREATE TABLE settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
PRAGMA user_version = 1;
"""


def _v1_database(data_dir: Path) -> Path:
    path = data_dir / "bot.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
        job = "INSERT INTO jobs (chat_id, user_id, status, content_path, style_paths, params, iterations,"
        job += " created_at) VALUES (?, ?, ?, 'c.jpg', ?, ?, ?, ?)"
        conn.execute(
            job, (10, 1, "delivered", json.dumps(["s.jpg"]), json.dumps({"iterations": 100}), 100, 500.0)
        )
        conn.execute(
            job, (10, 1, "queued", json.dumps(["s.jpg"]), json.dumps({"iterations": 200}), 200, 900.0)
        )
        conn.execute(job, (20, 2, "done", json.dumps(["t.jpg"]), json.dumps({"iterations": 300}), 300, 700.0))
        conn.execute("INSERT INTO presets VALUES (1, 'Monet', 'monet', 'p/monet.jpg', 9, 100.0)")
        conn.execute(
            "INSERT INTO sessions (chat_id, user_id, content_path, content_width, content_height,"
            " style_preset_id, preserve_colors, updated_at) VALUES (10, 1, 'c.jpg', 64, 48, 1, 1, 800.0)"
        )
        conn.execute("INSERT INTO settings VALUES ('iterations', 750)")
    conn.close()
    return path


# Jobs as the bot queued them at version 3: the request as JSON in `params`, the strength as the
# engine's style weight (1e6 × strength). Older bots wrote fewer keys; a few rows hold nonsense.
V3_JOBS: tuple[tuple[str, dict[str, object], float | None, float | None, JobRequest], ...] = (
    (
        "queued",
        {
            "iterations": 300,
            "optimizer": "adam",
            "margin": 16,
            "max_size": 768,
            "preserve_colors": True,
            "style_weight": 2.5e6,
            "fast": False,
            "initial": "adain",
        },
        None,
        None,
        JobRequest(300, 768, "adam", "adain", 16, preserve_colors=True, style_strength=2.5),
    ),
    (
        "queued",
        {
            "iterations": 300,
            "optimizer": "lbfgs",
            "margin": 16,
            "max_size": 1024,
            "preserve_colors": False,
            "style_weight": 0.5e6,
            "fast": True,
            "initial": "content",
        },
        None,
        None,
        JobRequest(300, 1024, margin=16, style_strength=0.5, fast=True),
    ),
    (
        "done",
        {"iterations": 100, "max_size": 512, "preserve_colors": True, "style_weight": 3e6},
        1000.0,
        1020.0,
        JobRequest(100, 512, preserve_colors=True, style_strength=3.0),
    ),
    ("delivered", {"iterations": 50}, None, None, JobRequest(50, 512)),
    (
        "delivered",
        {
            "iterations": 100,
            "max_size": "large",
            "optimizer": "sgd",
            "initial": 7,
            "margin": -3,
            "preserve_colors": "yes",
            "style_weight": 0,
            "fast": None,
        },
        2000.0,
        2020.0,
        JobRequest(100, 512),
    ),
    (
        "failed",
        {"iterations": 10, "max_size": 0, "style_weight": 5e9},
        None,
        None,
        JobRequest(10, 512, style_strength=100),
    ),
    (
        "cancelled",
        {"iterations": 10, "max_size": -5, "style_weight": "strong"},
        None,
        None,
        JobRequest(10, 512),
    ),
)


def _v3_database(data_dir: Path) -> Path:
    """A database at version 3 (version 1 as released, then the steps to 3) with `V3_JOBS` in it."""
    path = data_dir / "bot.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1_SCHEMA)
        for statement in (*MIGRATIONS[1], *MIGRATIONS[2]):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 3")
        for number, (status, params, started, finished, _) in enumerate(V3_JOBS, start=1):
            conn.execute(
                "INSERT INTO jobs (chat_id, user_id, status, content_path, style_paths, params, iterations,"
                " started_at, finished_at, created_at)"
                " VALUES (?, ?, ?, 'c.jpg', '[\"s.jpg\"]', ?, ?, ?, ?, ?)",
                (number, number, status, json.dumps(params), params["iterations"], started, finished, 900.0),
            )
    conn.close()
    return path


def _version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    conn.close()
    return version


async def test_fresh_database_is_current(tmp_path: Path) -> None:
    async with Store.open(tmp_path):
        pass

    assert _version(tmp_path / "bot.sqlite3") == SCHEMA_VERSION
    with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_version_1_database_upgrades_in_place(tmp_path: Path) -> None:
    path = _v1_database(tmp_path)

    async with Store.open(tmp_path, recover=False) as store:
        first = await store.jobs.get(1)
        assert first is not None
        assert (first.status, first.iterations, first.request) == (
            JobStatus.DELIVERED,
            100,
            JobRequest(iterations=100, max_size=512),
        )
        assert [job.status for job in await store.jobs.active_for_chat(20)] == [JobStatus.DONE]
        claimed = await store.jobs.claim_next()
        assert claimed is not None
        assert claimed.id == 2
        assert [preset.name for preset in await store.presets.all()] == ["Monet"]
        session = await store.sessions.get(10)
        assert (session.content_size, session.style_preset, session.style_path) == (
            (64, 48),
            "Monet",
            Path("p/monet.jpg"),
        )
        assert session.options == Options(preserve_colors=True, style_strength=1.0)
        assert await store.settings.get() == Settings(iterations=750)
        # Version 2 added users, filled from the jobs they submitted.
        user = await store.users.get(1)
        assert user is not None
        assert (user.first_seen, user.last_seen, user.active_jobs) == (500.0, 900.0, 1)
        change = await store.settings.set("iterations", 800, changed_by=9)
        assert change.old_value == 750

    assert _version(path) == SCHEMA_VERSION


async def test_version_3_jobs_read_back_as_their_requests(tmp_path: Path) -> None:
    path = _v3_database(tmp_path)

    async with Store.open(tmp_path, clock=FakeClock(), recover=False) as store:
        jobs = [await store.jobs.get(number) for number in range(1, len(V3_JOBS) + 1)]
        assert [job.request if job else None for job in jobs] == [expected for *_, expected in V3_JOBS]
        # Estimates count old rows by their size: the done job (100 at 512 px in 20 s) and the one
        # whose size made no sense (counted at 512 px) give 0.2 s per reference iteration, and the
        # queued adam job is 300 iterations at 768 px, 2.25 times the reference area.
        slow = await store.jobs.queue_position(1)
        fast = await store.jobs.queue_position(2)
        assert slow is not None
        assert fast is not None
        assert slow.position == 1
        assert slow.estimate == pytest.approx(300 * 2.25 * 0.2)
        assert (fast.position, fast.estimate) == (1, None)  # no fast job has finished yet
        # The fast row went to its own lane.
        claimed_fast = await store.jobs.claim_next(fast=True)
        assert claimed_fast is not None
        assert (claimed_fast.id, await store.jobs.claim_next(fast=True)) == (2, None)
        claimed = await store.jobs.claim_next()
        assert claimed is not None
        assert (claimed.id, claimed.progress_total) == (1, 300)
        new = await submit(store, user_id=8)
        assert new.request == REQUEST

    assert _version(path) == SCHEMA_VERSION
    with sqlite3.connect(path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
        works = conn.execute("SELECT work, iterations, max_size FROM jobs ORDER BY id").fetchall()
    conn.close()
    # The request's JSON is gone once its columns hold it; every old row got the work it was counted at.
    assert "params" not in columns
    assert [work for work, *_ in works[: len(V3_JOBS)]] == [
        n * (size / 512) ** 2 for _, n, size in works[:-1]
    ]


async def test_version_4_jobs_and_chats_read_back_with_the_medium_brush(tmp_path: Path) -> None:
    path = _v1_database(tmp_path)
    with sqlite3.connect(path) as conn:
        for statement in (*MIGRATIONS[1], *MIGRATIONS[2], *MIGRATIONS[3]):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 4")
        conn.execute("UPDATE sessions SET style_strength = 3.0, output_size = 768")
    conn.close()

    async with Store.open(tmp_path, clock=FakeClock(), recover=False) as store:
        jobs = [await store.jobs.get(number) for number in (1, 2, 3)]
        assert [(job.status, job.request) if job else None for job in jobs] == [
            (JobStatus.DELIVERED, JobRequest(100, 512, brush="medium")),
            (JobStatus.QUEUED, JobRequest(200, 512, brush="medium")),
            (JobStatus.DONE, JobRequest(300, 512, brush="medium")),
        ]
        session = await store.sessions.get(10)
        assert session.options == Options(
            output_size=768, preserve_colors=True, style_strength=3.0, brush="medium"
        )
        new = await store.jobs.submit(
            10, 1, Path("c.jpg"), [Path("s.jpg")], replace(REQUEST, brush="small"), work=1.0
        )
        assert (await store.jobs.get(new.id)).request.brush == "small"  # type: ignore[union-attr]
        changed = await store.sessions.set_options(10, 1, replace(session.options, brush="large"))
        assert changed.options.brush == "large"

    assert _version(path) == SCHEMA_VERSION == 10
    with sqlite3.connect(path) as conn:  # old rows: their iterations at their size, as counted before
        assert conn.execute("SELECT work FROM jobs ORDER BY id").fetchall() == [
            (100.0,),
            (200.0,),
            (300.0,),
            (1.0,),
        ]


# Updates a version-8 inbox held as Telegram sent them: a photo (two sizes), an image document with a
# caption, and a row that is no picture message at all.
V8_INBOX = (
    {
        "update_id": 41,
        "message": {
            "message_id": 410,
            "date": 1750000000,
            "chat": {"id": 5, "type": "private", "first_name": "Ann"},
            "from": {"id": 5, "is_bot": False, "first_name": "Ann", "language_code": "ru"},
            "photo": [
                {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60, "file_size": 900},
                {"file_id": "big", "file_unique_id": "b", "width": 1280, "height": 853, "file_size": 9000},
            ],
        },
    },
    {
        "update_id": 42,
        "message": {
            "message_id": 420,
            "date": 1750000001,
            "chat": {"id": 6, "type": "private"},
            "from": {"id": 6, "is_bot": False, "first_name": "Bo"},
            "caption": "/style monet",
            "document": {"file_id": "doc", "file_unique_id": "d", "mime_type": "image/png", "file_size": 5},
        },
    },
    {"update_id": 43},
)


async def test_version_8_inbox_updates_come_back_as_fields(tmp_path: Path) -> None:
    path = _v1_database(tmp_path)
    with sqlite3.connect(path) as conn:
        for statement in (step for version in MIGRATIONS[1:8] for step in version):
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 8")
        for update in V8_INBOX:
            conn.execute(
                "INSERT INTO inbox (update_id, chat_id, payload, received_at) VALUES (?, ?, ?, 0)",
                (update["update_id"], 5, json.dumps(update)),
            )
    conn.close()

    async with Store.open(tmp_path, clock=FakeClock(), recover=False) as store:
        items = await store.inbox.take_unfinished()

    assert items == [
        InboxItem(
            41, 5, 5, "Ann", "ru", 410, 1750000000.0, None, "big", "b", 9000, 1280, 853, None, attempts=1
        ),
        InboxItem(
            42,
            5,
            6,
            "Bo",
            None,
            420,
            1750000001.0,
            "/style monet",
            "doc",
            "d",
            5,
            None,
            None,
            "image/png",
            attempts=1,
        ),
    ]


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    async with Store.open(tmp_path):
        pass
    with sqlite3.connect(tmp_path / "bot.sqlite3") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()

    with pytest.raises(RuntimeError, match=f"schema version {SCHEMA_VERSION + 1}.*newer version of the bot"):
        await Store.open(tmp_path)
    assert _version(tmp_path / "bot.sqlite3") == SCHEMA_VERSION + 1


async def test_every_commit_is_synced_to_disk(tmp_path: Path) -> None:
    """synchronous=FULL in WAL mode: a power loss cannot undo a commit the bot already acted on."""
    async with Store.open(tmp_path) as store:
        rows = await store._db.fetchall("PRAGMA synchronous")
        journal = await store._db.fetchall("PRAGMA journal_mode")
    assert (rows[0][0], journal[0][0]) == (2, "wal")  # 2 is FULL
