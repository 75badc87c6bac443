"""/options: a chat's size, colours, strength, brush and fast mode, by command or by buttons."""

from __future__ import annotations

import logging
from dataclasses import replace

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, User
from telegram.error import TelegramError

from bot.context import BotContext, number, sender
from bot.i18n import texts_for
from bot.painting import chosen_size
from bot.texts import Texts
from storage import BRUSHES, Session

logger = logging.getLogger(__name__)

SIZES = (256, 384, 512, 768, 1024, 1536, 2048)
STRENGTHS = {"weak": 0.3, "normal": 1.0, "strong": 3.0}


async def options(update: Update, context: BotContext) -> None:
    """/options, or /options KEY VALUE to change one (size, colors, strength, brush, fast: OPTIONS_USAGE)."""
    message, user = sender(update)
    texts = texts_for(user.language_code)
    args = [arg.lower() for arg in context.args or []]
    if args:
        if len(args) != 2:
            await message.reply_text(texts.options_usage)
            return
        if args[0] == "fast" and not context.features.previews:
            await message.reply_text(texts.fast_unavailable)
            return
        session = await set_option(message.chat_id, user.id, args[0], args[1], context)
        if session is None:
            await message.reply_text(texts.options_usage)
            return
    else:
        session = await context.store.sessions.get(message.chat_id)
    text, markup = await _view(session, context, texts)
    await message.reply_text(text, reply_markup=markup)


async def pressed(message: Message, user: User, value: str, context: BotContext) -> None:
    """An options button (`opt:KEY:VALUE`): change the option and redraw the menu in place."""
    key, _, choice = value.partition(":")
    session = await set_option(message.chat_id, user.id, key, choice, context)
    if session is None:
        return
    text, markup = await _view(session, context, texts_for(user.language_code))
    try:
        await message.edit_text(text, reply_markup=markup)
    except TelegramError as exc:
        logger.info("chat %d: options edit failed: %s", message.chat_id, exc)


async def set_option(chat_id: int, user_id: int, key: str, value: str, context: BotContext) -> Session | None:
    """The session with one option changed, or None if `key`/`value` is not a valid choice."""
    store = context.store
    current = (await store.sessions.get(chat_id)).options
    if key == "size" and number(value) in SIZES:
        changed = replace(current, output_size=number(value))
    elif key in ("colors", "colours") and value in ("on", "off"):
        changed = replace(current, preserve_colors=value == "on")
    elif key == "strength" and value in STRENGTHS:
        changed = replace(current, style_strength=STRENGTHS[value])
    elif key == "brush" and value in BRUSHES:
        changed = replace(current, brush=value)
    elif key == "fast" and value in ("on", "off"):
        changed = replace(current, fast=value == "on")
    else:
        return None
    return await store.sessions.set_options(chat_id, user_id, changed)


async def _view(session: Session, context: BotContext, texts: Texts) -> tuple[str, InlineKeyboardMarkup]:
    settings = await context.store.settings.get()
    opts = session.options
    size = chosen_size(opts, settings, context.config.default_size)
    strength = min(STRENGTHS, key=lambda k: abs(STRENGTHS[k] - opts.style_strength))
    sizes = [s for s in SIZES if s <= settings.max_image_size] or [settings.max_image_size]
    buttons = [
        InlineKeyboardButton(texts.choice(str(s), s == size), callback_data=f"opt:size:{s}") for s in sizes
    ]
    rows = [
        *(buttons[i : i + 4] for i in range(0, len(buttons), 4)),  # four to a row: phones are narrow
        [
            InlineKeyboardButton(
                texts.colours_button(opts.preserve_colors),
                callback_data=f"opt:colors:{'off' if opts.preserve_colors else 'on'}",
            )
        ],
        [
            InlineKeyboardButton(
                texts.choice(texts.strength(k), k == strength), callback_data=f"opt:strength:{k}"
            )
            for k in STRENGTHS
        ],
        [
            InlineKeyboardButton(texts.brush_button(k, k == opts.brush), callback_data=f"opt:brush:{k}")
            for k in BRUSHES
        ],
    ]
    if context.features.previews:
        rows.append(
            [
                InlineKeyboardButton(
                    texts.fast_button(opts.fast), callback_data=f"opt:fast:{'off' if opts.fast else 'on'}"
                )
            ]
        )
    text = texts.options(size, settings.max_image_size, opts.preserve_colors, strength, opts.brush, opts.fast)
    return text, InlineKeyboardMarkup(rows)
