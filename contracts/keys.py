"""Every Redis key PokeWatch uses, in one place.

Wire format: every stream entry has a single field `payload` holding one JSON
document (a model from `contracts.messages`, with its `schema_version`), so an
operator can read any stream with `redis-cli XRANGE <stream> - + COUNT 5`.

`DOCUMENTED` below says, for each key, its type, who writes it and who reads
it; docs/reference/redis-keys.md is generated from it.

The catalog and history hashes are rebuilt under temporary names and swapped
in with RENAME, so readers never see half a catalog.

Streams are capped by their publishers with an approximate MAXLEN
(`POKEWATCH_STREAM_MAXLEN`, `POKEWATCH_SIGNALS_MAXLEN`, ...).
"""

from __future__ import annotations

from typing import Any, NamedTuple

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


class KeyDoc(NamedTuple):
    """One key (or family of keys: `<...>` is a placeholder) as the reference documents it."""

    key: str
    kind: str
    written_by: str
    read_by: str


# Every key above, documented; tests/contracts/test_messages.py fails on a key constant missing here.
DOCUMENTED: tuple[KeyDoc, ...] = (
    KeyDoc(PREDICT_STREAM, "stream", "gateway", "model replicas (group `model`); challenger replicas (group `shadow`)"),
    KeyDoc(QUOTES_STREAM, "stream", "model replicas", "decision workers (group `decision`)"),
    KeyDoc(SIGNALS_STREAM, "stream", "decision workers", "anyone: notifiers, dashboards, `redis-cli`"),
    KeyDoc(
        SIGNAL_CHANGES_STREAM,
        "stream",
        "decision workers (only where a card's signal changed)",
        "subscribers, each in its own consumer group; the notifier (group `notifier`); `GET /signals/stream`",
    ),
    KeyDoc(
        PRICE_UPDATES_STREAM,
        "stream",
        "decision workers (a card's latest date, price or version changed)",
        "the notifier (group `notifier`), subscribers",
    ),
    KeyDoc(
        ALERTS_STREAM,
        "stream",
        "the notifier (matching)",
        "the notifier (group `notifier`: webhook delivery), subscribers",
    ),
    KeyDoc(DEAD_LETTER_STREAM, "stream", "every worker", "operators"),
    KeyDoc(
        MODEL_EVENTS_STREAM,
        "stream",
        "pipeline, CLI, model replicas (load failures)",
        "every model and challenger replica (broadcast, XREAD)",
    ),
    KeyDoc(
        PIPELINE_RUNS_STREAM, "stream", "the pipeline's last task, `pokewatch pipeline run`", "the metrics exporter"
    ),
    KeyDoc(
        SHADOW_STREAM,
        "stream",
        "challenger replicas (group `shadow` on `pokewatch:predict`)",
        "the lifecycle rule, operators; never users",
    ),
    KeyDoc(f"{PREFIX}:reply:<gateway id>", "pub/sub", "decision workers", "the gateway process that asked"),
    KeyDoc(
        SCAN_REPLY_TO, "pub/sub", "decision workers (market scan requests)", "nobody: the answers go to the streams"
    ),
    KeyDoc(REPLICAS_HASH, "hash", "every worker (heartbeat)", "`/health`, `pokewatch top`, the exporter, operators"),
    KeyDoc(CATALOG_HASH, "hash", "model replica on load (swapped in with RENAME)", "gateway `/cards`"),
    KeyDoc(CATALOG_VERSION_KEY, "string", "model replica on load", "model replicas"),
    KeyDoc(HISTORY_HASH, "hash", "model replica on load (swapped in with RENAME)", "gateway `/cards/{id}/history`"),
    KeyDoc(
        LAST_SIGNAL_HASH, "hash", "decision workers", "decision workers (each card's last date, signal, version, price)"
    ),
    KeyDoc(f"{SCAN_PREFIX}<from>-><to>", "string", "the model replica that claims a scan (SET NX)", "model replicas"),
    KeyDoc(
        f"{WATCHLISTS_PREFIX}<owner>", "hash", "gateway (per API key id, `local` without auth)", "gateway, notifier"
    ),
    KeyDoc(WATCHLIST_OWNERS, "set", "gateway, on every watchlist change", "notifier (whose watchlists to read)"),
    KeyDoc(WATCHLIST_VERSION, "string", "gateway (INCR on every change)", "notifier (reloads when it moves)"),
    KeyDoc(API_KEYS_HASH, "hash", "`pokewatch keys`", "gateway (key id -> SHA-256 of the secret)"),
    KeyDoc(f"{RATE_LIMIT_PREFIX}<who>", "string", "gateway (GCRA in Lua)", "gateway"),
    KeyDoc(LIFECYCLE_KEY, "string (JSON)", "the lifecycle rule after each run", "the model page, the metrics exporter"),
)


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
