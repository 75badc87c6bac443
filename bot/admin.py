"""Commands for the admins (BOT_ADMIN_IDS): iterations, presets, statistics."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Message, Update, User

from bot.context import BotContext, Handler, number, sender
from bot.i18n import texts_for
from bot.intake import download_image, valid_name
from storage import validate_preset_name

logger = logging.getLogger(__name__)

AdminCommand = Callable[[Message, User, BotContext, list[str]], Coroutine[Any, Any, None]]


def admin_command(command: AdminCommand) -> Handler:
    """A command for the admins only: anyone else gets a polite refusal and nothing changes."""

    @functools.wraps(command)
    async def handler(update: Update, context: BotContext) -> None:
        message, user = sender(update)
        if not context.config.is_admin(user.id):
            await message.reply_text(texts_for(user.language_code).admin.not_admin)
            return
        await command(message, user, context, context.args or [])

    return handler


@admin_command
async def iterations(message: Message, user: User, context: BotContext, args: list[str]) -> None:
    """/iterations [N]: show or set the iteration count for new jobs."""
    texts = texts_for(user.language_code)
    settings = context.store.settings
    low, high = settings.limits.iterations
    if not args:
        await message.reply_text(texts.admin.iterations_now((await settings.get()).iterations, low, high))
        return
    value = number(args[0]) if len(args) == 1 else None
    try:
        if value is None:
            raise ValueError(args)
        await settings.set("iterations", value, user.id)
    except ValueError:
        await message.reply_text(texts.admin.iterations_bad(low, high))
        return
    logger.info("user %d set iterations to %d", user.id, value)
    await message.reply_text(texts.admin.iterations_set(value))


@admin_command
async def addstyle(message: Message, user: User, context: BotContext, args: list[str]) -> None:
    """/addstyle NAME in reply to a photo."""
    await _add_preset(message, user, " ".join(args), message.reply_to_message, context)


async def addstyle_caption(update: Update, context: BotContext) -> None:
    """A photo captioned /addstyle NAME."""
    message, user = sender(update)
    if not context.config.is_admin(user.id):
        await message.reply_text(texts_for(user.language_code).admin.not_admin)
        return
    _, _, name = (message.caption or "").strip().partition(" ")
    await _add_preset(message, user, name.strip(), message, context)


async def _add_preset(
    message: Message, user: User, name: str, source: Message | None, context: BotContext
) -> None:
    texts = texts_for(user.language_code)
    if not name or source is None or not (source.photo or source.document):
        await message.reply_text(texts.admin.addstyle_usage)
        return
    try:
        name = validate_preset_name(name)
    except ValueError:
        await message.reply_text(texts.admin.preset_bad_name)
        return
    presets = context.store.presets
    if await presets.get(name) is not None:
        await message.reply_text(texts.admin.preset_exists(name))
        return
    data = await download_image(source, texts)
    if data is None:
        return
    path = await asyncio.to_thread(context.store.files.save_preset, data[0], data[1])
    if await presets.add(name, path, user.id) is None:
        await message.reply_text(texts.admin.preset_exists(name))
        return
    logger.info("user %d added preset %s", user.id, name)
    await message.reply_text(texts.admin.preset_added(name))


@admin_command
async def delstyle(message: Message, user: User, context: BotContext, args: list[str]) -> None:
    """/delstyle NAME: remove a preset."""
    texts = texts_for(user.language_code)
    name = " ".join(args)
    if not name:
        await message.reply_text(texts.admin.delstyle_usage)
        return
    if not valid_name(name) or not await context.store.presets.remove(name):
        await message.reply_text(texts.unknown_preset(name[:40]))
        return
    logger.info("user %d removed preset %s", user.id, name)
    await message.reply_text(texts.admin.preset_removed(name))


@admin_command
async def stats(message: Message, user: User, context: BotContext, args: list[str]) -> None:
    """/stats: jobs per status, mean duration, users today, the painters ready, free disk space."""
    s = await context.store.stats()
    by_status = [(str(k), v) for k, v in s.jobs_by_status.items() if v]
    texts = texts_for(user.language_code)
    pool, previews = context.dispatcher.pool, context.dispatcher.previews
    disk = context.uploads.disk
    lines = [texts.admin.stats(by_status, s.mean_duration, s.users_today, s.jobs_today)]
    lines.append(texts.admin.painters(pool.ready, pool.size))
    if pool.start_error is not None:
        lines.append(texts.admin.painter_cannot_start(pool.start_error))
    if previews is not None:
        lines.append(texts.admin.preview_painter(previews.ready > 0, previews.start_error))
    lines.append(texts.admin.disk_space(disk.free(), disk.floor))
    await message.reply_text("\n".join(lines))
