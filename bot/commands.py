"""The user's commands and buttons: help, styles, cancel, status; hints for anything else; errors."""

from __future__ import annotations

import asyncio
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, User
from telegram.error import BadRequest, TelegramError

from bot import options
from bot.context import BotContext, number, sender
from bot.i18n import texts_for
from bot.intake import preset_button_data, preset_hash, use_preset
from bot.presets_sheet import cached_sheet
from storage import JobStatus

logger = logging.getLogger(__name__)


async def start(update: Update, context: BotContext) -> None:
    """/start and /help."""
    message, user = sender(update)
    await context.store.users.touch(user.id, user.language_code)
    await message.reply_text(texts_for(user.language_code).help(context.config.is_admin(user.id)))


async def styles(update: Update, context: BotContext) -> None:
    """/styles: one picture of the presets, numbered, with a button for each under it."""
    message, user = sender(update)
    texts = texts_for(user.language_code)
    presets = await context.store.presets.all()
    if not presets:
        await message.reply_text(texts.no_presets(context.config.is_admin(user.id)))
        return
    buttons = [
        InlineKeyboardButton(f"{number} · {p.name}", callback_data=preset_button_data(p.name))
        for number, p in enumerate(presets, start=1)
    ]
    markup = InlineKeyboardMarkup([buttons[i : i + 2] for i in range(0, len(buttons), 2)])
    pairs = [(p.name, p.image_path) for p in presets]
    try:
        sheet = await asyncio.to_thread(cached_sheet, pairs, context.store.files.sheets)
    except OSError as exc:
        logger.warning("the presets' sheet could not be drawn: %s", exc)
        await message.reply_text(texts.presets_header, reply_markup=markup)
        return
    # Telegram keeps what it was sent: the same sheet goes again by its file id, without an upload.
    known = context.bot_data.sheet_file_ids.get(sheet.name)
    caption = texts.presets_header
    try:
        sent = await message.reply_photo(known or sheet.read_bytes(), caption=caption, reply_markup=markup)
    except BadRequest as exc:
        if known is None:
            raise
        logger.info("the presets' sheet went stale at Telegram (%s); uploading it again", exc)
        context.bot_data.sheet_file_ids.pop(sheet.name, None)
        sent = await message.reply_photo(sheet.read_bytes(), caption=caption, reply_markup=markup)
    if sent.photo:
        context.bot_data.sheet_file_ids = {sheet.name: sent.photo[-1].file_id}


async def button(update: Update, context: BotContext) -> None:
    """Inline buttons: style:NAME, preset:HASH, cancel:JOB, opt:KEY:VALUE."""
    query = update.callback_query
    if query is None:
        return
    message = query.message
    kind, _, value = (query.data or "").partition(":")
    await query.answer()
    if not isinstance(message, Message):
        return
    if kind == "preset":
        presets = await context.store.presets.all()
        value = next((p.name for p in presets if preset_hash(p.name) == value), "")
        kind = "style"
    if kind == "style":
        await use_preset(message, query.from_user, value, context)
    elif kind == "cancel":
        await _cancel_button(message, query.from_user, value, context)
    elif kind == "opt":
        await options.pressed(message, query.from_user, value, context)


async def _cancel_button(message: Message, user: User, value: str, context: BotContext) -> None:
    job_id = number(value)
    job = await context.store.jobs.get(job_id) if job_id is not None else None
    if job is None or job.chat_id != message.chat_id:
        return
    if await context.dispatcher.cancel(job.id):
        logger.info("job %d: cancelled by user %d", job.id, user.id)
        await context.dispatcher.messenger.show_status(job, texts_for(user.language_code).cancelled())


async def cancel(update: Update, context: BotContext) -> None:
    """/cancel: forget photos sent so far, else stop the latest picture; `/cancel all` stops them all."""
    message, user = sender(update)
    texts = texts_for(user.language_code)
    store, dispatcher = context.store, context.dispatcher
    everything = [arg.lower() for arg in context.args or []] == ["all"]
    session = await store.sessions.get(message.chat_id)
    had_photos = session.content_path is not None or session.style_path is not None
    if had_photos:
        await store.sessions.reset(message.chat_id)
        if not everything:
            await message.reply_text(texts.session_cleared)
            return
    jobs = await store.jobs.active_for_chat(message.chat_id)
    active = [job for job in jobs if job.status != JobStatus.DONE]
    targets = active if everything else active[-1:]
    cancelled = [job for job in reversed(targets) if await dispatcher.cancel(job.id)]
    for job in cancelled:
        logger.info("job %d: cancelled with /cancel", job.id)
        await dispatcher.messenger.show_status(job, texts.cancelled())
    if cancelled:
        await message.reply_text(texts.cancelled(len(cancelled), len(active) - len(cancelled)))
    elif had_photos:
        await message.reply_text(texts.session_cleared)
    else:
        await message.reply_text(texts.nothing_to_cancel)


async def status(update: Update, context: BotContext) -> None:
    """/status: where this chat's pictures stand."""
    message, user = sender(update)
    texts = texts_for(user.language_code)
    store, dispatcher = context.store, context.dispatcher
    jobs = await store.jobs.active_for_chat(message.chat_id)
    if not jobs:
        await message.reply_text(texts.no_job)
        return
    lines = []
    for job in jobs:
        lane = dispatcher.lane(job.request.fast)
        painters = lane.ready, lane.size
        pace = lane.pace.seconds if lane.pace is not None else None  # before any job of the lane finished
        position = await store.jobs.queue_position(job.id, lane.ready or lane.size, pace)
        lines.append(
            texts.status(
                job.status,
                position.position if position else None,
                position.estimate if position else None,
                job.progress,
                job.progress_total or job.iterations,
                waiting_for_telegram=dispatcher.messenger.trouble(job.id),
                painter_down=not lane.healthy,
                painters=painters,
            )
        )
    await message.reply_text("\n".join(lines))


async def unknown_command(update: Update, context: BotContext) -> None:
    """Any command not handled above."""
    message, user = sender(update)
    await message.reply_text(texts_for(user.language_code).unknown_command)


async def hint(update: Update, context: BotContext) -> None:
    """Text, stickers, voice, locations, other files: a short hint."""
    message, user = sender(update)
    texts = texts_for(user.language_code)
    await message.reply_text(texts.not_an_image if message.document is not None else texts.hint)


async def private_only(update: Update, context: BotContext) -> None:
    """Any of the bot's commands in a group: it works in private chats, where photos pair up per person."""
    message, user = sender(update)
    await message.reply_text(texts_for(user.language_code).private_only(context.bot.username))


async def error_handler(update: object, context: BotContext) -> None:
    """Log every unhandled error once and tell the user something short (in private chats only)."""
    logger.error("unhandled error while handling an update", exc_info=context.error)
    chat = update.effective_chat if isinstance(update, Update) else None
    user = update.effective_user if isinstance(update, Update) else None
    if chat is not None and chat.type == chat.PRIVATE:
        text = texts_for(user.language_code if user is not None else None).something_wrong
        try:
            await context.bot.send_message(chat.id, text)
        except TelegramError:
            logger.info("could not report the error to chat %d", chat.id)
