"""The conversation: what each command, photo, button and stray message gets as an answer."""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import CallbackContext, ContextTypes, ExtBot

from bot import texts
from bot.config import Config
from bot.dispatcher import Dispatcher, cancel_keyboard
from engine.images import ImageError, load_image
from engine.params import StyleParams
from engine.pool import EngineBackend
from storage import JobStatus, Options, Session, Store, validate_preset_name

logger = logging.getLogger(__name__)

# Telegram lets bots download files up to 20 MB.
DOWNLOAD_LIMIT = 20 * 1024 * 1024
IMAGE_MIME_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
FORMAT_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "MPO": ".jpg"}
SIZES = (256, 384, 512, 768, 1024, 1536, 2048)
STRENGTHS = {"weak": 0.3, "normal": 1.0, "strong": 3.0}
DEFAULT_STYLE_WEIGHT = StyleParams().style_weight
# Pixels of mirrored frame optimised around each picture and cropped off: no dark, ragged edges.
MARGIN = 16


@dataclass
class BotData:
    """What the handlers share, set up in `post_init`."""

    config: Config | None = None
    store: Store | None = None
    pool: EngineBackend | None = None
    dispatcher: Dispatcher | None = None
    # One lock per chat so two photos of an album are taken in order.
    chat_locks: dict[int, asyncio.Lock] = field(default_factory=dict)


Context = CallbackContext[ExtBot[None], dict, dict, BotData]  # type: ignore[type-arg]
CONTEXT_TYPES = ContextTypes(bot_data=BotData)


@dataclass(frozen=True)
class _Parts:
    config: Config
    store: Store
    pool: EngineBackend
    dispatcher: Dispatcher


def _parts(context: Context) -> _Parts:
    data = context.bot_data
    if data.config is None or data.store is None or data.pool is None or data.dispatcher is None:
        raise RuntimeError("the bot is still starting")
    return _Parts(data.config, data.store, data.pool, data.dispatcher)


def _lock(context: Context, chat_id: int) -> asyncio.Lock:
    return context.bot_data.chat_locks.setdefault(chat_id, asyncio.Lock())


async def start(update: Update, context: Context) -> None:
    """/start and /help."""
    assert update.effective_message is not None
    parts = _parts(context)
    user = update.effective_user
    if user is not None:
        await parts.store.users.touch(user.id, user.language_code)
    text = texts.HELP + (texts.ADMIN_HELP if user and parts.config.is_admin(user.id) else "")
    await update.effective_message.reply_text(text)


async def image(update: Update, context: Context) -> None:
    """A photo or an image document: content first, style second; captions can name a preset."""
    assert update.effective_message is not None
    inbox = _parts(context).store.inbox
    # Recorded before the download starts, so a crash before the answer gets it handled after restart.
    await inbox.add(update.update_id, update.effective_message.chat_id, json.dumps(update.to_dict()))
    try:
        await _image(update, context)
    finally:
        await inbox.done(update.update_id)


async def _image(update: Update, context: Context) -> None:
    message = update.effective_message
    user = update.effective_user
    assert message is not None
    assert user is not None
    parts = _parts(context)
    caption = (message.caption or "").strip()
    command, _, argument = caption.partition(" ")
    command = command.split("@")[0].lower()
    if command == "/addstyle":
        await _add_preset(message, user.id, argument.strip(), message, context)
        return
    data = await _download_image(message, context)
    if data is None:
        return
    picture, ext, size = data
    async with _lock(context, message.chat_id):
        path = await asyncio.to_thread(parts.store.files.save_upload, picture, ext)
        session = await parts.store.sessions.get(message.chat_id)
        if command == "/style":
            session = await parts.store.sessions.set_content(message.chat_id, user.id, path, size)
            if not await _choose_preset(message, user.id, argument.strip(), parts):
                return
        elif session.content_path is None:
            session = await parts.store.sessions.set_content(message.chat_id, user.id, path, size)
            if session.style_path is None:
                await message.reply_text(texts.CONTENT_RECEIVED)
                return
        else:
            await parts.store.sessions.set_style_upload(message.chat_id, user.id, path)
        await _submit(message, user.id, parts)


