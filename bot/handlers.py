"""The conversation: what each command, photo, button and stray message gets as an answer."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import json
import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import CallbackContext, ContextTypes, ExtBot

from bot import texts
from bot.config import Config
from bot.dispatcher import Dispatcher, cancel_keyboard
from bot.ordering import UploadLimiter
from engine.images import ALLOWED_FORMATS, ImageError, inspect_image
from engine.params import StyleParams
from engine.pool import EngineBackend
from storage import JobStatus, Options, Session, Store, validate_preset_name

logger = logging.getLogger(__name__)

# Telegram lets bots download files up to 20 MB.
DOWNLOAD_LIMIT = 20 * 1024 * 1024
IMAGE_MIME_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
FORMAT_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
SIZES = (256, 384, 512, 768, 1024, 1536, 2048)
STRENGTHS = {"weak": 0.3, "normal": 1.0, "strong": 3.0}
DEFAULT_STYLE_WEIGHT = StyleParams().style_weight
# Pixels of mirrored frame optimised around each picture and cropped off: no dark, ragged edges.
MARGIN = 16
# The status message shows the photo being painted this small until the preview and result replace it.
THUMBNAIL_SIDE = 320
# Telegram refuses inline buttons whose callback data is longer than this many bytes.
CALLBACK_DATA_LIMIT = 64
_NUMBER = re.compile(r"[0-9]{1,9}")


@dataclass
class BotData:
    """What the handlers share, set up in `post_init`."""

    config: Config | None = None
    store: Store | None = None
    pool: EngineBackend | None = None
    dispatcher: Dispatcher | None = None
    uploads: UploadLimiter = field(default_factory=lambda: UploadLimiter(10))


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


def _number(text: str) -> int | None:
    """A whole number written with ASCII digits only (`"²".isdigit()` is true, `int("²")` raises)."""
    return int(text) if _NUMBER.fullmatch(text) else None


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
    known = await parts.store.users.get(user.id)
    if known is not None and known.active_jobs >= parts.config.max_queued_per_user:
        await message.reply_text(texts.QUEUE_FULL.format(count=known.active_jobs))
        return
    if not context.bot_data.uploads.allow(user.id):
        await message.reply_text(texts.TOO_MANY_UPLOADS)
        return
    data = await _download_image(message, context)
    if data is None:
        return
    picture, ext, size = data
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
    await _submit(message, user.id, parts, update.update_id)


async def _download_image(message: Message, context: Context) -> tuple[bytes, str, tuple[int, int]] | None:
    """The image's bytes, extension and upright (width, height), or None after telling the user why not."""
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
        info = await asyncio.to_thread(inspect_image, data, "it")
    except ImageError as exc:
        await message.reply_text(texts.bad_image(str(exc)))
        return None
    ext = FORMAT_EXTENSIONS.get(info.format)
    if ext is None:
        await message.reply_text(texts.NOT_AN_IMAGE)
        return None
    if info.frames > 1:
        await message.reply_text(texts.FIRST_FRAME)
    return data, ext, (info.width, info.height)


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


async def _submit(message: Message, user_id: int, parts: _Parts, update_id: int | None) -> None:
    """Turn the chat's complete session into a queued job and show where it stands.

    The status message is a photo (the picture being painted, small) so that the preview and then
    the result can replace it: delivery edits one message and never adds a second copy.
    """
    session = await parts.store.sessions.get(message.chat_id)
    assert session.content_path is not None
    assert session.style_path is not None
    user = await parts.store.users.get(user_id)
    if user is not None and user.active_jobs >= parts.config.max_queued_per_user:
        await parts.store.sessions.reset(message.chat_id)
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
        message.chat_id, user_id, session.content_path, [session.style_path], params, handled_update=update_id
    )
    logger.info("job %d: queued for chat %d", job.id, message.chat_id)
    pool_size = parts.dispatcher.lane_size(bool(params["fast"]))
    position = await parts.store.jobs.queue_position(job.id, pool_size)
    text = (
        texts.queued(position.position, position.estimate) if position else texts.progress(0, job.iterations)
    )
    try:
        thumbnail = await asyncio.to_thread(_thumbnail, session.content_path)
        status = await message.reply_photo(thumbnail, caption=text, reply_markup=cancel_keyboard(job.id))
    except (TelegramError, OSError, ValueError) as exc:
        # The job is queued all the same; its result will come as a message of its own.
        logger.warning("job %d: status message not sent: %s", job.id, exc)
    else:
        await parts.store.jobs.set_status_message(job.id, status.message_id)
    parts.dispatcher.wake()
    if not params["fast"]:
        parts.dispatcher.preview(job)


