"""Signal changes and price updates: each card's last decision, and an event when it changes.

The decision workers keep every card's last decision (its date, signal, model
version, market price and deviation) in the `pokewatch:last-signal` hash. One
Lua script compares and sets it and appends

- a `SignalChanged` to `pokewatch:signal-changes` for each card whose signal changed;
- a `PriceUpdated` to `pokewatch:price-updates` for each card whose date, market
  price or model version changed (a thousand requests about the same price
  make one update), with the previous price and deviation,

so any number of decision workers record each change exactly once; it runs in
the same MULTI/EXEC as the worker's other outputs and acks, so a change is
written with the decision or not at all.

- A decision about a date older than the card's last one (a quote for a past
  date) changes nothing.
- A card seen for the first time with a BUY or SELL is a change from nothing
  (`previous_signal` null); with a HOLD it is only recorded.
- The same signal from another version or a later date updates the record
  without an event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from redis.asyncio.client import Pipeline

from contracts import keys
from contracts.messages import SignalDecided

# KEYS: the last-signal hash, the changes stream, the price-updates stream.
# ARGV: the streams' MAXLEN, then seven values a card: id, date (ISO, so strings
# order as dates), signal, model version, market price and deviation (JSON
# numbers, kept as text), the decision's JSON. Events are assembled around the
# decision's JSON so its numbers stay exactly as the worker wrote them.
CHANGES_LUA = """
local function json(value)
  if value == nil then return 'null' end
  return cjson.encode(value)
end
local changed = 0
for i = 2, #ARGV, 7 do
  local card, day, signal, version = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local market, dev, decision = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local raw = redis.call('HGET', KEYS[1], card)
  local prev = nil
  if raw then prev = cjson.decode(raw) end
  if prev == nil or day >= prev.d then
    local before = prev or {}
    local moved = prev == nil or prev.d ~= day or prev.v ~= version or prev.m ~= market
    if moved or prev.s ~= signal or prev.x ~= dev then
      redis.call('HSET', KEYS[1], card, cjson.encode({d = day, s = signal, v = version, m = market, x = dev}))
    end
    if (prev == nil and signal ~= 'HOLD') or (prev ~= nil and prev.s ~= signal) then
      local event = '{"schema_version":1,"kind":"signal_change","card_id":' .. json(card)
        .. ',"previous_signal":' .. json(before.s) .. ',"previous_date":' .. json(before.d)
        .. ',"previous_model_version":' .. json(before.v) .. ',"signal":' .. json(signal)
        .. ',"decision":' .. decision .. '}'
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'payload', event)
      changed = changed + 1
    end
    if moved then
      local update = '{"schema_version":1,"kind":"price_update","card_id":' .. json(card)
        .. ',"previous_date":' .. json(before.d) .. ',"previous_market_price":' .. (before.m or 'null')
        .. ',"previous_deviation_pct":' .. (before.x or 'null')
        .. ',"previous_model_version":' .. json(before.v) .. ',"decision":' .. decision .. '}'
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', 'payload', update)
    end
  end
end
return changed
"""


class ChangeRecorder:
    """Queues the compare-and-set of a batch of decisions on a worker's output pipeline."""

    def __init__(self, redis: Any, maxlen: int) -> None:
        self.script = redis.register_script(CHANGES_LUA)
        self.maxlen = maxlen

    def record(self, pipe: Pipeline, decided: Sequence[tuple[SignalDecided, str]]) -> None:
        """Queue the script for `decided` (each decision with its JSON) on `pipe`.

        The pipeline loads the script on the server before its transaction if needed.
        """
        if not decided:
            return
        args: list[str | int] = [self.maxlen]
        for d, part in decided:
            market, dev = json.dumps(float(d.market_price)), json.dumps(float(d.deviation_pct))
            args += [d.card_id, d.date.isoformat(), d.signal, d.model_version, market, dev, part]
        pipe.scripts.add(self.script)
        streams = (keys.SIGNAL_CHANGES_STREAM, keys.PRICE_UPDATES_STREAM)
        pipe.evalsha(self.script.sha, 3, keys.LAST_SIGNAL_HASH, *streams, *args)
