"""What the chat sees of a job: its status message, the preview in it, and the result delivered once.

Each job has one status message, a photo sent when the job is queued. Progress edits its caption, the
instant preview and then the result replace its picture (`editMessageMedia`). A retry after a timeout,
a stop or a crash therefore edits that message again instead of sending another copy; only a job
without a status message gets its result as a new message.

Telegram recompresses photos (to 1280 px on the long side in most clients), so a result longer than that
also goes out, once, as a file at full size: the reply that says the painting is there.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from telegram import Bot, InlineKeyboardMarkup, InputMediaDocument, InputMediaPhoto, ReplyParameters
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.i18n import texts_for
from bot.texts import Texts
from engine.images import ALLOWED_FORMATS, ImageError, inspect_image
from storage import Job, JobStatus, Store

logger = logging.getLogger(__name__)

# Telegram's limits for a photo (bytes; width + height; long side over short side); anything beyond goes out
# as a document, and a bot may upload no file larger than UPLOAD_MAX_BYTES.
PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_DIMENSIONS = 10_000
PHOTO_MAX_RATIO = 20
UPLOAD_MAX_BYTES = 50 * 1024 * 1024
# Clients show photos recompressed to this long side: a longer result is also sent as a file.
FULL_SIZE_OVER = 1280
JPEG_QUALITY = 95  # a result too big as PNG is sent as this JPEG instead
# An upload may take this long plus a second per UPLOAD_RATE bytes, so slow uplinks finish big files.
UPLOAD_TIMEOUT = 20.0
UPLOAD_RATE = 500_000
# Delivery retries network trouble for as long as the bot runs, waiting twice as long each time up to
# this; at the next start it begins again.
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
# A job that finishes moments after it was queued may beat the handler recording its status message.
STATUS_MESSAGE_WAIT = 15.0
NOTICE_ATTEMPTS = 3  # for the ready reply (a text, or the full-size file)
# Errors that mean the message to edit is gone (deleted by the user) or is not a media message.
_TARGET_GONE = ("message to edit not found", "message can't be edited", "no media", "message_id_invalid")


class Messenger:
    """Edits and sends on behalf of jobs; remembers which deliveries are waiting for Telegram."""

    def __init__(self, bot: Bot, store: Store) -> None:
        self.bot = bot
        self.store = store
        self._trouble: dict[int, str] = {}  # job id -> the last delivery error, while retrying
        self._media: dict[int, asyncio.Lock] = {}  # one media edit at a time per job

    async def texts(self, job: Job) -> Texts:
        """The texts in the language of the job's user (as last seen), for messages sent on its behalf.

        The language is cosmetic: a database that cannot answer now gives English, never a failed job.
        """
        try:
            user = await self.store.users.get(job.user_id)
        except Exception as exc:
            logger.warning("job %d: user's language unknown (%s); writing in English", job.id, exc)
            user = None
        return texts_for(user.language if user is not None else None)

    def trouble(self, job_id: int) -> bool:
        """Whether this job's result is waiting for Telegram to accept it."""
        return job_id in self._trouble

    async def show_status(self, job: Job, text: str, markup: InlineKeyboardMarkup | None = None) -> bool:
        """Set the caption of the job's status message, best effort; False if the chat does not show it."""
        current = await self.store.jobs.get(job.id)
        message_id = current.status_message_id if current is not None else None
        if message_id is None:
            return False
        try:
            await self.bot.edit_message_caption(
                chat_id=job.chat_id, message_id=message_id, caption=text, reply_markup=markup
            )
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return True
            logger.info("job %d: status edit refused: %s", job.id, exc)
            return False
        except TelegramError as exc:
            logger.info("job %d: status edit dropped: %s", job.id, exc)
            return False
        return True

    async def show_preview(
        self, job: Job, data: bytes, caption: str, markup: InlineKeyboardMarkup | None
    ) -> None:
        """Put the instant preview into the status message (or a message of its own without one)."""
        async with self._media.setdefault(job.id, asyncio.Lock()):
            current = await self.store.jobs.get(job.id)
            if current is None or current.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
                return  # already painted, cancelled or failed: the preview would only confuse
            try:
                if current.status_message_id is not None:
                    await self.bot.edit_message_media(
                        InputMediaPhoto(data, caption=caption),
                        chat_id=job.chat_id,
                        message_id=current.status_message_id,
                        reply_markup=markup,
                    )
                    return
                message = await self.bot.send_photo(job.chat_id, photo=data, caption=caption)
            except TelegramError as exc:
                logger.info("job %d: preview not shown: %s", job.id, exc)
                return
        await self.store.jobs.set_preview_message(job.id, message.message_id)

    async def deliver(self, job: Job) -> None:
        """Put the result in the chat and mark it delivered, retrying network trouble until it goes.

        Only a stop (cancellation) ends the retries early; the job then stays `done` for the next start.
        """
        try:
            async with self._media.setdefault(job.id, asyncio.Lock()):
                await self._deliver(await self._settled(job))
        finally:
            self._trouble.pop(job.id, None)
            self._media.pop(job.id, None)

    async def tell(self, job: Job, text: str) -> None:
        """A new text message to the job's chat, best effort."""
        try:
            await self.bot.send_message(job.chat_id, text)
        except TelegramError as exc:
            logger.info("job %d: could not tell the user: %s", job.id, exc)

    async def _settled(self, job: Job) -> Job:
        """The job as stored, once the handler that queued it has had time to record its status message."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STATUS_MESSAGE_WAIT
        while True:
            current = await self.store.jobs.get(job.id) or job
            waited_enough = time.time() - current.created_at > STATUS_MESSAGE_WAIT
            if current.status_message_id is not None or waited_enough or loop.time() > deadline:
                return current
            await asyncio.sleep(0.1)

    async def _deliver(self, job: Job) -> None:
        texts = await self.texts(job)
        path = job.result_path
        if path is None or not path.is_file():
            await self.store.jobs.fail(job.id, "result file missing")
            await self.tell(job, texts.result_lost())
            return
        result = await asyncio.to_thread(prepare, path, job.id)
        seconds = (job.finished_at - job.started_at) if job.finished_at and job.started_at else None
        caption = texts.done(seconds, await asyncio.to_thread(_shrunk, job, result))
        as_photo = result.photo is not None
        target = job.preview_message_id or job.status_message_id
        delay = RETRY_FIRST_SECONDS
        shown: int | None = None  # the message that shows the result
        while True:
            try:
                shown = await self._put(job, result, caption, as_photo, target)
            except Forbidden:
                logger.info("job %d: the user blocked the bot; closing the job", job.id)
                await self.store.jobs.fail(job.id, "the user blocked the bot")
                return
            except BadRequest as exc:
                reason = str(exc)
                if "not modified" in reason.lower():
                    shown = target
                    break  # an earlier attempt put this very result there
                if target is not None and any(gone in reason.lower() for gone in _TARGET_GONE):
                    logger.info("job %d: message %d not editable (%s); sending anew", job.id, target, reason)
                    target = None
                elif as_photo:
                    logger.info("job %d: photo refused (%s); sending as a document", job.id, reason)
                    as_photo = False
                else:
                    logger.error("job %d: result refused by Telegram: %s", job.id, reason)
                    await self.store.jobs.fail(job.id, f"delivery refused: {reason}")
                    await self.show_status(job, texts.delivery_refused(reason))
                    await self.tell(job, texts.delivery_refused(reason))
                    return
                continue
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc.retry_after))
                continue
            except NetworkError as exc:
                self._trouble[job.id] = str(exc)
                logger.warning("job %d: delivery failed (%s); next try in %.0f s", job.id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_SECONDS, delay * 2)
                continue
            break
        # Being `delivered` is also the record of the ready reply below: a restart never sends it again.
        await self.store.jobs.mark_delivered(job.id)
        logger.info("job %d: delivered", job.id)
        reply = ReplyParameters(message_id=shown, allow_sending_without_reply=True) if shown else None
        if as_photo and result.large:
            caption = texts.full_size(result.width, result.height)
            await self._once(job, "full-size file", lambda: self._send_full_size(job, result, caption, reply))
        elif target is not None:
            # Edits make no sound: a short reply to the painting tells the user it is there.
            ready = texts.ready
            await self._once(
                job, "notice", lambda: self.bot.send_message(job.chat_id, ready, reply_parameters=reply)
            )

    async def _put(self, job: Job, result: Result, caption: str, as_photo: bool, target: int | None) -> int:
        """Show the result in message `target` (or a new message); the id of the message showing it."""
        photo = result.photo if as_photo else None
        data = photo if photo is not None else result.document
        timeout = upload_timeout(len(data))
        if target is not None:
            media = (
                InputMediaPhoto(data, caption=caption)
                if photo is not None
                else InputMediaDocument(data, caption=caption, filename=result.filename)
            )
            await self.bot.edit_message_media(
                media, chat_id=job.chat_id, message_id=target, reply_markup=None, write_timeout=timeout
            )
            return target
        if photo is not None:
            message = await self.bot.send_photo(
                job.chat_id, photo=data, caption=caption, write_timeout=timeout
            )
        else:
            message = await self.bot.send_document(
                job.chat_id, document=data, filename=result.filename, caption=caption, write_timeout=timeout
            )
        return message.message_id

    async def _send_full_size(
        self, job: Job, result: Result, caption: str, reply: ReplyParameters | None
    ) -> None:
        await self.bot.send_document(
            job.chat_id,
            document=result.document,
            filename=result.filename,
            caption=caption,
            reply_parameters=reply,
            write_timeout=upload_timeout(len(result.document)),
        )

    async def _once(self, job: Job, what: str, send: Callable[[], Awaitable[object]]) -> None:
        """Send the ready reply at most once: retried only where nothing can have been sent.

        A timeout might have sent it, so it ends there, as it does on a refusal.
        """
        for attempt in range(NOTICE_ATTEMPTS):
            try:
                await send()
                logger.info("job %d: %s sent", job.id, what)
                return
            except (TimedOut, Forbidden, BadRequest) as exc:
                logger.info("job %d: no %s sent: %s", job.id, what, exc)
                return
            except RetryAfter as exc:
                logger.info("job %d: %s attempt %d throttled: %s", job.id, what, attempt + 1, exc)
                await asyncio.sleep(_seconds(exc.retry_after))
            except TelegramError as exc:
                logger.info("job %d: %s attempt %d failed: %s", job.id, what, attempt + 1, exc)
                await asyncio.sleep(RETRY_FIRST_SECONDS * 2**attempt)


def _shrunk(job: Job, result: Result) -> tuple[int, int] | None:
    """(long side painted, long side asked) when the engine painted smaller than asked (short of memory)."""
    if job.request.fast:
        return None
    try:
        photo = inspect_image(job.content_path, verify=False)
    except (ImageError, OSError):
        return None
    asked = min(job.request.max_size, max(photo.width, photo.height))
    painted = max(result.width, result.height)
    return (painted, asked) if painted < asked - 1 else None


@dataclass(frozen=True)
class Result:
    """A finished picture as it goes to the chat."""

    photo: bytes | None = field(repr=False)  # shown as a photo; None: it goes as a document only
    document: bytes = field(repr=False)  # the full-size file
    filename: str  # painting-<job id>.png (or .jpg)
    width: int
    height: int

    @property
    def large(self) -> bool:
        """Longer than the photos clients show: the full-size file goes out as well."""
        return max(self.width, self.height) > FULL_SIZE_OVER


def prepare(
    path: Path, job_id: int, photo_limit: int = PHOTO_MAX_BYTES, upload_limit: int = UPLOAD_MAX_BYTES
) -> Result:
    """The result at `path` as a photo and a full-size file, each within Telegram's limits.

    The file is the result itself, or a JPEG of it when it is over `upload_limit`. The photo is the
    result where Telegram takes it as one; for a large result that it would not take, a JPEG, downscaled
    only as far as the photo limits need. A small result Telegram would not take goes as a document only.
    """
    data = path.read_bytes()
    with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as img:
        width, height = img.size
        document, suffix = data, path.suffix.lower() or ".png"
        if len(data) > upload_limit:
            document, suffix = _jpeg(img), ".jpg"
        large = max(width, height) > FULL_SIZE_OVER
        photo: bytes | None = None
        if max(width, height) <= PHOTO_MAX_RATIO * min(width, height):
            if len(data) <= photo_limit and width + height <= PHOTO_MAX_DIMENSIONS:
                photo = data
            elif large:
                photo = _jpeg_photo(img, photo_limit)
    return Result(photo, document, f"painting-{job_id}{suffix}", width, height)


def upload_timeout(size: int) -> float:
    """Seconds an upload of `size` bytes may take to write."""
    return UPLOAD_TIMEOUT + size / UPLOAD_RATE


def _jpeg(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _jpeg_photo(img: Image.Image, limit: int) -> bytes:
    """A JPEG of `img` within the photo limits, at full size if it fits."""
    width, height = img.size
    scale = min(1.0, PHOTO_MAX_DIMENSIONS / (width + height))
    while True:
        size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
        data = _jpeg(img if size == img.size else img.convert("RGB").resize(size, Image.Resampling.LANCZOS))
        if len(data) <= limit:
            return data
        scale *= min(0.9, math.sqrt(limit / len(data)))


def _seconds(value: object) -> float:
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else float(value)  # type: ignore[arg-type]
