"""The tracked-cards config (cards.yaml): which sets and cards PokeWatch follows.

(The served card list the gateway browses is the *catalog*: workers.serving.catalog.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml


class TrackedCardsError(Exception):
    """cards.yaml is missing or malformed."""


@dataclass(frozen=True)
class TrackedCard:
    card_id: str
    name: str = ""
    set_name: str = ""


@dataclass(frozen=True)
class TrackedCards:
    """Tracked sets (every card of the set) and individually tracked cards."""

    sets: tuple[str, ...] = ()
    cards: tuple[TrackedCard, ...] = field(default_factory=tuple)

    @property
    def card_ids(self) -> set[str]:
        return {c.card_id for c in self.cards}


def load_tracked_cards(path: Path | str) -> TrackedCards:
    """Read cards.yaml.

    Args:
        path: the YAML file; see the repository's cards.yaml for the format.

    Returns:
        The tracked sets and cards.

    Raises:
        TrackedCardsError: the file is missing or does not have the expected shape.
    """
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise TrackedCardsError(f"tracked-cards file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise TrackedCardsError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise TrackedCardsError(f"{path}: expected a mapping with 'sets' and/or 'cards'")
    sets = doc.get("sets") or []
    cards = doc.get("cards") or []
    if not isinstance(sets, list) or not isinstance(cards, list):
        raise TrackedCardsError(f"{path}: 'sets' and 'cards' must be lists")
    tracked = []
    for i, entry in enumerate(cards):
        if not isinstance(entry, dict) or not entry.get("card_id"):
            raise TrackedCardsError(f"{path}: cards[{i}] needs a card_id")
        tracked.append(TrackedCard(str(entry["card_id"]), str(entry.get("name", "")), str(entry.get("set", ""))))
    return TrackedCards(tuple(str(s) for s in sets), tuple(tracked))