async def _download_image(message: Message, context: Context) -> tuple[bytes, str, tuple[int, int]] | None:
    """The image's bytes, extension and (width, height), or None after telling the user why not."""
    if message.photo:
        attachment = message.photo[-1]
        size = attachment.file_size
    elif message.document is not None:
        if message.document.mime_type not in IMAGE_MIME_TYPES:
            await message.reply_text(texts.NOT_AN_IMAGE)
            return None
        attachment = message.document  # type: ignore[assignment]
        size = message.document.file_size
    else:
        await message.reply_text(texts.NOT_AN_IMAGE)
        return None
    if size is not None and size > DOWNLOAD_LIMIT:
        await message.reply_text(texts.TOO_BIG_TO_DOWNLOAD)
        return None
    try:
        file = await attachment.get_file()
        data = bytes(await file.download_as_bytearray())
    except TelegramError as exc:
        logger.warning("chat %d: download failed: %s", message.chat_id, exc)
        await message.reply_text(texts.DOWNLOAD_FAILED)
        return None
    try:
        fmt, width, height, frames = await asyncio.to_thread(_inspect, data)
    except ImageError as exc:
        await message.reply_text(texts.bad_image(str(exc)))
        return None
    ext = FORMAT_EXTENSIONS.get(fmt)
    if ext is None:
        await message.reply_text(texts.NOT_AN_IMAGE)
        return None
    if frames > 1:
        await message.reply_text(texts.FIRST_FRAME)
    return data, ext, (width, height)


def _inspect(data: bytes) -> tuple[str, int, int, int]:
    """Decode fully (so damaged files are caught now, not in the worker): format, size, frame count."""
    pixels = load_image(data, name="it")
    with Image.open(io.BytesIO(data)) as img:
        return img.format or "", pixels.shape[1], pixels.shape[0], getattr(img, "n_frames", 1)


async def _choose_preset(message: Message, user_id: int, name: str, parts: _Parts) -> bool:
    if not name:
        await message.reply_text(texts.STYLE_USAGE)
        return False
    preset = await parts.store.presets.get(name) if _valid_name(name) else None
    if preset is None:
        await message.reply_text(texts.unknown_preset(name[:40]))
        return False
    await parts.store.sessions.set_style_preset(message.chat_id, user_id, preset.name)
    return True


def _valid_name(name: str) -> bool:
    try:
        validate_preset_name(name)
    except ValueError:
        return False
    return True


async def _submit(message: Message, user_id: int, parts: _Parts) -> None:
    """Turn the chat's complete session into a queued job and show where it stands."""
    session = await parts.store.sessions.get(message.chat_id)
    assert session.content_path is not None
    assert session.style_path is not None
    user = await parts.store.users.get(user_id)
    if user is not None and user.active_jobs >= parts.config.max_queued_per_user:
        await message.reply_text(texts.QUEUE_FULL.format(count=user.active_jobs))
        return
    settings = await parts.store.settings.get()
    options = session.options
    params = {
        "iterations": settings.iterations,
        "optimizer": parts.config.optimizer,
        "margin": MARGIN,
        "max_size": _output_size(options, settings.max_image_size),
        "preserve_colors": options.preserve_colors,
        "style_weight": DEFAULT_STYLE_WEIGHT * options.style_strength,
        "fast": options.fast and parts.dispatcher.previews is not None,
        "initial": "adain" if parts.dispatcher.adain_start else "content",
    }
    job = await parts.store.jobs.submit(
        message.chat_id, user_id, session.content_path, [session.style_path], params
    )
    await parts.store.sessions.reset(message.chat_id)
    logger.info("job %d: queued for chat %d", job.id, message.chat_id)
    position = await parts.store.jobs.queue_position(job.id, parts.pool.size)
    text = (
        texts.queued(position.position, position.estimate) if position else texts.progress(0, job.iterations)
    )
    status = await message.reply_text(text, reply_markup=cancel_keyboard(job.id))
    await parts.store.jobs.set_status_message(job.id, status.message_id)
    parts.dispatcher.wake()
    if not params["fast"]:
        parts.dispatcher.preview(job)


