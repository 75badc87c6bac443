"""The inline keyboards under the bot's messages, with their labels in the user's language."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.texts import Texts


def cancel_keyboard(job_id: int, texts: Texts) -> InlineKeyboardMarkup:
    """The Cancel button under a job's status message (`cancel:JOB`)."""
    button = InlineKeyboardButton(texts.cancel_button, callback_data=f"cancel:{job_id}")
    return InlineKeyboardMarkup([[button]])
