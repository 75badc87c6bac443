"""The schema, as forward migrations counted by `PRAGMA user_version`."""

from __future__ import annotations

import logging
from pathlib import Path

from storage.db import Database

logger = logging.getLogger(__name__)

# Version 1: jobs, chat sessions, presets and plain key-value settings.
V1 = (
    """CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        chat_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN
            ('queued', 'running', 'done', 'delivered', 'failed', 'cancelled')),
        content_path TEXT NOT NULL,
        style_paths TEXT NOT NULL,
        params TEXT NOT NULL,
        iterations INTEGER NOT NULL CHECK (iterations > 0),
        progress INTEGER NOT NULL DEFAULT 0,
        progress_total INTEGER NOT NULL DEFAULT 0,
        status_message_id INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        result_path TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        delivered_at REAL
    )""",
    "CREATE INDEX jobs_status ON jobs (status, id)",
    "CREATE INDEX jobs_chat ON jobs (chat_id, status)",
    "CREATE INDEX jobs_user ON jobs (user_id, created_at)",
    """CREATE TABLE presets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        name_key TEXT NOT NULL UNIQUE,
        image_path TEXT NOT NULL,
        added_by INTEGER NOT NULL,
        created_at REAL NOT NULL
    )""",
    """CREATE TABLE sessions (
        chat_id INTEGER PRIMARY KEY,
        user_id INTEGER,
        content_path TEXT,
        content_width INTEGER,
        content_height INTEGER,
        style_path TEXT,
        style_preset_id INTEGER REFERENCES presets (id) ON DELETE SET NULL,
        output_size INTEGER,
        preserve_colors INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL
    )""",
    "CREATE TABLE settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)

# Version 2: users, who changed which setting, and the style strength option.
V2 = (
    """CREATE TABLE users (
        user_id INTEGER PRIMARY KEY,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        language TEXT
    )""",
    """INSERT INTO users (user_id, first_seen, last_seen)
        SELECT user_id, MIN(created_at), MAX(created_at) FROM jobs GROUP BY user_id""",
    """CREATE TABLE settings_history (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        old_value INTEGER,
        new_value INTEGER NOT NULL,
        changed_by INTEGER NOT NULL,
        changed_at REAL NOT NULL
    )""",
    "ALTER TABLE sessions ADD COLUMN style_strength REAL NOT NULL DEFAULT 1.0",
)

# Version 3: incoming messages whose handling has started but not finished (a crash mid-download),
# the message showing a job's instant preview, and the "fast" option (the preview is the result).
V3 = (
    """CREATE TABLE inbox (
        update_id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        received_at REAL NOT NULL
    )""",
    "ALTER TABLE jobs ADD COLUMN preview_message_id INTEGER",
    "ALTER TABLE sessions ADD COLUMN fast INTEGER NOT NULL DEFAULT 0",
)

LEGACY_STYLE_WEIGHT = 1e6
"""The `style_weight` the bot stored in `params` for style strength 1, before version 4."""

LEGACY_MAX_SIZE = 512
"""The output size of a job whose `params` named none, before version 4."""


def _legacy(key: str) -> str:
    return f"json_extract(params, '$.{key}')"


def _legacy_number(key: str, minimum: int, default: int) -> str:
    """SQL for a whole number ≥ `minimum` from `params`, or `default` when it is missing or unusable."""
    value = _legacy(key)
    return (
        f"CASE WHEN typeof({value}) IN ('integer', 'real') AND {value} >= {minimum}"
        f" THEN CAST({value} AS INTEGER) ELSE {default} END"
    )


def _legacy_choice(key: str, choices: tuple[str, ...]) -> str:
    """SQL for one of `choices` from `params`, or the first when it is missing or another value."""
    names = ", ".join(f"'{choice}'" for choice in choices)
    return f"CASE WHEN {_legacy(key)} IN ({names}) THEN {_legacy(key)} ELSE '{choices[0]}' END"


def _legacy_flag(key: str) -> str:
    """SQL for 1 when `params` holds true (or a non-zero number) under `key`, else 0."""
    kind = f"json_type(params, '$.{key}')"
    return (
        f"CASE WHEN {kind} = 'true' OR ({kind} IN ('integer', 'real') AND {_legacy(key)} <> 0)"
        " THEN 1 ELSE 0 END"
    )


_WEIGHT = _legacy("style_weight")
_STRENGTH = f"({_WEIGHT} / {LEGACY_STYLE_WEIGHT!r})"

# Version 4: a job's request in columns of its own instead of a JSON dict of parameters, and the
# style strength itself instead of the engine weight it was turned into (version 9 drops `params`).
# An old row's missing or unusable value becomes the request's default, a strength above 100 becomes
# 100. The choices are spelled out here, not imported, so that this step stays what it was when
# `JobRequest` learns new ones.
V4 = (
    f"ALTER TABLE jobs ADD COLUMN max_size INTEGER NOT NULL DEFAULT {LEGACY_MAX_SIZE}",
    "ALTER TABLE jobs ADD COLUMN optimizer TEXT NOT NULL DEFAULT 'lbfgs'",
    "ALTER TABLE jobs ADD COLUMN initial TEXT NOT NULL DEFAULT 'content'",
    "ALTER TABLE jobs ADD COLUMN margin INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE jobs ADD COLUMN preserve_colors INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE jobs ADD COLUMN style_strength REAL NOT NULL DEFAULT 1.0",
    "ALTER TABLE jobs ADD COLUMN fast INTEGER NOT NULL DEFAULT 0",
    f"""UPDATE jobs SET
        max_size = {_legacy_number("max_size", 1, LEGACY_MAX_SIZE)},
        optimizer = {_legacy_choice("optimizer", ("lbfgs", "adam"))},
        initial = {_legacy_choice("initial", ("content", "adain"))},
        margin = {_legacy_number("margin", 0, 0)},
        preserve_colors = {_legacy_flag("preserve_colors")},
        style_strength = CASE WHEN typeof({_WEIGHT}) IN ('integer', 'real') AND {_STRENGTH} > 0
            THEN MIN({_STRENGTH}, 100.0) ELSE 1.0 END,
        fast = {_legacy_flag("fast")}
        WHERE json_valid(params)""",
)

# Version 5: the brush size, a chat's option and a job's request; older chats and jobs are "medium",
# the style at the content's width, as the bot painted before it had the choice.
V5 = (
    "ALTER TABLE jobs ADD COLUMN brush TEXT NOT NULL DEFAULT 'medium'",
    "ALTER TABLE sessions ADD COLUMN brush TEXT NOT NULL DEFAULT 'medium'",
)

# Version 6: a job's work in units of one iteration at 512 px, as the bot reckons it when it queues the
# job (a big painting runs coarse to fine: its iterations do not all cost its full size). NULL on older
# jobs: their work is reckoned from iterations and size as before.
V6 = ("ALTER TABLE jobs ADD COLUMN work REAL",)

# Version 7: when each user sent each picture, for the daily limit (rows older than a day are purged).
V7 = (
    "CREATE TABLE uploads (user_id INTEGER NOT NULL, at REAL NOT NULL)",
    "CREATE INDEX uploads_user ON uploads (user_id, at)",
)

# Version 8: intake and delivery carry what they know on the row. A job is queued with `intake_pending`
# set while the bot sends its status message, and is claimed only once that message is recorded (or
# known not sent); the photo's upright size, and the long side painted when memory was short, travel
# with the job; a session remembers the message its photo came in, so a replayed update is known as
# already applied.
V8 = (
    "ALTER TABLE jobs ADD COLUMN intake_pending INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE jobs ADD COLUMN content_width INTEGER",
    "ALTER TABLE jobs ADD COLUMN content_height INTEGER",
    "ALTER TABLE jobs ADD COLUMN shrunk_to INTEGER",
    "ALTER TABLE sessions ADD COLUMN content_message_id INTEGER",
)

# Version 9: storage keeps what it is given. Every job's work comes from the bot (older rows get what
# the bot reckoned for them before: iterations × (max_size / 512)²), the request's JSON of versions 1–3
# goes, and the inbox holds a picture message as fields instead of the update's raw JSON: the chat and
# sender, the message, and the one file it carries (the largest photo size, or the image document).
_UPDATE = "json_extract(payload, '$.message.{}')"
_FILE = f"COALESCE({_UPDATE.format('photo[#-1].{0}')}, {_UPDATE.format('document.{0}')})"
V9 = (
    "UPDATE jobs SET work = iterations * (max_size / 512.0) * (max_size / 512.0) WHERE work IS NULL",
    "ALTER TABLE jobs DROP COLUMN params",
    """CREATE TABLE inbox_items (
        update_id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        first_name TEXT NOT NULL,
        language_code TEXT,
        message_id INTEGER NOT NULL,
        sent_at REAL NOT NULL,
        caption TEXT,
        file_id TEXT NOT NULL,
        file_unique_id TEXT NOT NULL,
        file_size INTEGER,
        width INTEGER,
        height INTEGER,
        mime_type TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        received_at REAL NOT NULL
    )""",
    f"""INSERT INTO inbox_items SELECT update_id, chat_id, {_UPDATE.format("from.id")},
        COALESCE({_UPDATE.format("from.first_name")}, ''), {_UPDATE.format("from.language_code")},
        {_UPDATE.format("message_id")}, {_UPDATE.format("date")}, {_UPDATE.format("caption")},
        {_FILE.format("file_id")}, {_FILE.format("file_unique_id")}, {_FILE.format("file_size")},
        {_UPDATE.format("photo[#-1].width")}, {_UPDATE.format("photo[#-1].height")},
        {_UPDATE.format("document.mime_type")}, attempts, received_at
        FROM inbox WHERE json_valid(payload) AND {_UPDATE.format("message_id")} IS NOT NULL
        AND {_UPDATE.format("from.id")} IS NOT NULL AND {_FILE.format("file_id")} IS NOT NULL""",
    "DROP TABLE inbox",
    "ALTER TABLE inbox_items RENAME TO inbox",
)

# Version 10: animations. An inbox message says which kind of attachment it carries (photo, document,
# animation, video or video note; NULL on older rows: a photo when it has a size, else a document) and a
# clip's duration; a session whose content is a clip knows how many frames it paints.
V10 = (
    "ALTER TABLE inbox ADD COLUMN media TEXT",
    "ALTER TABLE inbox ADD COLUMN duration INTEGER",
    "ALTER TABLE sessions ADD COLUMN content_frames INTEGER",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (V1, V2, V3, V4, V5, V6, V7, V8, V9, V10)
SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(db: Database, path: Path) -> int:
    """Bring the database at `path` up to `SCHEMA_VERSION`; return the version it had."""
    # Each step runs in its own transaction and re-reads the version inside it, so a
    # crash leaves a whole version behind and two processes opening at once agree.
    found: int | None = None
    for target in range(1, SCHEMA_VERSION + 1):
        async with db.transaction() as tx:
            row = await tx.fetchone("PRAGMA user_version")
            assert row is not None
            version = int(row[0])
            if found is None:
                found = version
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{path} has schema version {version} but this code only knows up to "
                    f"{SCHEMA_VERSION}; run a newer version of the bot or restore a backup"
                )
            if version >= target:
                continue
            for statement in MIGRATIONS[target - 1]:
                await tx.execute(statement)
            await tx.execute(f"PRAGMA user_version = {target}")
            logger.info("Migrated %s to schema version %d", path, target)
    assert found is not None
    return found