def _output_size(options: Options, max_size: int) -> int:
    return min(options.output_size or max_size, max_size)


async def styles(update: Update, context: Context) -> None:
    """/styles: the presets as buttons."""
    assert update.effective_message is not None
    presets = await _parts(context).store.presets.all()
    if not presets:
        await update.effective_message.reply_text(texts.NO_PRESETS)
        return
    buttons = [InlineKeyboardButton(p.name, callback_data=f"style:{p.name}") for p in presets]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    await update.effective_message.reply_text(texts.PRESETS_HEADER, reply_markup=InlineKeyboardMarkup(rows))


async def style(update: Update, context: Context) -> None:
    """/style NAME: use a preset as the style (now, or for the next photo)."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None
    assert user is not None
    await _use_preset(message, user.id, " ".join(context.args or []), context)


async def _use_preset(message: Message, user_id: int, name: str, context: Context) -> None:
    parts = _parts(context)
    async with _lock(context, message.chat_id):
        if not await _choose_preset(message, user_id, name, parts):
            return
        session = await parts.store.sessions.get(message.chat_id)
        if session.content_path is None:
            await message.reply_text(texts.STYLE_FIRST.format(name=session.style_preset))
            return
        await _submit(message, user_id, parts)


async def button(update: Update, context: Context) -> None:
    """Inline buttons: style:NAME, cancel:JOB, opt:KEY:VALUE."""
    query = update.callback_query
    assert query is not None
    message = query.message
    kind, _, value = (query.data or "").partition(":")
    await query.answer()
    if not isinstance(message, Message):
        return
    if kind == "style":
        await _use_preset(message, query.from_user.id, value, context)
    elif kind == "cancel":
        await _cancel_job(message, query.from_user.id, value, context)
    elif kind == "opt":
        key, _, choice = value.partition(":")
        session = await _set_option(message.chat_id, query.from_user.id, key, choice, context)
        if session is not None:
            await _edit_options(message, session, context)


async def _cancel_job(message: Message, user_id: int, value: str, context: Context) -> None:
    parts = _parts(context)
    job = await parts.store.jobs.get(int(value)) if value.isdigit() else None
    if job is None or job.chat_id != message.chat_id:
        return
    if await parts.dispatcher.cancel(job.id):
        logger.info("job %d: cancelled by user %d", job.id, user_id)
        await message.edit_text(texts.CANCELLED)


async def cancel(update: Update, context: Context) -> None:
    """/cancel: stop this chat's jobs, or forget photos sent so far."""
    message = update.effective_message
    assert message is not None
    parts = _parts(context)
    jobs = [j for j in await parts.store.jobs.active_for_chat(message.chat_id) if j.status != JobStatus.DONE]
    cancelled = [job for job in jobs if await parts.dispatcher.cancel(job.id)]
    for job in cancelled:
        if job.status_message_id is not None:
            try:
                await context.bot.edit_message_text(texts.CANCELLED, message.chat_id, job.status_message_id)
            except TelegramError as exc:
                logger.info("job %d: status edit failed: %s", job.id, exc)
    session = await parts.store.sessions.get(message.chat_id)
    if cancelled:
        await message.reply_text(texts.CANCELLED)
    elif session.content_path is not None or session.style_path is not None:
        await parts.store.sessions.reset(message.chat_id)
        await message.reply_text(texts.SESSION_CLEARED)
    else:
        await message.reply_text(texts.NOTHING_TO_CANCEL)


