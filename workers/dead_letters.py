"""Dead letters: the one way any worker records an entry it will not process, with the reason.

A letter goes to `pokewatch:dead-letter` (capped at POKEWATCH_DEAD_LETTER_MAXLEN)
and the original entry is acked by the caller in the same transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from contracts import keys
from contracts.messages import DeadLetter

logger = logging.getLogger(__name__)

MAX_DEAD_PAYLOAD = 64 * 1024


def letter(
    stream: str,
    entry_id: bytes,
    fields: dict[bytes, bytes],
    reason: str,
    consumer: str,
    group: str | None = None,
    deliveries: int | None = None,
) -> DeadLetter:
    """A dead letter of one stream entry: its payload as received (truncated), or every field if it has no payload."""
    shown = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
    text = repr(shown) if len(shown) != 1 or keys.PAYLOAD_FIELD not in shown else shown[keys.PAYLOAD_FIELD]
    return DeadLetter(
        source_stream=stream,
        entry_id=entry_id.decode(),
        group=group,
        consumer=consumer,
        reason=reason,
        deliveries=deliveries,
        payload=text[:MAX_DEAD_PAYLOAD],
    )


def write(target: Any, dead: DeadLetter, maxlen: int) -> Any:
    """XADD the letter on `target`: a transaction pipeline (queued) or a client (returns its awaitable)."""
    logger.warning("dead-lettered %s %s: %s", dead.source_stream, dead.entry_id, dead.reason)
    return target.xadd(
        keys.DEAD_LETTER_STREAM, {keys.PAYLOAD_FIELD: dead.model_dump_json()}, maxlen=maxlen, approximate=True
    )


# Kinds of reasons, for metrics: a reason's text names a card or a field, so
# only its kind may be a label value.
CATEGORIES = (
    ("invalid message", "invalid"),
    ("missing field", "missing_payload"),
    ("failed ", "max_deliveries"),
    ("the notifier stopped", "max_deliveries"),
    ("webhook", "webhook"),
)


def category(reason: str) -> str:
    """The kind of a dead letter's reason: invalid, missing_payload, max_deliveries, webhook or other."""
    for prefix, kind in CATEGORIES:
        if reason.startswith(prefix):
            return kind
    return "other"
