"""Webhooks as Telegram runs them: setWebhook, getWebhookInfo, deleteWebhook, and posting updates to the URL.

While a webhook is set, getUpdates answers 409 and every pending update is POSTed to the URL as JSON, with
the secret in `X-Telegram-Bot-Api-Secret-Token`; an update stays pending, and is posted again after
`webhook_retry_seconds`, until the bot answers 2xx. Updates go one at a time, in order (Telegram posts up to
`max_connections` at once, but one chat's updates in order). Like a local Bot API server, the fake accepts
http:// URLs on any port; api.telegram.org wants HTTPS on 443, 80, 88 or 8443.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import re
import time
from urllib.parse import urlsplit

import aiohttp

from tests.bot.fake_telegram.protocol import JSON, ApiError, WebhookPost, bool_param, int_param
from tests.bot.fake_telegram.state import State

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)


class Webhook(State):
    """The webhook's settings, its delivery task, and the test-side view of both."""

    webhook_retry_seconds = 0.1  # Telegram backs off for longer; tests want the retry soon
    webhook_timeout = 10.0  # seconds the fake waits for the bot's answer to one post

    def _set_webhook(self, params: JSON) -> bool:
        url = str(params.get("url", ""))
        if not url:  # "Pass an empty string to remove webhook integration"
            return self._delete_webhook(params)
        try:
            parts = urlsplit(url)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            usable = False
        if not usable:
            raise ApiError(400, "Bad Request: bad webhook: Failed to resolve host: Name or service not known")
        secret = params.get("secret_token")
        if secret is not None and not SECRET_TOKEN.fullmatch(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        max_connections = int_param(params, "max_connections", 40)
        if not 1 <= max_connections <= 100:
            raise ApiError(400, "Bad Request: bad webhook: max_connections must be between 1 and 100")
        if "allowed_updates" in params:  # when left out, the earlier setting stays, as in getUpdates
            self._allowed_updates = list(params["allowed_updates"])
        if bool_param(params.get("drop_pending_updates")):
            self._updates.clear()
        self._webhook = {
            "url": url,
            "secret_token": None if secret is None else str(secret),
            "max_connections": max_connections,
        }
        self._webhook_error = None
        self._poll_generation += 1  # a long poll under way now answers 409
        task = self._webhook_task
        if task is None or task.done():
            self._webhook_task = asyncio.get_running_loop().create_task(self._post_updates())
        self._set_wakeup()
        return True

    def _delete_webhook(self, params: JSON) -> bool:
        if bool_param(params.get("drop_pending_updates")):
            self._updates.clear()
        self._webhook = None
        self._webhook_error = None
        self._set_wakeup()  # the delivery task sees the webhook gone and ends
        return True

    def _webhook_info(self, params: JSON) -> JSON:
        hook = self._webhook or {}
        info: JSON = {
            "url": hook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if hook:
            info |= {
                "max_connections": hook["max_connections"],
                "allowed_updates": list(self._allowed_updates),
            }
        if self._webhook_error is not None:
            info |= {
                "last_error_date": int(self._webhook_error[0]),
                "last_error_message": self._webhook_error[1],
            }
        return info

    async def _post_updates(self) -> None:
        """Post the oldest pending update until the bot takes it, then the next; end with the webhook."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.webhook_timeout)) as http:
            while True:
                with self._lock:
                    hook, wakeup = self._webhook, self._wakeup
                    if hook is None or self._closing or wakeup is None:
                        return
                    update = copy.deepcopy(self._updates[0]) if self._updates else None
                if update is None:
                    await wakeup.wait()
                    continue
                post = await self._post(http, hook, update)
                with self._lock:
                    self._webhook_posts.append(post)
                    taken = post.status is not None and 200 <= post.status < 300
                    if taken:
                        self._updates = [u for u in self._updates if u["update_id"] != post.update_id]
                    else:
                        self._webhook_error = (time.time(), post.error)
                if not taken:
                    await asyncio.sleep(self.webhook_retry_seconds)

    async def _post(self, http: aiohttp.ClientSession, hook: JSON, update: JSON) -> WebhookPost:
        headers = {} if hook["secret_token"] is None else {SECRET_HEADER: hook["secret_token"]}
        try:
            async with http.post(hook["url"], json=update, headers=headers) as response:
                await response.read()
                failed = not 200 <= response.status < 300
                error = (
                    f"Wrong response from the webhook: {response.status} {response.reason}" if failed else ""
                )
                return WebhookPost(update["update_id"], hook["url"], response.status, error)
        except TimeoutError:
            return WebhookPost(update["update_id"], hook["url"], None, "Read timeout expired")
        except aiohttp.ClientError as exc:
            return WebhookPost(update["update_id"], hook["url"], None, f"Connection failed: {exc}")

    async def _stop_webhook(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def webhook_info(self) -> JSON:
        """What getWebhookInfo would answer now (url "" while no webhook is set)."""
        with self._lock:
            return self._webhook_info({})

    def webhook_secret(self) -> str | None:
        """The secret_token the bot set with its webhook (None: no webhook, or one without a secret)."""
        with self._lock:
            return None if self._webhook is None else self._webhook["secret_token"]

    def webhook_posts(self) -> list[WebhookPost]:
        """Every post of an update to a webhook, in order, with the bot's answer."""
        with self._lock:
            return list(self._webhook_posts)