async def status(update: Update, context: Context) -> None:
    """/status: where this chat's pictures stand."""
    message = update.effective_message
    assert message is not None
    parts = _parts(context)
    jobs = await parts.store.jobs.active_for_chat(message.chat_id)
    if not jobs:
        await message.reply_text(texts.NO_JOB)
        return
    lines = []
    for job in jobs:
        position = await parts.store.jobs.queue_position(job.id, parts.pool.size)
        lines.append(
            texts.status(
                job.status,
                position.position if position else None,
                position.estimate if position else None,
                job.progress,
                job.progress_total or job.iterations,
            )
        )
    await message.reply_text("\n".join(lines))


async def options(update: Update, context: Context) -> None:
    """/options [size N | colors on|off | strength weak|normal|strong]."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None
    assert user is not None
    args = context.args or []
    if args:
        if len(args) != 2:
            await message.reply_text(texts.OPTIONS_USAGE)
            return
        if args[0].lower() == "fast" and _parts(context).dispatcher.previews is None:
            await message.reply_text(texts.FAST_UNAVAILABLE)
            return
        session = await _set_option(message.chat_id, user.id, args[0].lower(), args[1].lower(), context)
        if session is None:
            await message.reply_text(texts.OPTIONS_USAGE)
            return
    else:
        session = await _parts(context).store.sessions.get(message.chat_id)
    text, markup = await _options_view(session, context)
    await message.reply_text(text, reply_markup=markup)


async def _set_option(chat_id: int, user_id: int, key: str, value: str, context: Context) -> Session | None:
    store = _parts(context).store
    current = (await store.sessions.get(chat_id)).options
    if key == "size" and value.isdigit() and int(value) in SIZES:
        changed = replace(current, output_size=int(value))
    elif key in ("colors", "colours") and value in ("on", "off"):
        changed = replace(current, preserve_colors=value == "on")
    elif key == "strength" and value in STRENGTHS:
        changed = replace(current, style_strength=STRENGTHS[value])
    elif key == "fast" and value in ("on", "off"):
        changed = replace(current, fast=value == "on")
    else:
        return None
    return await store.sessions.set_options(chat_id, user_id, changed)


async def _options_view(session: Session, context: Context) -> tuple[str, InlineKeyboardMarkup]:
    settings = await _parts(context).store.settings.get()
    opts = session.options
    size = _output_size(opts, settings.max_image_size)
    strength = min(STRENGTHS, key=lambda k: abs(STRENGTHS[k] - opts.style_strength))
    sizes = [s for s in SIZES if s <= settings.max_image_size] or [settings.max_image_size]
    rows = [
        [
            InlineKeyboardButton(f"{'• ' if s == size else ''}{s}", callback_data=f"opt:size:{s}")
            for s in sizes
        ],
        [
            InlineKeyboardButton(
                f"Colours: {'keep' if opts.preserve_colors else 'from style'}",
                callback_data=f"opt:colors:{'off' if opts.preserve_colors else 'on'}",
            )
        ],
        [
            InlineKeyboardButton(f"{'• ' if k == strength else ''}{k}", callback_data=f"opt:strength:{k}")
            for k in STRENGTHS
        ],
    ]
    if _parts(context).dispatcher.previews is not None:
        label = f"Fast mode: {'on' if opts.fast else 'off'}"
        rows.append([InlineKeyboardButton(label, callback_data=f"opt:fast:{'off' if opts.fast else 'on'}")])
    text = texts.options(size, settings.max_image_size, opts.preserve_colors, strength, opts.fast)
    return text, InlineKeyboardMarkup(rows)


async def _edit_options(message: Message, session: Session, context: Context) -> None:
    text, markup = await _options_view(session, context)
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramError as exc:
        logger.info("chat %d: options edit failed: %s", message.chat_id, exc)


AdminCommand = Callable[[Message, int, "_Parts", list[str]], Coroutine[Any, Any, None]]


def admin_command(command: AdminCommand) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
    """A command for the admins only: anyone else gets a polite refusal and nothing changes."""

    @functools.wraps(command)
    async def handler(update: Update, context: Context) -> None:
        message = update.effective_message
        user = update.effective_user
        assert message is not None
        assert user is not None
        parts = _parts(context)
        if not parts.config.is_admin(user.id):
            await message.reply_text(texts.NOT_ADMIN)
            return
        await command(message, user.id, parts, context.args or [])

    return handler


@admin_command
async def iterations(message: Message, user_id: int, parts: _Parts, args: list[str]) -> None:
    """/iterations [N]: show or set the iteration count for new jobs."""
    low, high = parts.store.settings.limits.iterations
    if not args:
        current = (await parts.store.settings.get()).iterations
        await message.reply_text(texts.iterations_now(current, low, high))
        return
    try:
        value = int(args[0])
        if len(args) != 1:
            raise ValueError
        await parts.store.settings.set("iterations", value, user_id)
    except ValueError:
        await message.reply_text(texts.iterations_bad(low, high))
        return
    logger.info("user %d set iterations to %d", user_id, value)
    await message.reply_text(texts.iterations_set(value))


async def addstyle(update: Update, context: Context) -> None:
    """/addstyle NAME in reply to a photo (admins)."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None
    assert user is not None
    source = message.reply_to_message
    await _add_preset(message, user.id, " ".join(context.args or []), source, context)


