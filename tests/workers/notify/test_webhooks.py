"""Webhook delivery against a real HTTP receiver on loopback: signatures, retries, refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.e2e.receiver import Receiver
from workers.config import NotifierSettings
from workers.local.embedded import free_port
from workers.notify.webhooks import Undeliverable, WebhookSender, retry_after_s, signed_headers

SECRET = "whsec_" + "c2VjcmV0LWtleS1vZi1hLXdhdGNobGlzdA=="
BODY = '{"alert_id":"alert_1","card_id":"c1"}'


@pytest.fixture
def receiver():
    r = Receiver(free_port()).start()
    yield r
    r.stop()


def sender(attempts: int = 3, allow: str = "127.0.0.1/32") -> WebhookSender:
    return WebhookSender(
        NotifierSettings(
            webhook_allow=allow, webhook_attempts=attempts, webhook_backoff_s=0.05, webhook_backoff_max_s=2
        )
    )


def test_the_signature_verifies_with_the_secret_only() -> None:
    headers = signed_headers(SECRET, "alert_1", BODY)
    assert Webhook(SECRET).verify(BODY, headers) == {"alert_id": "alert_1", "card_id": "c1"}
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "b3RoZXItc2VjcmV0").verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(BODY.replace("c1", "c2"), headers)  # a changed body
    assert headers["idempotency-key"] == headers["webhook-id"] == "alert_1"


def test_retry_after_reads_seconds_and_dates() -> None:
    now = dt.datetime(2026, 12, 2, 12, 0, 0, tzinfo=dt.UTC)
    assert retry_after_s("7") == 7.0
    assert retry_after_s("Wed, 02 Dec 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_s("Wed, 02 Dec 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_s("soon") is None and retry_after_s(None) is None


async def test_a_429_is_retried_after_what_retry_after_asks(receiver: Receiver) -> None:
    receiver.answers["/h"] = [(429, {"retry-after": "1"}), (200, {})]
    s = sender()
    assert await s.deliver(f"{receiver.url}/h", SECRET, "alert_1", BODY) == 2
    await s.aclose()
    first, second = receiver.on("/h")
    assert second.at - first.at >= 0.95, "waited the asked second, not the 0.05 s backoff"
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "alert_1"
    assert Webhook(SECRET).verify(second.body, second.headers)


@pytest.mark.parametrize(
    ("status", "why"), [(404, "only 408, 425, 429 and 5xx are retried"), (302, "redirects are not followed")]
)
async def test_a_refusal_or_a_redirect_is_not_retried(receiver: Receiver, status: int, why: str) -> None:
    receiver.answers["/h"] = (status, {"location": "http://169.254.169.254/"})
    s = sender()
    with pytest.raises(Undeliverable, match=why):
        await s.deliver(f"{receiver.url}/h", SECRET, "alert_1", BODY)
    await s.aclose()
    assert len(receiver.on("/h")) == 1


async def test_a_server_error_forever_gives_up_after_the_attempts(receiver: Receiver) -> None:
    receiver.answers["/h"] = (503, {})
    s = sender(attempts=3)
    with pytest.raises(Undeliverable, match="answered 503; gave up after 3 attempts"):
        await s.deliver(f"{receiver.url}/h", SECRET, "alert_1", BODY)
    await s.aclose()
    assert len(receiver.on("/h")) == 3


async def test_a_receiver_that_is_down_is_retried_then_given_up() -> None:
    s = sender(attempts=2)
    with pytest.raises(Undeliverable, match=r"could not reach the receiver.*after 2 attempts"):
        await s.deliver(f"http://127.0.0.1:{free_port()}/h", SECRET, "alert_1", BODY)
    await s.aclose()


async def test_an_address_not_allow_listed_is_refused_before_sending(receiver: Receiver) -> None:
    s = sender(allow="")
    with pytest.raises(Undeliverable, match=r"refused before sending.*127\.0\.0\.1"):
        await s.deliver(f"{receiver.url}/h", SECRET, "alert_1", BODY)
    await s.aclose()
    assert receiver.received == []
