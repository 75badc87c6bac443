"""A fake Telegram Bot API server on 127.0.0.1 for end-to-end tests, plus a test-side API to act as users.

Point python-telegram-bot at it with ``fake.application_builder()`` (or ``base_url``/``base_file_url``), or
give a bot subprocess ``fake.env()``. The server keeps the protocol's shapes: ``{"ok": true, "result": …}``,
errors with the HTTP status PTB maps to its exceptions, form and multipart bodies as PTB posts them.

The modules, one concern each: ``protocol`` (shapes, limits, records), ``state`` (chats, messages, files),
``methods`` (the Bot API methods), ``chats`` (groups, channels, privacy mode), ``users`` (acting as users),
``network`` (faults, outages, slow downloads), ``inspection`` (what the bot did), ``webhook`` (setWebhook
and posting updates to the bot) and ``server`` (HTTP).
"""

from tests.bot.fake_telegram.protocol import (
    DEFAULT_TOKEN,
    ApiCall,
    BotMessage,
    Upload,
    UserAction,
    Version,
    WebhookPost,
)
from tests.bot.fake_telegram.server import FakeTelegram

__all__ = [
    "DEFAULT_TOKEN",
    "ApiCall",
    "BotMessage",
    "FakeTelegram",
    "Upload",
    "UserAction",
    "Version",
    "WebhookPost",
]
