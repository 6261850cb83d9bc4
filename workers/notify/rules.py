"""Which watchlist items an event fires, as `Alert`s (the rules are contracts.watchlists').

Pure functions over an in-memory index of every watchlist (card id -> the
items that follow it), so the notifier matches a batch without a Redis call
per event.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from contracts.messages import PriceUpdated, SignalChanged
from contracts.watchlists import Alert, DeviationItem, PriceItem, SignalItem, StoredWatchlist, WatchItem


@dataclass(frozen=True)
class Watch:
    """One item of one watchlist."""

    watchlist: StoredWatchlist
    index: int
    item: WatchItem


@dataclass
class WatchIndex:
    """Every watchlist's items by card id."""

    by_card: dict[str, list[Watch]] = field(default_factory=dict)

    @classmethod
    def of(cls, watchlists: Iterable[StoredWatchlist]) -> WatchIndex:
        by_card: dict[str, list[Watch]] = defaultdict(list)
        for w in watchlists:
            for i, item in enumerate(w.items):
                by_card[item.card_id].append(Watch(w, i, item))
        return cls(dict(by_card))

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_card.values())


def alert_id(source: str, watch: Watch) -> str:
    """The same id for the same event and item, however often it is matched or delivered."""
    key = f"{source}|{watch.watchlist.owner}|{watch.watchlist.id}|{watch.index}"
    return "alert_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _alert(watch: Watch, event: SignalChanged | PriceUpdated, source: str, trigger: str) -> Alert:
    previous_price = event.previous_market_price if isinstance(event, PriceUpdated) else None
    return Alert(
        alert_id=alert_id(source, watch),
        owner=watch.watchlist.owner,
        watchlist_id=watch.watchlist.id,
        watchlist_name=watch.watchlist.name,
        item=watch.item,
        card_id=event.card_id,
        trigger=trigger,
        previous_signal=event.previous_signal if isinstance(event, SignalChanged) else None,
        previous_market_price=previous_price,
        decision=event.decision,
        source=source,
    )


def change_alerts(change: SignalChanged, index: WatchIndex, source: str) -> list[Alert]:
    """Signal items the change fires: its new signal, or any change (`ANY`)."""
    out = []
    for watch in index.by_card.get(change.card_id, ()):
        item = watch.item
        if isinstance(item, SignalItem) and item.signal in ("ANY", change.signal):
            trigger = f"signal {change.previous_signal or 'none'} -> {change.signal}"
            out.append(_alert(watch, change, source, trigger))
    return out


def update_alerts(update: PriceUpdated, index: WatchIndex, source: str) -> list[Alert]:
    """Price items whose target the market crossed, deviation items whose threshold it reached.

    A card priced for the first time (no previous price) fires every condition that holds.
    """
    out = []
    d = update.decision
    before, now = update.previous_market_price, d.market_price
    for watch in index.by_card.get(update.card_id, ()):
        item = watch.item
        trigger = None
        if isinstance(item, PriceItem) and item.rule == "price_above":
            if now >= item.target and (before is None or before < item.target):
                trigger = f"market {now:g} {d.currency or ''} crossed above {item.target:g}".replace("  ", " ")
        elif isinstance(item, PriceItem):
            if now <= item.target and (before is None or before > item.target):
                trigger = f"market {now:g} {d.currency or ''} crossed below {item.target:g}".replace("  ", " ")
        elif isinstance(item, DeviationItem):
            was = update.previous_deviation_pct
            if abs(d.deviation_pct) >= item.deviation_pct and (was is None or abs(was) < item.deviation_pct):
                side = "under" if d.deviation_pct < 0 else "over"
                trigger = f"market {abs(d.deviation_pct):.1f}% {side} fair (alert at {item.deviation_pct:g}%)"
        if trigger:
            out.append(_alert(watch, update, source, trigger))
    return out
