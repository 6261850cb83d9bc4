"""`pokewatch top`: a live terminal view of a running PokeWatch, from Redis alone.

Works against any REDIS_URL (the `monitor` ACL user is enough) and refreshes
each second:

- traffic: requests entering `pokewatch:predict`, decisions on
  `pokewatch:signals`, dead letters, per second (from each stream's
  entries-added counter, so nothing is missed between two refreshes);
- every consumer group: lag, pending, consumers, oldest pending age;
- every worker replica: role, model version, last load time, heartbeat age,
  processed / expired / dead-lettered, last error;
- the newest dead letters grouped by stream and kind of reason.

Gateway-side status codes (4xx / 5xx) are not in Redis: Prometheus has them
(`pokewatch_gateway_requests_total`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis
from pydantic import ValidationError
from rich.console import Group
from rich.table import Table
from rich.text import Text

from contracts import keys
from contracts.messages import DeadLetter, Heartbeat
from workers.dead_letters import category
from workers.monitoring.exporter import entry_ms

DEAD_LETTERS_READ = 500
RATES = {
    "requests/s": keys.PREDICT_STREAM,
    "decisions/s": keys.SIGNALS_STREAM,
    "dead letters/s": keys.DEAD_LETTER_STREAM,
}


@dataclass
class Snapshot:
    at: float
    added: dict[str, int] = field(default_factory=dict)  # stream -> entries ever added
    groups: list[tuple[str, str, int | None, int, int, float]] = field(default_factory=list)
    replicas: list[Heartbeat] = field(default_factory=list)
    dead: Counter[tuple[str, str]] = field(default_factory=Counter)


def read(client: redis.Redis) -> Snapshot:
    """One look at the streams, groups, heartbeats and newest dead letters."""
    snap = Snapshot(at=time.time())
    now_ms = snap.at * 1000
    for stream in keys.STREAMS:
        if not client.exists(stream):
            continue
        info: dict[str, Any] = client.xinfo_stream(stream)
        snap.added[stream] = int(info.get("entries-added", info.get("length", 0)))
        for g in client.xinfo_groups(stream):
            name = g["name"].decode() if isinstance(g["name"], bytes) else str(g["name"])
            oldest = 0.0
            if g["pending"]:
                summary = client.xpending(stream, name)
                if summary.get("min"):
                    oldest = max(0.0, (now_ms - entry_ms(summary["min"])) / 1000)
            snap.groups.append((stream, name, g.get("lag"), g["pending"], g["consumers"], oldest))
    for raw in client.hgetall(keys.REPLICAS_HASH).values():
        try:
            snap.replicas.append(Heartbeat.model_validate_json(raw))
        except ValidationError:
            continue
    letters: Any = client.xrevrange(keys.DEAD_LETTER_STREAM, count=DEAD_LETTERS_READ)
    for _, fields in letters:
        try:
            letter = DeadLetter.model_validate_json(fields[keys.PAYLOAD_FIELD.encode()])
        except (ValidationError, KeyError):
            continue
        snap.dead[(letter.source_stream, category(letter.reason))] += 1
    return snap


def render(cur: Snapshot, prev: Snapshot | None, source: str) -> Group:
    """The frame for a snapshot (rates need the previous one)."""
    title = Text(f"PokeWatch top  {source}  {time.strftime('%H:%M:%S', time.localtime(cur.at))}", style="bold")
    rates = Table(box=None, show_header=True, header_style="bold")
    for label in RATES:
        rates.add_column(label, justify="right")
    values = []
    for stream in RATES.values():
        if prev is None or cur.at <= prev.at:
            values.append("-")
        else:
            delta = cur.added.get(stream, 0) - prev.added.get(stream, 0)
            values.append(f"{max(delta, 0) / (cur.at - prev.at):,.1f}")
    rates.add_row(*values)

    groups = Table(title="consumer groups", title_justify="left", header_style="bold")
    for name in ("stream", "group", "lag", "pending", "consumers", "oldest pending s"):
        groups.add_column(name, justify="left" if name in ("stream", "group") else "right")
    for stream, group, lag, pending, consumers, oldest in sorted(cur.groups):
        warn = "red" if (lag or 0) > 1000 or oldest > 30 else ""
        groups.add_row(
            stream,
            group,
            "?" if lag is None else f"{lag:,}",
            f"{pending:,}",
            str(consumers),
            f"{oldest:.1f}",
            style=warn,
        )

    replicas = Table(title="replicas", title_justify="left", header_style="bold")
    for name in ("replica", "role", "version", "load s", "heartbeat s", "processed", "expired", "dead", "last error"):
        replicas.add_column(
            name, justify="right" if name in ("load s", "heartbeat s", "processed", "expired", "dead") else "left"
        )
    for b in sorted(cur.replicas, key=lambda b: (b.role, b.replica_id)):
        age = cur.at - b.last_seen
        replicas.add_row(
            b.replica_id,
            b.role,
            b.model_version or "-",
            "-" if b.last_load_s is None else f"{b.last_load_s:.1f}",
            f"{age:.1f}",
            f"{b.processed:,}",
            f"{b.expired:,}",
            f"{b.dead_lettered:,}",
            (b.last_error or "")[:60],
            style="red" if age > 10 else "",
        )

    dead = Table(title=f"newest {DEAD_LETTERS_READ} dead letters by reason", title_justify="left", header_style="bold")
    for name in ("stream", "reason", "count"):
        dead.add_column(name, justify="right" if name == "count" else "left")
    for (stream, reason), n in cur.dead.most_common():
        dead.add_row(stream, reason, f"{n:,}")
    if not cur.dead:
        dead.add_row("-", "none", "0")
    return Group(title, rates, groups, replicas, dead, Text("Ctrl-C to quit", style="dim"))
