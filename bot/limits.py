"""What a picture must pass before it is downloaded: free disk space, the daily and per-minute limits."""

from __future__ import annotations

import logging
import shutil
import time
from collections import deque
from pathlib import Path

from telegram import Message

from bot.config import Config
from bot.texts import Texts
from storage import Store

logger = logging.getLogger(__name__)

# The upload limiter forgets users idle for a whole window once it tracks this many.
MAX_TRACKED_USERS = 10_000


class Uploads:
    """Every check of a picture before its download, in the order that counts nothing refused."""

    def __init__(self, config: Config) -> None:
        self.per_minute = UploadLimiter(config.uploads_per_minute)
        self.disk = FreeSpace(config.data_dir, config.min_free_disk)
        self.daily_limit = config.daily_limit_per_user
        self.is_admin = config.is_admin

    async def admit(self, message: Message, texts: Texts, user_id: int, store: Store) -> bool:
        """Whether the user's picture may be downloaded (then it is counted); False after saying why not.

        Admins have no daily limit. A user's pictures are checked one after another (their private
        chat's updates are handled in order), so the daily count read here is still true when it grows.
        """
        if self.disk.short():
            await message.reply_text(texts.short_of_disk)
            return False
        if not self.is_admin(user_id):
            wait = await store.users.daily_wait(user_id, self.daily_limit)
            if wait is not None:
                logger.info("user %d: %d pictures in 24 hours, the daily limit", user_id, self.daily_limit)
                await message.reply_text(texts.daily_limit(self.daily_limit, wait))
                return False
        if not self.per_minute.allow(user_id):
            await message.reply_text(texts.too_many_uploads)
            return False
        await store.users.record_upload(user_id)
        return True


class FreeSpace:
    """The free bytes on the data directory's disk, against the floor below which uploads are refused.

    Measured at every look: `shutil.disk_usage` is one `statvfs` call, nothing next to a download.
    """

    def __init__(self, folder: Path, floor: int) -> None:
        self.folder = folder
        self.floor = floor
        self._short = False

    def free(self) -> int:
        """Bytes an unprivileged process may still write on the folder's filesystem."""
        return shutil.disk_usage(self.folder).free

    def short(self) -> bool:
        """Whether free space is under the floor; the log says so once each time that changes."""
        free = self.free()
        short = free < self.floor
        if short and not self._short:
            logger.warning(
                "only %d MiB free on %s, under BOT_MIN_FREE_DISK (%d MiB): new pictures are refused",
                free >> 20,
                self.folder,
                self.floor >> 20,
            )
        elif self._short and not short:
            logger.info("%d MiB free on %s again: new pictures are taken", free >> 20, self.folder)
        self._short = short
        return short


class UploadLimiter:
    """At most `limit` pictures per user in any `window` seconds: a sliding window kept in memory.

    It guards the downloads and disk of the bot against one user flooding it; the queue's per-user
    limit guards the engine.
    """

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._times: dict[int, deque[float]] = {}

    def allow(self, user_id: int, now: float | None = None) -> bool:
        """Count one upload and say whether it is within the limit (refused uploads don't count)."""
        now = time.monotonic() if now is None else now
        if len(self._times) >= MAX_TRACKED_USERS:
            self._forget_idle(now)
        times = self._times.setdefault(user_id, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True

    def _forget_idle(self, now: float) -> None:
        """Drop users with no upload in the window, so the table does not grow for ever."""
        for user_id in [u for u, t in self._times.items() if not t or t[-1] <= now - self.window]:
            del self._times[user_id]
