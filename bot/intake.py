"""Photos in, jobs out: downloads and checks pictures, pairs content with a style, and queues the job."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from telegram import Bot, Message, Update, User
from telegram.error import TelegramError

from bot import thumbnails
from bot.clip_plan import plan_clip
from bot.context import BotContext, sender
from bot.cost import clip_work, work
from bot.i18n import texts_for
from bot.keyboards import cancel_keyboard
from bot.painting import new_request
from bot.texts import Texts
from engine.images import ImageError, inspect_image
from storage import InboxItem, validate_preset_name

logger = logging.getLogger(__name__)

# Telegram lets bots download files up to 20 MB.
DOWNLOAD_LIMIT = 20 * 1024 * 1024
IMAGE_MIME_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
FORMAT_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
# Telegram refuses inline buttons whose callback data is longer than this many bytes.
CALLBACK_DATA_LIMIT = 64


async def image(update: Update, context: BotContext) -> None:
    """A photo or an image document: content first, style second; a caption can name a preset."""
    inbox = context.store.inbox
    # Recorded before the download starts, so a crash before the answer gets it handled after restart.
    await inbox.add(inbox_item(update))
    try:
        await _image(update, context)
    finally:
        await inbox.done(update.update_id)


# The attachments a picture or clip message may carry, in the order one is taken: Telegram sends a GIF as an
# animation with the same file as a document beside it.
MEDIA = ("photo", "animation", "video", "video_note", "document")


def inbox_item(update: Update) -> InboxItem:
    """What handling a picture or clip message again needs (the handlers' filters guarantee the file)."""
    message, user = sender(update)
    photo = message.photo[-1] if message.photo else None
    media = next((kind for kind in MEDIA if getattr(message, kind)), None)
    attachment = photo or message.animation or message.video or message.video_note or message.document
    if attachment is None or media is None:
        raise ValueError(f"update {update.update_id} carries no picture")
    sized = photo or message.animation or message.video
    size = (sized.width, sized.height) if sized is not None else None
    if message.video_note is not None:
        size = (message.video_note.length, message.video_note.length)
    return InboxItem(
        update_id=update.update_id,
        chat_id=message.chat_id,
        user_id=user.id,
        first_name=user.first_name,
        language_code=user.language_code,
        message_id=message.message_id,
        sent_at=message.date.timestamp(),
        caption=message.caption,
        file_id=attachment.file_id,
        file_unique_id=attachment.file_unique_id,
        file_size=attachment.file_size,
        width=size[0] if size else None,
        height=size[1] if size else None,
        mime_type=getattr(attachment, "mime_type", None),
        media=media,
        duration=attachment.to_dict().get("duration"),
    )


def replayed(item: InboxItem, bot: Bot) -> Update:
    """The picture message of an inbox item as an update again, to go through the handlers as it did."""
    file: dict[str, Any] = {"file_id": item.file_id, "file_unique_id": item.file_unique_id}
    if item.file_size is not None:
        file["file_size"] = item.file_size
    message: dict[str, Any] = {
        "message_id": item.message_id,
        "date": int(item.sent_at),
        "chat": {"id": item.chat_id, "type": "private"},
        "from": {"id": item.user_id, "is_bot": False, "first_name": item.first_name},
    }
    if item.language_code is not None:
        message["from"]["language_code"] = item.language_code
    if item.caption is not None:
        message["caption"] = item.caption
    media = item.media or ("photo" if item.width is not None and item.height is not None else "document")
    if item.mime_type is not None and media != "photo":
        file["mime_type"] = item.mime_type
    if media == "photo":
        message["photo"] = [{**file, "width": item.width, "height": item.height}]
    elif media == "video_note":
        message["video_note"] = {**file, "length": item.width, "duration": item.duration}
    elif media in ("animation", "video"):
        message[media] = {**file, "width": item.width, "height": item.height, "duration": item.duration}
    else:
        message["document"] = file
    return Update.de_json({"update_id": item.update_id, "message": message}, bot)


async def _image(update: Update, context: BotContext) -> None:
    message, user = sender(update)
    texts = texts_for(user.language_code)
    store = context.store
    command, _, argument = (message.caption or "").strip().partition(" ")
    by_caption = command.split("@")[0].lower() == "/style"
    # Noted with the user's language, which the job's later messages are written in.
    known = await store.users.touch(user.id, user.language_code)
    session = await store.sessions.get(message.chat_id)
    # A replayed update (the bot stopped before it finished with it) whose photo is already the chat's
    # content was applied then: it must not pair with itself, only go on from where it stopped.
    applied = session.content_path is not None and session.content_message_id == message.message_id
    if not applied:
        if known.active_jobs >= context.config.max_queued_per_user:
            await message.reply_text(texts.queue_full(known.active_jobs))
            return
        if not await context.uploads.admit(message, texts, user.id, store):
            return
        data = await download_image(message, texts)
        if data is None:
            return
        picture, ext, size = data
        path = await asyncio.to_thread(store.files.save_upload, picture, ext)
        if by_caption or session.content_path is None:
            session = await store.sessions.set_content(
                message.chat_id, user.id, path, size, message.message_id
            )
        else:
            session = await store.sessions.set_style_upload(message.chat_id, user.id, path)
    if by_caption:
        if not await choose_preset(message, user, argument.strip(), context):
            return
    elif session.style_path is None:
        await message.reply_text(texts.content_received)
        return
    await submit(message, user, context, update.update_id)


async def download_image(message: Message, texts: Texts) -> tuple[bytes, str, tuple[int, int]] | None:
    """The image's bytes, extension and upright (width, height), or None after telling the user why not."""
    if message.photo:
        attachment = message.photo[-1]
        size = attachment.file_size
    elif message.document is not None:
        if message.document.mime_type not in IMAGE_MIME_TYPES:
            await message.reply_text(texts.not_an_image)
            return None
        attachment = message.document  # type: ignore[assignment]
        size = message.document.file_size
    else:
        await message.reply_text(texts.not_an_image)
        return None
    if size is not None and size > DOWNLOAD_LIMIT:
        await message.reply_text(texts.too_big_to_download)
        return None
    try:
        file = await attachment.get_file()
        data = bytes(await file.download_as_bytearray())
    except TelegramError as exc:
        logger.warning("chat %d: download failed: %s", message.chat_id, exc)
        await message.reply_text(texts.download_failed)
        return None
    try:
        info = await asyncio.to_thread(inspect_image, data, "it")
    except ImageError as exc:
        await message.reply_text(texts.bad_image(exc.kind, exc.width, exc.height, exc.limit))
        return None
    if info.frames > 1:
        await message.reply_text(texts.first_frame)
    return data, FORMAT_EXTENSIONS[info.format], (info.width, info.height)


async def style(update: Update, context: BotContext) -> None:
    """/style NAME: use a preset as the style (now, or for the next photo)."""
    message, user = sender(update)
    await use_preset(message, user, " ".join(context.args or []), context, update.update_id)


async def use_preset(
    message: Message, user: User, name: str, context: BotContext, update_id: int | None = None
) -> None:
    """Make a preset the chat's style, and queue the job if the photo is already there."""
    if not await choose_preset(message, user, name, context):
        return
    session = await context.store.sessions.get(message.chat_id)
    if session.content_path is None:
        name = session.style_preset or name
        await message.reply_text(texts_for(user.language_code).style_first(name))
        return
    await submit(message, user, context, update_id)


async def choose_preset(message: Message, user: User, name: str, context: BotContext) -> bool:
    """Set the chat's style to the preset `name`; False after telling the user why not."""
    texts = texts_for(user.language_code)
    if not name:
        await message.reply_text(texts.style_usage)
        return False
    preset = await context.store.presets.get(name) if valid_name(name) else None
    if preset is None:
        await message.reply_text(texts.unknown_preset(name[:40]))
        return False
    await context.store.sessions.set_style_preset(message.chat_id, user.id, preset.name)
    return True


def valid_name(name: str) -> bool:
    try:
        validate_preset_name(name)
    except ValueError:
        return False
    return True


def preset_button_data(name: str) -> str:
    """`style:NAME`, or `preset:HASH` when the name's bytes would pass Telegram's 64-byte limit."""
    data = f"style:{name}"
    if len(data.encode()) <= CALLBACK_DATA_LIMIT:
        return data
    return f"preset:{preset_hash(name)}"


def preset_hash(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


async def submit(message: Message, author: User, context: BotContext, update_id: int | None) -> None:
    """Turn the chat's complete session into a queued job and show where it stands.

    The job is queued held, its status message sent, and then the message recorded as the job is
    opened to the dispatcher: nothing downstream waits for or looks up what intake knows. The status
    message is a photo (the picture being painted, small) so that the preview and then the result can
    replace it: delivery edits one message and never adds a second copy.
    """
    store, dispatcher = context.store, context.dispatcher
    session = await store.sessions.get(message.chat_id)
    if session.content_path is None or session.style_path is None:
        raise ValueError(f"chat {message.chat_id}: a job needs a photo and a style")
    texts = texts_for(author.language_code)
    user = await store.users.touch(author.id, author.language_code)
    if user.active_jobs >= context.config.max_queued_per_user:
        await store.sessions.reset(message.chat_id)
        await message.reply_text(texts.queue_full(user.active_jobs))
        return
    request = new_request(
        session.options,
        await store.settings.get(),
        context.config.default_size,
        context.config.optimizer,
        context.features,
    )
    size = session.content_size
    note = None
    if session.content_frames is not None:
        measured = dispatcher.lane(False).pace
        pace = measured.seconds if measured is not None else None
        plan = plan_clip(request, session, context.config, context.features, pace, texts)
        if plan.request is None:
            await store.sessions.reset(message.chat_id)
            await message.reply_text(plan.note or "")
            return
        request, note = plan.request, plan.note
        cost = clip_work(request, request.max_size, session.content_frames)
    else:
        cost = work(request, max(size) if size is not None else request.max_size)
    job = await store.jobs.submit(
        message.chat_id,
        author.id,
        session.content_path,
        [session.style_path],
        request,
        content_size=size,
        handled_update=update_id,
        work=cost,
        held=True,
    )
    logger.info("job %d: queued for chat %d", job.id, message.chat_id)
    status_id: int | None = None
    try:
        lane = dispatcher.lane(request.fast)
        # Before any job of the lane has finished, the estimate comes from its workers' probe.
        pace = lane.pace.seconds if lane.pace is not None else None
        position = await store.jobs.queue_position(job.id, lane.size, pace)
        text = texts.queued(position.position, position.estimate) if position else texts.progress(0, 1)
        if note is not None:
            text += "\n" + note
        try:
            thumbnail = await thumbnails.status_picture(session.content_path)
        except thumbnails.ThumbnailError as exc:
            # Still a photo, so that the preview and the result can take its place.
            logger.warning("job %d: status picture without the photo: %s", job.id, exc)
            thumbnail = thumbnails.placeholder()
        markup = cancel_keyboard(job.id, texts)
        status = await message.reply_photo(thumbnail, caption=text, reply_markup=markup)
        status_id = status.message_id
    except (TelegramError, OSError, ValueError) as exc:
        # The job is queued all the same; its result will come as a message of its own.
        logger.warning("job %d: status message not sent: %s", job.id, exc)
    finally:
        # Even when a stop cancels the send; a crash here leaves the job held, and the next start opens it.
        job = await asyncio.shield(store.jobs.open(job.id, status_id))
    dispatcher.wake()
    if not request.fast:
        dispatcher.preview(job)
