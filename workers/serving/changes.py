"""Signal changes: each card's last signal, and an event on `pokewatch:signal-changes` when it changes.

The decision workers keep every card's last signal (its date, signal and model
version) in the `pokewatch:last-signal` hash. One Lua script compares and
sets it and appends a `SignalChanged` for each card whose signal changed, so
any number of decision workers record each change exactly once; it runs in
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

from collections.abc import Sequence
from typing import Any

from redis.asyncio.client import Pipeline

from contracts import keys
from contracts.messages import SignalDecided

# KEYS: the last-signal hash, the changes stream. ARGV: the stream's MAXLEN, then
# five values a card: id, date (ISO, so strings order as dates), signal, model
# version, the decision's JSON. The event is assembled around the decision's
# JSON so its numbers stay exactly as the worker wrote them.
CHANGES_LUA = """
local function json(value)
  if value == nil then return 'null' end
  return cjson.encode(value)
end
local changed = 0
for i = 2, #ARGV, 5 do
  local card, day, signal, version = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local raw = redis.call('HGET', KEYS[1], card)
  local prev = nil
  if raw then prev = cjson.decode(raw) end
  if prev == nil or day >= prev.d then
    if prev == nil or prev.s ~= signal or prev.d ~= day or prev.v ~= version then
      redis.call('HSET', KEYS[1], card, cjson.encode({d = day, s = signal, v = version}))
    end
    if (prev == nil and signal ~= 'HOLD') or (prev ~= nil and prev.s ~= signal) then
      local before = prev or {}
      local event = '{"schema_version":1,"kind":"signal_change","card_id":' .. json(card)
        .. ',"previous_signal":' .. json(before.s) .. ',"previous_date":' .. json(before.d)
        .. ',"previous_model_version":' .. json(before.v) .. ',"signal":' .. json(signal)
        .. ',"decision":' .. ARGV[i + 4] .. '}'
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'payload', event)
      changed = changed + 1
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
        for decision, part in decided:
            args += [decision.card_id, decision.date.isoformat(), decision.signal, decision.model_version, part]
        pipe.scripts.add(self.script)
        pipe.evalsha(self.script.sha, 2, keys.LAST_SIGNAL_HASH, keys.SIGNAL_CHANGES_STREAM, *args)
