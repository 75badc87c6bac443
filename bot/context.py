"""What every handler is given: a typed context over the bot's shared parts, set up in `post_init`."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from telegram import Message, Update, User
from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from bot.config import Config
from bot.dispatcher import Dispatcher
from bot.limits import Uploads
from bot.painting import EngineFeatures
from storage import Store

T = TypeVar("T")
_NUMBER = re.compile(r"[0-9]{1,9}")


@dataclass
class BotData:
    """The application's `bot_data`: the configuration from the start, the rest once `post_init` ran."""

    config: Config | None = None
    uploads: Uploads | None = None
    store: Store | None = None
    dispatcher: Dispatcher | None = None
    features: EngineFeatures | None = None
    # Telegram's file id of the presets' sheet last sent, by the sheet's file name (its presets' key).
    sheet_file_ids: dict[str, str] = field(default_factory=dict)


class BotContext(CallbackContext[ExtBot[None], dict, dict, BotData]):  # type: ignore[type-arg]
    """The handlers' context: the bot's parts as typed properties instead of keys into `bot_data`.

    Updates are fetched only after `post_init` has set every part, so a handler never finds one
    missing; the properties still say so plainly if the wiring ever changes.
    """

    def __init__(
        self,
        application: BotApplication,
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)

    @property
    def config(self) -> Config:
        return _ready(self.bot_data.config)

    @property
    def store(self) -> Store:
        return _ready(self.bot_data.store)

    @property
    def dispatcher(self) -> Dispatcher:
        return _ready(self.bot_data.dispatcher)

    @property
    def features(self) -> EngineFeatures:
        return _ready(self.bot_data.features)

    @property
    def uploads(self) -> Uploads:
        return _ready(self.bot_data.uploads)


CONTEXT_TYPES = ContextTypes(context=BotContext, bot_data=BotData)
# The application `build_application` makes: its bot, context, user and chat data, and bot data.
BotApplication = Application[ExtBot[None], BotContext, dict[Any, Any], dict[Any, Any], BotData, Any]
Handler = Callable[[Update, BotContext], Coroutine[Any, Any, None]]  # what a handler callback is


def _ready(part: T | None) -> T:
    if part is None:
        raise RuntimeError("the bot is still starting")
    return part


def sender(update: Update) -> tuple[Message, User]:
    """The message and its sender, which the handlers' filters guarantee (new private messages)."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        raise ValueError(f"update {update.update_id} has no message or no sender")
    return message, user


def number(text: str) -> int | None:
    """A whole number written with ASCII digits only (`"²".isdigit()` is true, `int("²")` raises)."""
    return int(text) if _NUMBER.fullmatch(text) else None
