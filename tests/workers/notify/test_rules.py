"""Which watchlist items an event fires: signal changes, price crossings, deviation thresholds."""

from __future__ import annotations

from contracts.messages import PriceUpdated, SignalChanged, SignalDecided
from contracts.watchlists import StoredWatchlist
from workers.notify.rules import WatchIndex, change_alerts, update_alerts

ITEMS = [
    {"card_id": "c1", "rule": "signal", "signal": "BUY"},
    {"card_id": "c1", "rule": "signal", "signal": "ANY"},
    {"card_id": "c1", "rule": "price_above", "target": 11},
    {"card_id": "c1", "rule": "price_below", "target": 9},
    {"card_id": "c1", "rule": "deviation", "deviation_pct": 15},
]
INDEX = WatchIndex.of(
    [StoredWatchlist(id="w1", owner="key1", name="mine", items=ITEMS, created_at=0.0)]  # type: ignore[arg-type]
)


def decision(market: float, fair: float = 10.0, signal: str = "HOLD") -> SignalDecided:
    return SignalDecided(
        request_id="r",
        card_id="c1",
        date="2026-01-02",  # type: ignore[arg-type]
        market_price=market,
        fair_price=fair,
        fair_price_low=fair,
        fair_price_high=fair,
        deviation_pct=round((market / fair - 1) * 100, 3),
        signal=signal,  # type: ignore[arg-type]
        model_version="1",
        served_by="m",
    )


def update(before: float | None, now: float, fair: float = 10.0) -> PriceUpdated:
    was = None if before is None else round((before / fair - 1) * 100, 3)
    return PriceUpdated(
        card_id="c1", previous_market_price=before, previous_deviation_pct=was, decision=decision(now, fair)
    )


def fired(event: PriceUpdated | SignalChanged) -> list[str]:
    run = change_alerts if isinstance(event, SignalChanged) else update_alerts
    return [a.item.rule for a in run(event, INDEX, "src")]  # type: ignore[arg-type]


def test_a_signal_item_fires_on_its_signal_and_any_on_every_change() -> None:
    buy = SignalChanged(card_id="c1", previous_signal="HOLD", signal="BUY", decision=decision(8, signal="BUY"))
    sell = SignalChanged(card_id="c1", previous_signal="BUY", signal="SELL", decision=decision(12, signal="SELL"))
    assert fired(buy) == ["signal", "signal"]
    assert fired(sell) == ["signal"]
    (alert,) = [a for a in change_alerts(sell, INDEX, "src")]
    assert alert.trigger == "signal BUY -> SELL" and alert.owner == "key1" and alert.watchlist_id == "w1"


def test_a_price_fires_when_it_crosses_and_not_while_it_stays_past() -> None:
    assert fired(update(10, 11.5)) == ["price_above", "deviation"]
    assert fired(update(11.5, 12)) == [], "still above, still over: no repeat"
    assert fired(update(12, 10)) == []
    assert fired(update(10, 8.9)) == ["price_below"]
    assert fired(update(None, 12)) == ["price_above", "deviation"], "first seen past the target"
    assert fired(update(None, 10)) == []


def test_the_same_event_and_item_always_make_the_same_alert_id() -> None:
    one = update_alerts(update(10, 12), INDEX, "pokewatch:price-updates c1 x")
    again = update_alerts(update(10, 12), INDEX, "pokewatch:price-updates c1 x")
    other = update_alerts(update(10, 12), INDEX, "pokewatch:price-updates c1 y")
    assert [a.alert_id for a in one] == [a.alert_id for a in again]
    assert not {a.alert_id for a in one} & {a.alert_id for a in other}
    assert len({a.alert_id for a in one}) == 2, "one id per item"