def _thumbnail(path: Path) -> bytes:
    """A small upright JPEG of a saved upload (JPEG decodes at a fraction of its size via `draft`)."""
    with Image.open(path, formats=ALLOWED_FORMATS) as img:
        img.draft("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        small = ImageOps.exif_transpose(img).convert("RGB")
        small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        buffer = io.BytesIO()
        small.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _output_size(options: Options, max_size: int) -> int:
    return min(options.output_size or max_size, max_size)


async def styles(update: Update, context: Context) -> None:
    """/styles: the presets as buttons."""
    assert update.effective_message is not None
    presets = await _parts(context).store.presets.all()
    if not presets:
        await update.effective_message.reply_text(texts.NO_PRESETS)
        return
    buttons = [InlineKeyboardButton(p.name, callback_data=preset_button_data(p.name)) for p in presets]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    await update.effective_message.reply_text(texts.PRESETS_HEADER, reply_markup=InlineKeyboardMarkup(rows))


def preset_button_data(name: str) -> str:
    """`style:NAME`, or `preset:HASH` when the name's bytes would pass Telegram's 64-byte limit."""
    data = f"style:{name}"
    if len(data.encode()) <= CALLBACK_DATA_LIMIT:
        return data
    return f"preset:{_name_hash(name)}"


def _name_hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


async def style(update: Update, context: Context) -> None:
    """/style NAME: use a preset as the style (now, or for the next photo)."""
    message = update.effective_message
    user = update.effective_user
    assert message is not None
    assert user is not None
    await _use_preset(message, user.id, " ".join(context.args or []), context, update.update_id)


async def _use_preset(
    message: Message, user_id: int, name: str, context: Context, update_id: int | None = None
) -> None:
    parts = _parts(context)
    if not await _choose_preset(message, user_id, name, parts):
        return
    session = await parts.store.sessions.get(message.chat_id)
    if session.content_path is None:
        await message.reply_text(texts.STYLE_FIRST.format(name=session.style_preset))
        return
    await _submit(message, user_id, parts, update_id)


async def button(update: Update, context: Context) -> None:
    """Inline buttons: style:NAME, preset:HASH, cancel:JOB, opt:KEY:VALUE."""
    query = update.callback_query
    assert query is not None
    message = query.message
    kind, _, value = (query.data or "").partition(":")
    await query.answer()
    if not isinstance(message, Message):
        return
    if kind == "preset":
        presets = await _parts(context).store.presets.all()
        value = next((p.name for p in presets if _name_hash(p.name) == value), "")
        kind = "style"
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
    job_id = _number(value)
    job = await parts.store.jobs.get(job_id) if job_id is not None else None
    if job is None or job.chat_id != message.chat_id:
        return
    if await parts.dispatcher.cancel(job.id):
        logger.info("job %d: cancelled by user %d", job.id, user_id)
        await parts.dispatcher.show_status(job, texts.CANCELLED)


async def cancel(update: Update, context: Context) -> None:
    """/cancel: forget photos sent so far, else stop the latest picture; `/cancel all` stops them all."""
    message = update.effective_message
    assert message is not None
    parts = _parts(context)
    everything = [arg.lower() for arg in context.args or []] == ["all"]
    session = await parts.store.sessions.get(message.chat_id)
    had_photos = session.content_path is not None or session.style_path is not None
    if had_photos:
        await parts.store.sessions.reset(message.chat_id)
        if not everything:
            await message.reply_text(texts.SESSION_CLEARED)
            return
    jobs = await parts.store.jobs.active_for_chat(message.chat_id)
    active = [job for job in jobs if job.status != JobStatus.DONE]
    targets = active if everything else active[-1:]
    cancelled = [job for job in reversed(targets) if await parts.dispatcher.cancel(job.id)]
    for job in cancelled:
        logger.info("job %d: cancelled with /cancel", job.id)
        await parts.dispatcher.show_status(job, texts.CANCELLED)
    if cancelled:
        await message.reply_text(texts.cancelled(len(cancelled), len(active) - len(cancelled)))
    elif had_photos:
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
        workers = parts.dispatcher.lane_size(bool(job.params.get("fast")))
        position = await parts.store.jobs.queue_position(job.id, workers)
        lines.append(
            texts.status(
                job.status,
                position.position if position else None,
                position.estimate if position else None,
                job.progress,
                job.progress_total or job.iterations,
                waiting_for_telegram=parts.dispatcher.delivery_trouble(job.id),
                painter_down=not parts.dispatcher.lane_healthy(bool(job.params.get("fast"))),
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
    if key == "size" and _number(value) in SIZES:
        changed = replace(current, output_size=_number(value))
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


async def private_only(update: Update, context: Context) -> None:
    """Any of the bot's commands in a group: it works in private chats, where photos pair up per person."""
    assert update.effective_message is not None
    await update.effective_message.reply_text(texts.private_only(context.bot.username))


async def error_handler(update: object, context: Context) -> None:
    """Log every unhandled error once and tell the user something short (in private chats only)."""
    logger.error("unhandled error while handling an update", exc_info=context.error)
    chat = update.effective_chat if isinstance(update, Update) else None
    if chat is not None and chat.type == chat.PRIVATE:
        try:
            await context.bot.send_message(chat.id, texts.SOMETHING_WRONG)
        except TelegramError:
            logger.info("could not report the error to chat %d", chat.id)


def preset_files(folder: Path) -> list[Path]:
    """Image files an operator dropped into the presets folder, named by the preset they define."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")
    )
