"""Deliver one alert to a webhook: signed, retried with backoff, or refused with a reason.

Each POST carries the alert as JSON and the Standard Webhooks headers
(https://www.standardwebhooks.com/, signed by the `standardwebhooks` package):

- `webhook-id`: the alert's id, the same on every retry and redelivery (also
  sent as `Idempotency-Key`): receivers deduplicate on it;
- `webhook-timestamp`: unix seconds of this attempt;
- `webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`
  with the watchlist's secret.

Before each attempt the URL is checked again (contracts.webhooks): a name that
now resolves to a private address is refused. 2xx is delivered; 408, 425,
429, 5xx, timeouts and refused connections are retried with exponential
backoff and jitter (tenacity), waiting what `Retry-After` asks (capped at
`webhook_backoff_max_s`); anything else (4xx, a redirect) is not retried. What
is not delivered raises `Undeliverable` with the reason for the dead letter.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils

import httpx
from standardwebhooks import Webhook
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from contracts.webhooks import Unresolved, UnsafeWebhook, check_webhook_url
from workers.config import NotifierSettings

RETRIED_STATUS = frozenset({408, 425, 429})
USER_AGENT = "PokeWatch-Notifier/1"


class Retryable(Exception):
    """A failed attempt worth repeating; `retry_after` is the receiver's wish, in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Undeliverable(Exception):
    """An alert that will not be delivered; the message is the reason."""


def retry_after_s(value: str | None, now: dt.datetime | None = None) -> float | None:
    """A `Retry-After` header as seconds from now: delay-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def signed_headers(secret: str, alert_id: str, body: str, at: dt.datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt."""
    at = at or dt.datetime.now(dt.UTC)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": alert_id,
        "idempotency-key": alert_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(alert_id, at, body),
    }


class WebhookSender:
    """POSTs alerts on one shared connection pool."""

    def __init__(self, settings: NotifierSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        # Redirects are not followed: a public URL could redirect to an internal one.
        self.client = client or httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False)
        # Exponential from webhook_backoff_s plus up to as much again at random (jitter),
        # so receivers coming back are not hit by every notifier at once.
        self._backoff = wait_exponential_jitter(
            initial=settings.webhook_backoff_s, max=settings.webhook_backoff_max_s, jitter=settings.webhook_backoff_s
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = getattr(exc, "retry_after", None)
        if asked is not None:
            return float(min(asked, self.settings.webhook_backoff_max_s))
        return float(self._backoff(state))

    async def deliver(self, url: str, secret: str, alert_id: str, body: str) -> int:
        """POST until delivered; the number of attempts it took, or Undeliverable with the reason."""
        attempts = self.settings.webhook_attempts
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=self._wait,
            retry=retry_if_exception_type(Retryable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._post(url, secret, alert_id, body)
                    return attempt.retry_state.attempt_number
        except Retryable as exc:
            raise Undeliverable(f"{exc}; gave up after {attempts} attempts") from exc
        raise AssertionError("unreachable: the retrying loop returns or raises")

    async def _post(self, url: str, secret: str, alert_id: str, body: str) -> None:
        try:
            await asyncio.to_thread(check_webhook_url, url, self.settings.webhook_allow)
        except Unresolved as exc:
            raise Retryable(str(exc)) from exc
        except UnsafeWebhook as exc:
            raise Undeliverable(f"refused before sending: {exc}") from exc
        try:
            resp = await self.client.post(url, content=body.encode(), headers=signed_headers(secret, alert_id, body))
        except httpx.TimeoutException as exc:
            raise Retryable(f"no answer within {self.settings.webhook_timeout_s:g} s ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise Retryable(f"could not reach the receiver: {type(exc).__name__}: {exc}") from exc
        status = resp.status_code
        if 200 <= status < 300:
            return
        if status in RETRIED_STATUS or status >= 500:
            raise Retryable(f"the receiver answered {status}", retry_after_s(resp.headers.get("retry-after")))
        if 300 <= status < 400:
            raise Undeliverable(f"the receiver answered {status} (a redirect; redirects are not followed)")
        raise Undeliverable(f"the receiver answered {status}; only 408, 425, 429 and 5xx are retried")
