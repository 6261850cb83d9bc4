"""The promotion and rollback rule, alone and pure (see workers.pipeline.lifecycle for the whole story).

Promote the challenger when it beat the champion on at least `needed`
independent dates, the lower end of the 90% interval of its relative MAPE
improvement above zero, and no slice worse beyond its own noise. Retire it
when it is worse beyond noise, or has not won after `max_dates`. Roll the
champion back to the previous champion when it is worse than that one beyond
noise on its last `needed` dates, or when its replicas failed to load it.

Why the slice margin is the slice's own noise and not a fixed number: slices
are small and their sizes differ from feed to feed; a fixed margin would be a
setting fitted to one feed. A slice blocks the promotion only when the
challenger is worse there beyond its 90% interval, with at least
`MIN_SLICE_CARDS` cards in it (workers.pipeline.realized.slices).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workers.pipeline.realized import Comparison


@dataclass
class Decision:
    action: str  # promote, rollback, retire, hold, none
    version: str | None
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)
    rule_state: str = ""


def _numbers(c: Comparison) -> dict[str, Any]:
    return {
        "dates": c.dates,
        "n": c.n,
        "mape_new": c.mape_new,
        "mape_old": c.mape_old,
        "improvement": c.improvement,
        "low": c.low,
        "high": c.high,
    }


def decide(
    champion: str | None,
    challenger: str | None,
    previous: str | None,
    vs_champion: Comparison | None,
    vs_previous: Comparison | None,
    needed: int,
    max_dates: int,
    champion_failed: str | None = None,
) -> Decision:
    """What the lifecycle rule asks for (see the module docstring); pure, so it is tested alone.

    Args:
        vs_champion: challenger (new) against champion (old).
        vs_previous: champion (new) against the previous champion (old).
        champion_failed: why the champion's replicas could not load it, if they could not.
    """
    if champion is None:
        return Decision("none", None, "no champion yet")
    if previous is not None and champion_failed:
        return Decision("rollback", previous, f"champion {champion} failed to load: {champion_failed}")
    behind = vs_previous is not None and vs_previous.high is not None and vs_previous.high < 0
    if previous is not None and vs_previous is not None and vs_previous.dates >= needed and behind:
        return Decision(
            "rollback",
            previous,
            f"champion {champion} is worse than previous champion {previous} on realized prices: "
            f"{vs_previous.text(needed)}",
            _numbers(vs_previous),
        )
    if challenger is None or vs_champion is None:
        return Decision("none", None, "no challenger")
    state = vs_champion.text(needed)
    numbers = _numbers(vs_champion)
    if vs_champion.dates < needed:
        return Decision("hold", challenger, f"challenger {challenger}: {state}", numbers, state)
    worse = vs_champion.regressed
    if vs_champion.low is not None and vs_champion.low > 0 and not worse:
        why = f"challenger {challenger} beats champion {champion}: {state}"
        return Decision("promote", challenger, why, numbers, state)
    if vs_champion.high is not None and vs_champion.high < 0:
        return Decision(
            "retire", challenger, f"challenger {challenger} is worse than champion {champion}: {state}", numbers, state
        )
    if vs_champion.dates >= max_dates:
        return Decision(
            "retire", challenger, f"challenger {challenger} did not win in {max_dates} dates: {state}", numbers, state
        )
    why = f"; worse beyond noise in {', '.join(s['slice'] for s in worse)}" if worse else ": not beyond noise yet"
    return Decision("hold", challenger, f"challenger {challenger}: {state}{why}", numbers, state)
