"""Every Redis key PokeWatch uses, in one place.

Wire format: every stream entry has a single field `payload` holding one JSON
document (a model from `contracts.messages`, with its `schema_version`), so an
operator can read any stream with `redis-cli XRANGE <stream> - + COUNT 5`.

| key                                 | type    | written by            | read by                         |
|-------------------------------------|---------|-----------------------|---------------------------------|
| `pokewatch:predict`                 | stream  | gateway               | model workers (group `model`)   |
| `pokewatch:predict`                 | stream  | gateway               | challenger replicas (group `shadow`) |
| `pokewatch:quotes`                  | stream  | model workers         | decision workers (group `decision`) |
| `pokewatch:shadow-quotes`           | stream  | challenger replicas   | the pipeline's judge step, operators |
| `pokewatch:lifecycle`               | string  | the judge step        | model page, the stream exporter |
| `pokewatch:signals`                 | stream  | decision workers      | anyone (XREAD; notifiers)       |
| `pokewatch:signal-changes`          | stream  | decision workers      | subscribers, notifier, gateway SSE |
| `pokewatch:price-updates`           | stream  | decision workers      | notifier (group `notifier`), subscribers |
| `pokewatch:last-signal`             | hash    | decision workers      | decision workers (card -> last decision) |
| `pokewatch:alerts`                  | stream  | notifier (matching)   | notifier (webhook delivery), subscribers |
| `pokewatch:scan:<from>-><to>`       | string  | the model replica that claims a scan | model replicas  |
| `pokewatch:watchlists:<owner>`      | hash    | gateway (per API key id, or `local`) | gateway, notifier |
| `pokewatch:watchlist-owners`        | set     | gateway               | notifier (whose hashes to read) |
| `pokewatch:watchlist-version`       | string  | gateway (INCR on every change) | notifier (reload when it moves) |
| `pokewatch:dead-letter`             | stream  | every worker          | operators                       |
| `pokewatch:model-events`            | stream  | pipeline, CLI         | every model replica (broadcast) |
| `pokewatch:pipeline-runs`           | stream  | pipeline (last task)  | the stream exporter (metrics)   |
| `pokewatch:reply:<gateway id>`      | pub/sub | decision workers      | the gateway process that asked  |
| `pokewatch:replicas`                | hash    | every worker (heartbeat) | gateway `/health`, operators |
| `pokewatch:catalog`                 | hash    | model worker on load  | gateway `/cards`                |
| `pokewatch:catalog:version`         | string  | model worker on load  | model workers                   |
| `pokewatch:history`                 | hash    | model worker on load  | gateway `/cards/{id}/history`   |
| `pokewatch:api-keys`                | hash    | `pokewatch keys`      | gateway (key id -> hashed key)  |
| `pokewatch:ratelimit:<who>`         | string  | gateway (GCRA Lua)    | gateway                         |

The catalog and history hashes are rebuilt under temporary names and swapped
in with RENAME, so readers never see half a catalog.

Streams are capped by their publishers with an approximate MAXLEN
(`POKEWATCH_STREAM_MAXLEN`, `POKEWATCH_SIGNALS_MAXLEN`, ...).
"""

from __future__ import annotations

from typing import Any

PREFIX = "pokewatch"

PREDICT_STREAM = f"{PREFIX}:predict"
QUOTES_STREAM = f"{PREFIX}:quotes"
SIGNALS_STREAM = f"{PREFIX}:signals"
DEAD_LETTER_STREAM = f"{PREFIX}:dead-letter"
MODEL_EVENTS_STREAM = f"{PREFIX}:model-events"
SIGNAL_CHANGES_STREAM = f"{PREFIX}:signal-changes"
PRICE_UPDATES_STREAM = f"{PREFIX}:price-updates"
ALERTS_STREAM = f"{PREFIX}:alerts"
PIPELINE_RUNS_STREAM = f"{PREFIX}:pipeline-runs"
# What the challenger would have answered each request (never sent to users).
SHADOW_STREAM = f"{PREFIX}:shadow-quotes"

