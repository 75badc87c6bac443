"""Clips in: a GIF (which Telegram sends as a silent MP4 "animation"), a video or a round video note as
the content of a painting.

A clip is refused from what Telegram says of it where it can be (size, duration), then downloaded to a
file and checked from its container's header only (engine.clips): the bot never decodes a frame, the
worker reads them one at a time. How the clip is painted is decided when it is queued (bot/clip_plan.py).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
from telegram import Animation, Document, Message, Update, Video, VideoNote
from telegram.error import TelegramError

from bot import intake
from bot.context import BotContext, sender
from bot.i18n import texts_for
from bot.texts import Texts
from engine.clips import ClipError, ClipInfo, ClipLimits, inspect_clip

logger = logging.getLogger(__name__)

Attachment = Animation | Video | VideoNote | Document

# A download may wait this long for each read (the file is sent as fast as Telegram's servers go), and
# is written to disk in chunks of this many bytes.
DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
CHUNK = 64 * 1024


async def clip(update: Update, context: BotContext) -> None:
    """An animation, video or video note: the content of the chat's next painting."""
    inbox = context.store.inbox
    # Recorded before the download starts, so a crash before the answer gets it handled after restart.
    await inbox.add(intake.inbox_item(update))
    try:
        await _clip(update, context)
    finally:
        await inbox.done(update.update_id)


async def _clip(update: Update, context: BotContext) -> None:
    message, user = sender(update)
    texts = texts_for(user.language_code)
    store = context.store
    command, _, argument = (message.caption or "").strip().partition(" ")
    by_caption = command.split("@")[0].lower() == "/style"
    known = await store.users.touch(user.id, user.language_code)
    session = await store.sessions.get(message.chat_id)
    # A replayed update whose clip is already the chat's content goes on from where it stopped.
    if not (session.content_path is not None and session.content_message_id == message.message_id):
        if known.active_jobs >= context.config.max_queued_per_user:
            await message.reply_text(texts.queue_full(known.active_jobs))
            return
        if not await context.uploads.admit(message, texts, user.id, store):
            return
        downloaded = await download_clip(message, texts, context)
        if downloaded is None:
            return
        path, info = downloaded
        session = await store.sessions.set_content(
            message.chat_id, user.id, path, (info.width, info.height), message.message_id, info.frames
        )
        if not by_caption and session.style_path is None:
            sound = message.video is not None or message.video_note is not None
            await message.reply_text(texts.clips.received(info.seconds, info.frames, sound))
            return
    if by_caption and not await intake.choose_preset(message, user, argument.strip(), context):
        return
    if (await store.sessions.get(message.chat_id)).style_path is None:
        return  # told when the clip came; the style is still to come
    await intake.submit(message, user, context, update.update_id)


def attachment(message: Message) -> Attachment | None:
    """The clip a message carries: its animation, video or video note, or a video or GIF document."""
    return message.animation or message.video or message.video_note or message.document


async def download_clip(message: Message, texts: Texts, context: BotContext) -> tuple[Path, ClipInfo] | None:
    """The clip saved in uploads/ and its facts, or None after telling the user why not (nothing kept)."""
    clip_file = attachment(message)
    limit = context.config.max_animation_seconds
    if clip_file is None:
        await message.reply_text(texts.not_an_image)
        return None
    if clip_file.file_size is not None and clip_file.file_size > intake.DOWNLOAD_LIMIT:
        await message.reply_text(texts.too_big_to_download)
        return None
    duration = seconds_of(clip_file)
    # Telegram rounds durations to whole seconds: only a clip a second over the limit is refused unseen.
    if duration is not None and duration >= limit + 1:
        await message.reply_text(texts.clips.too_long_to_download(duration, limit))
        return None
    files = context.store.files
    path = await asyncio.to_thread(files.incoming, ".mp4")
    try:
        file = await clip_file.get_file()
        if file.file_path is None:
            raise TelegramError("Telegram gave no file path")
        await stream_to(file.file_path, path)
        info = await asyncio.to_thread(inspect_clip, path, ClipLimits(max_seconds=limit))
        return await asyncio.to_thread(files.save_downloaded, path, info.suffix), info
    except (TelegramError, httpx.HTTPError) as exc:
        path.unlink(missing_ok=True)
        logger.warning("chat %d: clip download failed: %s", message.chat_id, _without_url(exc))
        await message.reply_text(texts.download_failed)
    except ClipError as exc:
        path.unlink(missing_ok=True)
        logger.info("chat %d: clip refused: %s", message.chat_id, exc)
        await message.reply_text(texts.clips.refused(exc))
    finally:
        path.unlink(missing_ok=True)  # gone already when it was saved under its hash
    return None


async def stream_to(url: str, path: Path) -> None:
    """Write the file at `url` to `path` as it arrives, a chunk at a time: unlike PTB's downloads, which
    return the whole file as bytes, a 20 MB clip never sits in the bot's memory."""
    async with (
        httpx.AsyncClient(timeout=DOWNLOAD_TIMEOUT) as client,
        client.stream("GET", url) as response,
    ):
        response.raise_for_status()
        with path.open("wb") as out:
            async for chunk in response.aiter_bytes(CHUNK):
                out.write(chunk)


def _without_url(exc: Exception) -> str:
    """What went wrong with a download, without its URL: a file URL carries the bot's token."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.HTTPError):
        return type(exc).__name__
    return str(exc)


def seconds_of(clip_file: Attachment) -> int | None:
    """A clip's duration as Telegram gives it, whole seconds (None for a document), read from its JSON:
    PTB's `duration` attribute is changing type and warns on every read."""
    duration = clip_file.to_dict().get("duration")
    return int(duration) if isinstance(duration, int | float) else None
