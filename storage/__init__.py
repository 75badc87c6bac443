"""The bot's durable state in SQLite (aiosqlite), and its files under one data directory.

    async with Store.open(data_dir, defaults=Settings(iterations=300), clock=time.time) as store:
        store.recovery  RecoveryReport: jobs requeued or failed at open, results still to deliver
        store.jobs      submit (a JobRequest; held until open), open, claim_next, update_progress,
                        set_preview_message, finish, mark_delivered, fail, cancel, requeue, repaint,
                        release, get, active_for_chat, queue_position
        store.sessions  get, set_content (with its message), set_style_upload, set_style_preset,
                        set_options, reset, expire
        store.presets   add, remove, get, all            (names checked by validate_preset_name)
        store.settings  get, set, history, defaults, limits
        store.users     touch, get, record_upload, daily_wait, forget_uploads
        store.inbox     add, done, take_unfinished  (updates whose handling a crash cut short)
        store.files     DataDir: save_upload, save_preset, result_path, save_result, remove_results
        await store.stats(); await store.purge_files()

Only plain values cross this boundary: ints, strings, `Path`, and the frozen dataclasses below.
"""

from storage.files import EXTENSIONS, DataDir
from storage.models import (
    BRUSHES,
    MAX_ATTEMPTS,
    InboxItem,
    Job,
    JobRequest,
    JobStatus,
    Limits,
    Options,
    Preset,
    QueuePosition,
    RecoveryReport,
    Session,
    SettingChange,
    Settings,
    Stats,
    User,
)
from storage.presets import validate_preset_name
from storage.schema import SCHEMA_VERSION
from storage.store import Store

__all__ = [
    "BRUSHES",
    "EXTENSIONS",
    "MAX_ATTEMPTS",
    "SCHEMA_VERSION",
    "DataDir",
    "InboxItem",
    "Job",
    "JobRequest",
    "JobStatus",
    "Limits",
    "Options",
    "Preset",
    "QueuePosition",
    "RecoveryReport",
    "Session",
    "SettingChange",
    "Settings",
    "Stats",
    "Store",
    "User",
    "validate_preset_name",
]