# Every stream, for the metrics exporter and the AsyncAPI document (a stream
# added above and not here fails tests/contracts/test_asyncapi.py).
STREAMS: tuple[str, ...] = (
    PREDICT_STREAM,
    QUOTES_STREAM,
    SIGNALS_STREAM,
    SIGNAL_CHANGES_STREAM,
    PRICE_UPDATES_STREAM,
    ALERTS_STREAM,
    DEAD_LETTER_STREAM,
    MODEL_EVENTS_STREAM,
    PIPELINE_RUNS_STREAM,
    SHADOW_STREAM,
)

MODEL_GROUP = "model"
DECISION_GROUP = "decision"
NOTIFIER_GROUP = "notifier"
# Challenger replicas read the same requests as the model group, in their own group.
SHADOW_GROUP = "shadow"

# Consumer groups that must exist before the first request is sent. They are
# created from id 0 (not `$`), so a request accepted before any worker ever
# started is still delivered.
GROUPS: dict[str, str] = {PREDICT_STREAM: MODEL_GROUP, QUOTES_STREAM: DECISION_GROUP}
# The notifier's groups, created from id 0 by the decision workers too, so a
# change made before the notifier first started still alerts.
NOTIFY_GROUPS: dict[str, str] = {
    SIGNAL_CHANGES_STREAM: NOTIFIER_GROUP,
    PRICE_UPDATES_STREAM: NOTIFIER_GROUP,
    ALERTS_STREAM: NOTIFIER_GROUP,
}

REPLICAS_HASH = f"{PREFIX}:replicas"
CATALOG_HASH = f"{PREFIX}:catalog"
CATALOG_VERSION_KEY = f"{PREFIX}:catalog:version"
HISTORY_HASH = f"{PREFIX}:history"
API_KEYS_HASH = f"{PREFIX}:api-keys"
RATE_LIMIT_PREFIX = f"{PREFIX}:ratelimit:"
LAST_SIGNAL_HASH = f"{PREFIX}:last-signal"
SCAN_PREFIX = f"{PREFIX}:scan:"
WATCHLISTS_PREFIX = f"{PREFIX}:watchlists:"
WATCHLIST_OWNERS = f"{PREFIX}:watchlist-owners"
WATCHLIST_VERSION = f"{PREFIX}:watchlist-version"
# The champion/challenger scores and the promotion rule's state, as JSON (workers.pipeline.lifecycle).
LIFECYCLE_KEY = f"{PREFIX}:lifecycle"
# Scan requests reply here: nobody waits on it, the answers go to the signal streams.
SCAN_REPLY_TO = f"{PREFIX}:reply:scan"

PAYLOAD_FIELD = "payload"


def rate_limit_key(who: str) -> str:
    """The GCRA state of one API key (`key:<id>`) or client address (`addr:<ip>`)."""
    return f"{RATE_LIMIT_PREFIX}{who}"


def scan_key(served: str | None, loaded: str) -> str:
    """The claim of the market scan for a replica set's swap from version `served` to `loaded`
    (`none` on start-up): one replica wins it with SET NX, so the scan runs once per swap."""
    return f"{SCAN_PREFIX}{served or 'none'}->{loaded}"


def watchlists_key(owner: str) -> str:
    """The hash of one owner's watchlists (field = watchlist id, value = StoredWatchlist JSON)."""
    return f"{WATCHLISTS_PREFIX}{owner}"


def reply_channel(gateway_id: str) -> str:
    """The pub/sub channel on which one gateway process receives its replies."""
    return f"{PREFIX}:reply:{gateway_id}"


async def ensure_groups(
    client: Any, streams: tuple[str, ...] | None = None, groups: dict[str, str] | None = None, start_id: str = "0"
) -> None:
    """Create consumer groups from id 0 (or `start_id`), with their streams.

    Args:
        client: a `redis.asyncio.Redis`.
        streams: only these streams' groups (default: all of `groups`).
        groups: stream -> group (default: the request path's GROUPS).
        start_id: where a new group starts reading ("$": only entries added from now on).
    """
    from redis.exceptions import ResponseError

    for stream, group in (GROUPS if groups is None else groups).items():
        if streams is not None and stream not in streams:
            continue
        try:
            await client.xgroup_create(stream, group, id=start_id, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