async def _add_preset(
    message: Message, user_id: int, name: str, source: Message | None, context: Context
) -> None:
    parts = _parts(context)
    if not parts.config.is_admin(user_id):
        await message.reply_text(texts.NOT_ADMIN)
        return
    if not name or source is None or not (source.photo or source.document):
        await message.reply_text(texts.ADDSTYLE_USAGE)
        return
    try:
        name = validate_preset_name(name)
    except ValueError as exc:
        await message.reply_text(texts.preset_bad_name(str(exc)))
        return
    if await parts.store.presets.get(name) is not None:
        await message.reply_text(texts.preset_exists(name))
        return
    data = await _download_image(source, context)
    if data is None:
        return
    path = await asyncio.to_thread(parts.store.files.save_preset, data[0], data[1])
    if await parts.store.presets.add(name, path, user_id) is None:
        await message.reply_text(texts.preset_exists(name))
        return
    logger.info("user %d added preset %s", user_id, name)
    await message.reply_text(texts.preset_added(name))


@admin_command
async def delstyle(message: Message, user_id: int, parts: _Parts, args: list[str]) -> None:
    """/delstyle NAME: remove a preset."""
    name = " ".join(args)
    if not name:
        await message.reply_text(texts.DELSTYLE_USAGE)
        return
    if not _valid_name(name) or not await parts.store.presets.remove(name):
        await message.reply_text(texts.unknown_preset(name[:40]))
        return
    logger.info("user %d removed preset %s", user_id, name)
    await message.reply_text(texts.preset_removed(name))


@admin_command
async def stats(message: Message, user_id: int, parts: _Parts, args: list[str]) -> None:
    """/stats: jobs per status, mean duration, users today."""
    s = await parts.store.stats()
    by_status = [(str(k), v) for k, v in s.jobs_by_status.items() if v]
    await message.reply_text(texts.stats(by_status, s.mean_duration, s.users_today, s.jobs_today))


async def unknown_command(update: Update, context: Context) -> None:
    """Any command not handled above."""
    assert update.effective_message is not None
    await update.effective_message.reply_text(texts.UNKNOWN_COMMAND)


async def hint(update: Update, context: Context) -> None:
    """Text, stickers, voice, locations, other files: a short hint."""
    message = update.effective_message
    assert message is not None
    if message.document is not None:
        await message.reply_text(texts.NOT_AN_IMAGE)
        return
    await message.reply_text(texts.HINT)


async def error_handler(update: object, context: Context) -> None:
    """Log every unhandled error once and tell the user something short."""
    logger.error("unhandled error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await context.bot.send_message(update.effective_chat.id, texts.SOMETHING_WRONG)
        except TelegramError:
            logger.info("could not report the error to chat %d", update.effective_chat.id)


def preset_files(folder: Path) -> list[Path]:
    """Image files an operator dropped into the presets folder, named by the preset they define."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")
    )
