"""What the chat sees of a job: its status message, the preview in it, and the result delivered once.

Each job has one status message, a photo sent when the job is queued. Progress edits its caption, the
instant preview and then the result replace its picture (`editMessageMedia`). A retry after a timeout,
a stop or a crash therefore edits that message again instead of sending another copy; only a job
without a status message gets its result as a new message, and that send is repeated only when it
certainly did nothing (`nothing_sent`).

A painted clip replaces the status picture as an animation (an H.264 MP4 without sound, which loops).

Telegram recompresses photos (to 1280 px on the long side in most clients), so a result longer than that
also goes out, once, as a file at full size: the reply that says the painting is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import httpx
from telegram import (
    Bot,
    InlineKeyboardMarkup,
    InputMediaAnimation,
    InputMediaDocument,
    InputMediaPhoto,
    ReplyParameters,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.i18n import texts_for
from bot.keyboards import cancel_keyboard
from bot.rate_limit import droppable
from bot.results import Result, prepare
from bot.texts import Texts
from storage import Job, JobStatus, Store

logger = logging.getLogger(__name__)

# An upload may take this long plus a second per UPLOAD_RATE bytes to write, so slow uplinks finish big
# files; Telegram answers after it has processed the file, which may take as long again.
UPLOAD_TIMEOUT = 20.0
UPLOAD_RATE = 500_000
# Delivery retries network trouble for as long as the bot runs, waiting twice as long each time up to
# this; at the next start it begins again.
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
NOTICE_ATTEMPTS = 3  # for the ready reply (a text, or the full-size file)
# Errors that mean the message to edit is gone (deleted by the user) or is not a media message.
_TARGET_GONE = ("message to edit not found", "message can't be edited", "no media", "message_id_invalid")
# Failures before the request was written out whole: Telegram cannot have acted on it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteTimeout)


def nothing_sent(exc: NetworkError) -> bool:
    """Whether a failed request certainly did nothing, so sending it again cannot make a second copy.

    True when the connection was never made or the request never written out whole, and when Telegram
    itself answered with an error; False when the answer was lost (a read timeout, a dropped
    connection), since Telegram may have carried the request out.
    """
    cause = exc.__cause__
    if isinstance(cause, httpx.HTTPError):
        return isinstance(cause, _NOT_SENT)
    return cause is None


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

    async def show_status(
        self, job: Job, text: str, markup: InlineKeyboardMarkup | None = None, *, progress: bool = False
    ) -> bool:
        """Set the caption of the job's status message, best effort; False if the chat does not show it.

        A `progress` text is dropped rather than kept waiting while the chat is throttled: the next one
        replaces it anyway.
        """
        if job.status_message_id is None:
            return False
        try:
            with droppable() if progress else contextlib.nullcontext():
                await self.bot.edit_message_caption(
                    chat_id=job.chat_id, message_id=job.status_message_id, caption=text, reply_markup=markup
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
                if job.status_message_id is not None:
                    await self.bot.edit_message_media(
                        InputMediaPhoto(data, caption=caption),
                        chat_id=job.chat_id,
                        message_id=job.status_message_id,
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

        A result that is gone or unreadable is painted again from the job's photos (or the job fails,
        with a message, when they are gone too). Only a stop (cancellation) ends the retries early; the
        job then stays `done` for the next start.
        """
        try:
            async with self._media.setdefault(job.id, asyncio.Lock()):
                await self._deliver(job)
        finally:
            self._trouble.pop(job.id, None)
            self._media.pop(job.id, None)

    async def tell(self, job: Job, text: str) -> None:
        """A new text message to the job's chat, best effort."""
        try:
            await self.bot.send_message(job.chat_id, text)
        except TelegramError as exc:
            logger.info("job %d: could not tell the user: %s", job.id, exc)

    async def report(self, job: Job, text: str) -> None:
        """Put `text` in the job's status message without its buttons, or send it when there is none."""
        if not await self.show_status(job, text):
            await self.tell(job, text)

    async def _deliver(self, job: Job) -> None:
        texts = await self.texts(job)
        try:
            if job.result_path is None:
                raise FileNotFoundError("no result recorded")
            result = await asyncio.to_thread(prepare, job.result_path, job.id)
        except (OSError, ValueError) as exc:
            await self._repaint(job, texts, f"result unreadable: {exc}")
            return
        seconds = (job.finished_at - job.started_at) if job.finished_at and job.started_at else None
        caption = texts.done(seconds, _shrunk(job))
        target = job.preview_message_id or job.status_message_id
        shown = await self._show_result(job, texts, result, caption, target)
        if shown is None:
            return
        shown_id, as_photo = shown
        # Being `delivered` is also the record of the ready reply below: a restart never sends it again.
        await self.store.jobs.mark_delivered(job.id)
        logger.info("job %d: delivered", job.id)
        if shown_id is None:
            return  # a send whose answer was lost: what it may have shown cannot be replied to
        reply = ReplyParameters(message_id=shown_id, allow_sending_without_reply=True)
        if as_photo and result.large:
            caption = texts.full_size(result.width, result.height)
            await self._once(job, "full-size file", lambda: self._send_full_size(job, result, caption, reply))
        elif target is not None:
            # Edits make no sound: a short reply to the painting tells the user it is there.
            ready = texts.ready
            await self._once(
                job, "notice", lambda: self.bot.send_message(job.chat_id, ready, reply_parameters=reply)
            )

    async def _show_result(
        self, job: Job, texts: Texts, result: Result, caption: str, target: int | None
    ) -> tuple[int | None, bool] | None:
        """Show the result in message `target` (or a new message), retrying until Telegram takes it.

        Returns the id of the message that shows it (None when a new message's answer was lost) and
        whether it went as a photo; None when the job ended here (blocked, refused).
        """
        as_photo = result.photo is not None or result.seconds is not None  # shown, not a file
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                return await self._put(job, result, caption, as_photo, target), as_photo
            except Forbidden:
                logger.info("job %d: the user blocked the bot; closing the job", job.id)
                await self.store.jobs.fail(job.id, "the user blocked the bot")
                return None
            except BadRequest as exc:
                reason = str(exc)
                if "not modified" in reason.lower():
                    return target, as_photo  # an earlier attempt put this very result there
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
                    return None
            except RetryAfter as exc:
                await asyncio.sleep(_seconds(exc.retry_after))
            except NetworkError as exc:
                if target is None and not nothing_sent(exc):
                    # Editing the status message again is harmless; a second new message is a second copy.
                    logger.warning("job %d: result sent, answer lost (%s); not sending it again", job.id, exc)
                    return None, as_photo
                self._trouble[job.id] = str(exc)
                logger.warning("job %d: delivery failed (%s); next try in %.0f s", job.id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_SECONDS, delay * 2)

    async def _repaint(self, job: Job, texts: Texts, reason: str) -> None:
        """A done job whose result cannot be sent: painted again from its photos, or failed without them."""
        if all(path.is_file() for path in (job.content_path, *job.style_paths)):
            again = await self.store.jobs.repaint(job.id, reason)
            if again is None:
                return  # no longer done: delivered or closed meanwhile
            if again.status == JobStatus.QUEUED:
                logger.warning("job %d: %s; painting it again", job.id, reason)
                await self.show_status(job, texts.repainting, cancel_keyboard(job.id, texts))
                return
        elif not await self.store.jobs.fail(job.id, f"{reason}; its photos are gone too"):
            return
        logger.warning("job %d: %s; failed", job.id, reason)
        await self.report(job, texts.result_lost())

    async def _put(
        self, job: Job, result: Result, caption: str, as_photo: bool, target: int | None
    ) -> int | None:
        """Show the result in message `target` (or a new message); the id of the message showing it.

        Shown (`as_photo`), a picture goes as a photo and a painted clip as an animation (it loops in
        every client); otherwise either goes as a file.
        """
        photo = result.photo if as_photo else None
        animation = as_photo and result.seconds is not None
        data = photo if photo is not None else result.document
        timeout = upload_timeout(len(data))
        if target is not None:
            await self.bot.edit_message_media(
                _media(result, data, caption, photo is not None, animation),
                chat_id=job.chat_id,
                message_id=target,
                reply_markup=None,
                write_timeout=timeout,
                read_timeout=timeout,
            )
            return target
        if animation:
            message = await self.bot.send_animation(
                job.chat_id,
                animation=data,
                filename=result.filename,
                caption=caption,
                width=result.width,
                height=result.height,
                duration=round(result.seconds or 0),
                write_timeout=timeout,
                read_timeout=timeout,
            )
        elif photo is not None:
            message = await self.bot.send_photo(
                job.chat_id, photo=data, caption=caption, write_timeout=timeout, read_timeout=timeout
            )
        else:
            message = await self.bot.send_document(
                job.chat_id,
                document=data,
                filename=result.filename,
                caption=caption,
                write_timeout=timeout,
                read_timeout=timeout,
            )
        return message.message_id

    async def _send_full_size(
        self, job: Job, result: Result, caption: str, reply: ReplyParameters | None
    ) -> None:
        timeout = upload_timeout(len(result.document))
        await self.bot.send_document(
            job.chat_id,
            document=result.document,
            filename=result.filename,
            caption=caption,
            reply_parameters=reply,
            write_timeout=timeout,
            read_timeout=timeout,
        )

    async def _once(self, job: Job, what: str, send: Callable[[], Awaitable[object]]) -> None:
        """Send the ready reply at most once: retried only where nothing can have been sent."""
        for attempt in range(NOTICE_ATTEMPTS):
            try:
                await send()
                logger.info("job %d: %s sent", job.id, what)
                return
            except RetryAfter as exc:
                logger.info("job %d: %s attempt %d throttled: %s", job.id, what, attempt + 1, exc)
                await asyncio.sleep(_seconds(exc.retry_after))
            except NetworkError as exc:
                if not nothing_sent(exc):
                    logger.info("job %d: %s may have been sent (%s); not sending it again", job.id, what, exc)
                    return
                logger.info("job %d: %s attempt %d failed: %s", job.id, what, attempt + 1, exc)
                await asyncio.sleep(RETRY_FIRST_SECONDS * 2**attempt)
            except TelegramError as exc:
                logger.info("job %d: no %s sent: %s", job.id, what, exc)
                return


def _media(
    result: Result, data: bytes, caption: str, photo: bool, animation: bool
) -> InputMediaPhoto | InputMediaAnimation | InputMediaDocument:
    """What an edit puts into the status message: the photo, the animation, or the file."""
    if photo:
        return InputMediaPhoto(data, caption=caption)
    if animation:
        return InputMediaAnimation(
            data,
            caption=caption,
            filename=result.filename,
            width=result.width,
            height=result.height,
            duration=round(result.seconds or 0),
        )
    return InputMediaDocument(data, caption=caption, filename=result.filename)


def _shrunk(job: Job) -> tuple[int, int] | None:
    """(long side painted, long side asked) when the engine painted smaller than asked (short of memory)."""
    if job.shrunk_to is None or job.content_size is None:
        return None
    asked = min(job.request.max_size, max(job.content_size))
    return (job.shrunk_to, asked) if job.shrunk_to < asked - 1 else None


def upload_timeout(size: int) -> float:
    """Seconds an upload of `size` bytes may take to write."""
    return UPLOAD_TIMEOUT + size / UPLOAD_RATE


def _seconds(value: object) -> float:
    total = getattr(value, "total_seconds", None)
    return float(total()) if callable(total) else float(value)  # type: ignore[arg-type]
