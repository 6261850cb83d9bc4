"""Raw stream entries through FastStream, and how an invalid one is described.

PokeWatch entries are plain `payload` fields, not FastStream envelopes; the
worker validates them itself so that bad ones reach the dead-letter stream
with a precise reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from contracts import keys
from contracts.validation import problems

Entry = tuple[bytes, dict[bytes, bytes]]
M = TypeVar("M", bound=BaseModel)
PAYLOAD = keys.PAYLOAD_FIELD.encode()


async def keep_raw_entries(msg: Any, original: Any) -> Any:
    """Let FastStream build its message object but keep the stream entries untouched."""
    parsed = await original({**msg, "data": []})
    parsed.raw_message = msg
    return parsed


async def decode_entries(msg: Any, original: Any) -> list[Entry]:
    raw = msg.raw_message
    return list(zip(raw["message_ids"], raw["data"], strict=True))


def reason_of(exc: ValidationError) -> str:
    """A short, readable validation error: `field: message` per problem."""
    return "invalid message: " + "; ".join(problems(exc.errors()))


@dataclass
class Sorted(Generic[M]):
    """A batch of entries sorted by what becomes of them."""

    valid: list[M] = field(default_factory=list)
    valid_ids: list[bytes] = field(default_factory=list)
    expired_ids: list[bytes] = field(default_factory=list)
    # (entry id, fields, reason, deliveries) of entries to dead-letter
    rejected: list[tuple[bytes, dict[bytes, bytes], str, int]] = field(default_factory=list)


def sort_entries(
    entries: list[Entry], message_type: type[M], deliveries: dict[bytes, int], max_deliveries: int, now: float
) -> Sorted[M]:
    """Validate each entry: too many deliveries, no payload or an invalid one is
    rejected with its reason; a passed deadline is expired; the rest is valid."""
    out: Sorted[M] = Sorted()
    for entry_id, fields in entries:
        count = deliveries.get(entry_id, 1)
        if count > max_deliveries:
            out.rejected.append((entry_id, fields, f"failed {count - 1} deliveries", count))
            continue
        raw = fields.get(PAYLOAD)
        if raw is None:
            out.rejected.append((entry_id, fields, f"missing field {keys.PAYLOAD_FIELD!r}", count))
            continue
        try:
            message = message_type.model_validate_json(raw)
        except ValidationError as exc:
            out.rejected.append((entry_id, fields, reason_of(exc), count))
            continue
        if getattr(message, "deadline", now + 1) < now:
            out.expired_ids.append(entry_id)
            continue
        out.valid.append(message)
        out.valid_ids.append(entry_id)
    return out
