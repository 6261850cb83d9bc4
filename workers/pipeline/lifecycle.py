"""The model lifecycle, judged on the prices that really followed.

    candidate --gate--> challenger --rule--> champion --rule--> previous champion
        (backtest)        (shadow)     (realized)     (rollback)

- A candidate that passes the backtest gate (workers.pipeline.register)
  while a champion serves becomes the `challenger` (MLflow alias) when the
  slot is free. Challenger replicas (workers.serving.challenger) price every
  request users send, in their own consumer group, and write what they would
  have answered to `pokewatch:shadow-quotes`; users only ever get the
  champion's answer.
- Every pipeline run, `judge` records what each live version (champion,
  challenger, previous champion) forecasts from each card's newest feature
  row (the ledger, one file per day), adds the challenger's shadow quotes,
  joins all of them with the prices that have arrived since, and scores each
  version: realized MAPE, interval coverage, signal hit rate.
- The rule (`decide`) promotes the challenger only when it beat the champion
  on at least `challenger_dates` independent forecast dates, with the lower
  end of the 90% card-resampled interval of its relative MAPE improvement
  above zero, and no slice (price band, set) worse beyond its own noise. It
  rolls the champion back to the previous champion by the same rule the
  other way round, or when the champion's replicas failed to load it. It
  retires a challenger that is worse beyond noise, or has not won after
  `challenger_max_dates` dates.
- Every decision is recorded: MLflow version tags, a `ModelDecision` event on
  `pokewatch:model-events`, the run's record and `pokewatch:lifecycle` (the
  model page, the metrics). With `POKEWATCH_AUTO_PROMOTE=false` nothing
  moves by itself: the decision is recorded and a person applies it
  (`pokewatch model publish` / `rollback` / `challenger`).

Why a forecast is honest: a version's forecast from a date's feature row
uses prices up to that date only, and only dates from the version's own
registration run on are scored, when its training could not have seen the
outcome. Independent dates: forecasts `horizon` or more days apart, so no two
counted outcomes overlap. Why the slice margin is the slice's own noise and
not a fixed number: slices are small and their size differs from feed to
feed; a fixed margin would be a setting fitted to one feed. A slice blocks
the promotion only when the challenger is worse there beyond its 90%
interval, with at least `MIN_SLICE_CARDS` cards in it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contracts import keys
from contracts.history import day_number
from contracts.messages import ModelDecision, ModelLoadFailed, ShadowQuotes
from workers import model_events, registry
from workers.config import PipelineSettings
from workers.pipeline.metrics import ape_of_returns, card_bootstrap_improvement
from workers.pipeline.monitor import latest_forecasts, outcomes
from workers.pipeline.storage import atomic_write_parquet

logger = logging.getLogger(__name__)

LEDGER = "lifecycle"
MIN_SLICE_CARDS = 10
N_BOOT = 500
HISTORY_POINTS = 400
LEDGER_COLUMNS = ["version", "card_id", "date", "ret", "low", "high", "way", "source"]


# ---------------------------------------------------------------- the ledger of forecasts


def ledger_dir(settings: PipelineSettings) -> Path:
    return Path(settings.data_dir) / LEDGER


def version_forecasts(model: Any, latest: pd.DataFrame, version: str, settings: PipelineSettings) -> pd.DataFrame:
    """A version's forecast from each card's newest feature row, as the ledger keeps it.

    The interval is widened to contain the fair price, as the served state's is
    (workers.priced), so the pipeline's rows and the shadow quotes score alike."""
    f = latest_forecasts(latest, model, settings.rule, settings.trade_fee)
    f["low"] = np.minimum(f["low"], f["fair"])
    f["high"] = np.maximum(f["high"], f["fair"])
    f["version"] = version
    f["source"] = "pipeline"
    return f[LEDGER_COLUMNS]


def shadow_rows(entries: list[tuple[Any, dict[bytes, bytes]]]) -> pd.DataFrame:
    """The challenger's answers read from `pokewatch:shadow-quotes`, as ledger rows."""
    rows: list[tuple[Any, ...]] = []
    for _, fields in entries:
        try:
            shadow = ShadowQuotes.model_validate_json(fields.get(keys.PAYLOAD_FIELD.encode(), b""))
        except ValueError:
            continue  # not ours to judge; the stream is written by challenger replicas only
        for result, signal in zip(shadow.results, shadow.signals, strict=False):
            if getattr(result, "kind", "") != "quote":
                continue
            m = result.market_price
            way = {"BUY": 1.0, "SELL": -1.0}.get(signal or "", 0.0)
            rows.append(
                (
                    shadow.model_version,
                    result.card_id,
                    pd.Timestamp(result.date),
                    float(np.log(result.forecast_price / m)),
                    float(np.log(result.fair_price_low / m)),
                    float(np.log(result.fair_price_high / m)),
                    way,
                    "shadow",
                )
            )
    return pd.DataFrame(rows, columns=LEDGER_COLUMNS)


def read_shadow(client: Any, settings: PipelineSettings, page: int = 10_000) -> pd.DataFrame:
    """The shadow quotes added since the last run, written to the ledger; the cursor moves past them."""
    directory = ledger_dir(settings)
    cursor_file = directory / "shadow-cursor"
    cursor = cursor_file.read_text().strip() if cursor_file.exists() else "0-0"
    frames = []
    while True:
        entries = client.xrange(keys.SHADOW_STREAM, min=f"({cursor}", count=page)
        if not entries:
            break
        frames.append(shadow_rows(entries))
        last = entries[-1][0]
        cursor = last.decode() if isinstance(last, bytes) else str(last)
        if len(entries) < page:
            break
    if not frames:
        return pd.DataFrame(columns=LEDGER_COLUMNS)
    rows = pd.concat(frames, ignore_index=True).drop_duplicates(["version", "card_id", "date"])
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(rows, directory / f"shadow-{cursor.replace('-', '_')}.parquet")
    cursor_file.write_text(cursor)
    return rows


def read_ledger(settings: PipelineSettings, since: pd.Timestamp) -> pd.DataFrame:
    """Every recorded forecast dated `since` or later: the pipeline's first, then the shadow quotes.

    A (version, card, date) forecast counts once, and only from the version's first
    pipeline date on (see the module docstring)."""
    directory = ledger_dir(settings)
    files = sorted(directory.glob("forecasts-*.parquet")) + sorted(directory.glob("shadow-*.parquet"))
    if not files:
        return pd.DataFrame(columns=LEDGER_COLUMNS)
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    frame["date"] = pd.to_datetime(frame["date"])
    frame["version"] = frame["version"].astype(str)
    frame = frame[frame["date"] >= since].drop_duplicates(["version", "card_id", "date"], keep="first")
    first = frame[frame["source"] == "pipeline"].groupby("version")["date"].min()
    start = frame["version"].map(first)
    return frame[start.notna() & (frame["date"] >= start)].reset_index(drop=True)


# ---------------------------------------------------------------- scoring


def score(ledger: pd.DataFrame, prices: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Ledger rows whose outcome has arrived, with `realized`, `ape`, `inside`, `hit` and the price."""
    if ledger.empty:
        return ledger.assign(realized=[], ape=[], inside=[], hit=[], market_price=[], set_name=[])
    out = outcomes(ledger, prices, horizon)
    y = out["realized"].to_numpy()
    out["ape"] = ape_of_returns(out["ret"].to_numpy(), y)
    out["inside"] = (y >= out["low"].to_numpy()) & (y <= out["high"].to_numpy())
    way = out["way"].to_numpy()
    out["hit"] = np.where(way != 0, np.sign(y) == way, np.nan)
    return out


def per_date(scored: pd.DataFrame) -> list[dict[str, Any]]:
    """One point per version and forecast date: realized MAPE (%), coverage, hit rate, outcomes."""
    if scored.empty:
        return []
    g = scored.groupby(["version", "date"])
    table = pd.DataFrame(
        {
            "mape": 100 * g["ape"].mean(),
            "coverage": g["inside"].mean(),
            "hit_rate": g["hit"].mean(),
            "signals": g["hit"].count(),
            "n": g["ape"].size(),
        }
    ).reset_index()
    table["date"] = table["date"].dt.strftime("%Y-%m-%d")
    return [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
        for row in table.to_dict("records")
    ]


def summary(scored: pd.DataFrame, version: str) -> dict[str, Any]:
    mine = scored[scored["version"] == version]
    if mine.empty:
        return {"n": 0, "dates": 0}
    hits = mine["hit"].dropna()
    return {
        "n": len(mine),
        "dates": int(mine["date"].nunique()),
        "mape": round(100 * float(mine["ape"].mean()), 4),
        "coverage": round(float(mine["inside"].mean()), 4),
        "hit_rate": round(float(hits.mean()), 4) if len(hits) else None,
        "signals": len(hits),
    }


def independent_dates(dates: pd.Series, horizon: int) -> list[pd.Timestamp]:
    """Forecast dates at least `horizon` days apart, oldest first: their outcomes do not overlap."""
    kept: list[pd.Timestamp] = []
    for d in sorted(pd.to_datetime(pd.Series(dates).unique())):
        if not kept or (d - kept[-1]).days >= horizon:
            kept.append(d)
    return kept


@dataclass
class Comparison:
    """`new` against `old` on the same cards and dates; improvement = 1 - MAPE_new / MAPE_old (%)."""

    new: str
    old: str
    dates: int = 0
    n: int = 0
    mape_new: float | None = None
    mape_old: float | None = None
    improvement: float | None = None
    low: float | None = None
    high: float | None = None
    slices: list[dict[str, Any]] = field(default_factory=list)

    @property
    def regressed(self) -> list[dict[str, Any]]:
        return [s for s in self.slices if s["regressed"]]

    def text(self, needed: int) -> str:
        if self.improvement is None:
            return f"0 of {needed} dates: no outcome of {self.new} vs {self.old} yet"
        return (
            f"{min(self.dates, needed)} of {needed} dates, difference {self.improvement:+.1f}% "
            f"[{self.low:+.1f}, {self.high:+.1f}]"
        )


def compare(
    scored: pd.DataFrame, new: str, old: str, horizon: int, n_boot: int = N_BOOT, last: int | None = None
) -> Comparison:
    """The paired comparison of two versions' realized errors on their common (card, date) forecasts
    (only the `last` independent dates, if given: the rollback watches the recent ones)."""
    a = scored[scored["version"] == new].set_index(["card_id", "date"])
    b = scored[scored["version"] == old].set_index(["card_id", "date"])
    both = a[["ape", "market_price"]].join(b[["ape"]], rsuffix="_old", how="inner").reset_index()
    if "set_name" in a.columns:
        both = both.merge(a["set_name"].reset_index(), on=["card_id", "date"], how="left")
    dates = independent_dates(both["date"], horizon) if len(both) else []
    if last is not None:
        dates = dates[-last:]
    both = both[both["date"].isin(dates)]
    out = Comparison(new, old, dates=len(dates), n=len(both))
    if both.empty:
        return out
    point, low, high = card_bootstrap_improvement(
        both["card_id"].to_numpy(), both["ape"].to_numpy(), both["ape_old"].to_numpy(), n_boot=n_boot
    )
    out.mape_new = round(100 * float(both["ape"].mean()), 4)
    out.mape_old = round(100 * float(both["ape_old"].mean()), 4)
    out.improvement, out.low, out.high = (round(100 * x, 3) for x in (point, low, high))
    out.slices = slices(both, n_boot)
    return out


def slices(both: pd.DataFrame, n_boot: int) -> list[dict[str, Any]]:
    """The improvement in each price band (thirds of the compared rows' prices: any currency) and
    each set, with its interval; `regressed` when the new version is worse there beyond noise."""
    bands = pd.qcut(both["market_price"].rank(method="first"), 3, labels=["low", "middle", "high"])
    groups: list[tuple[str, pd.Series]] = [(f"price band {b}", bands == b) for b in ("low", "middle", "high")]
    if "set_name" in both.columns:
        groups += [(f"set {s}", both["set_name"] == s) for s in both["set_name"].dropna().unique()]
    out = []
    for name, mask in groups:
        part = both[mask.to_numpy()]
        cards = part["card_id"].nunique()
        if cards < MIN_SLICE_CARDS:
            continue
        point, low, high = card_bootstrap_improvement(
            part["card_id"].to_numpy(), part["ape"].to_numpy(), part["ape_old"].to_numpy(), n_boot=n_boot
        )
        out.append(
            {
                "slice": name,
                "cards": int(cards),
                "improvement": round(100 * point, 3),
                "low": round(100 * low, 3),
                "high": round(100 * high, 3),
                "regressed": bool(high < 0),
            }
        )
    return out


# ---------------------------------------------------------------- the rule


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


# ---------------------------------------------------------------- one run


def judge(
    settings: PipelineSettings,
    source: str,
    day: date,
    client: Any | None,
    apply: bool | None = None,
    record: bool = True,
) -> dict[str, Any]:
    """Record today's forecasts, score every live version, apply the rule; what the run records.

    Args:
        client: a sync redis client (shadow quotes, events, `pokewatch:lifecycle`); None scores
            the pipeline's forecasts only and records nothing in Redis.
        apply: move aliases when the rule says so (default: `auto_promote`).
        record: write the day's forecasts, the scores and the decision (MLflow, Redis); false
            only looks (`pokewatch model compare`).
    """
    from workers.pipeline import run as steps

    apply = settings.auto_promote if apply is None else apply
    champion = registry.champion_version(settings)
    challenger = registry.challenger_version(settings)
    previous = registry.previous_champion_version(settings) if champion else None
    live = {v for v in (champion, challenger, previous) if v}
    latest, prices = newest_rows(settings, source, settings.lifecycle_days)
    newest = pd.to_datetime(latest["date"]).max() if not latest.empty else pd.Timestamp(day)
    since = newest - pd.Timedelta(days=settings.lifecycle_days)
    if record and live and not latest.empty:
        rows = [version_forecasts(load(settings, v), latest, v, settings) for v in sorted(live, key=int)]
        directory = ledger_dir(settings)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_parquet(pd.concat(rows, ignore_index=True), directory / f"forecasts-{day.isoformat()}.parquet")
    if client is not None:
        read_shadow(client, settings)
    horizon = settings.horizon
    scored = score(read_ledger(settings, since), prices, horizon)
    vs_champion = compare(scored, challenger, champion, horizon) if challenger and champion else None
    # The champion against the previous one on the most recent dates: decay shows there first.
    recent = settings.challenger_dates
    vs_previous = compare(scored, champion, previous, horizon, last=recent) if champion and previous else None
    failed = load_failure(client, settings, champion) if client is not None and champion else None
    decision = decide(
        champion,
        challenger,
        previous,
        vs_champion,
        vs_previous,
        settings.challenger_dates,
        settings.challenger_max_dates,
        failed,
    )
    applied = apply and decision.action in ("promote", "rollback", "retire")
    if applied:
        act(settings, client, decision, champion)
    elif decision.action in ("promote", "rollback", "retire"):
        decision.reason += " (not applied: POKEWATCH_AUTO_PROMOTE=false, a person decides)"
    logger.info("lifecycle: %s %s: %s", decision.action, decision.version or "", decision.reason)
    versions = {v: {"role": role, **summary(scored, v)} for v, role in roles(champion, challenger, previous).items()}
    record_ = {
        "day": day.isoformat(),
        "updated_at": time.time(),
        "champion": registry.champion_version(settings),
        "challenger": registry.challenger_version(settings),
        "previous": previous,
        "needed_dates": settings.challenger_dates,
        "auto_promote": settings.auto_promote,
        "decision": {**asdict(decision), "applied": applied, "champion": champion},
        "rule_state": decision.rule_state or (vs_champion.text(settings.challenger_dates) if vs_champion else ""),
        "vs_champion": asdict(vs_champion) if vs_champion else None,
        "vs_previous": asdict(vs_previous) if vs_previous else None,
        "versions": versions,
        "history": per_date(scored[scored["version"].isin(list(live))])[-HISTORY_POINTS:] if live else [],
    }
    if not record:
        return steps.json_safe(record_)
    log_mlflow(settings, day, versions, decision, applied)
    if client is not None:
        client.set(keys.LIFECYCLE_KEY, json.dumps(steps.json_safe(record_), default=str))
        if decision.action != "none":
            event = ModelDecision(
                model_name=settings.model_name,
                action=decision.action,  # type: ignore[arg-type]
                version=decision.version,
                champion=champion,
                reason=decision.reason[:2000],
                numbers={k: v for k, v in decision.numbers.items() if isinstance(v, int | float) or v is None},
                applied=applied,
            )
            model_events.publish_event(client, event)
    return steps.json_safe(record_)


def roles(champion: str | None, challenger: str | None, previous: str | None) -> dict[str, str]:
    out = {}
    for version, role in ((previous, "previous"), (challenger, "challenger"), (champion, "champion")):
        if version:
            out[version] = role
    return out


def newest_rows(settings: PipelineSettings, source: str, days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each card's newest feature row, and the prices of the last `days` days, partition by partition."""
    from workers.pipeline import run as steps
    from workers.pipeline.partitions import partitions

    try:
        count = steps.manifest(settings, source)["partitions"]
    except FileNotFoundError:
        return pd.DataFrame(), pd.DataFrame(columns=["card_id", "date", "market_price"])
    latest, prices = [], []
    for part in partitions(count):
        table = steps.load_features(settings, source, part=part)
        latest.append(table.groupby("card_id", sort=False).tail(1))
        cols = [c for c in ("card_id", "date", "market_price", "set_name") if c in table.columns]
        dates = pd.to_datetime(table["date"])
        prices.append(table.loc[dates >= dates.max() - pd.Timedelta(days=days), cols])
    return pd.concat(latest, ignore_index=True), pd.concat(prices, ignore_index=True)


_MODELS: dict[tuple[str, str], Any] = {}


def load(settings: PipelineSettings, version: str) -> Any:
    """A version's model, loaded once per process."""
    key = (settings.tracking_uri, version)
    if key not in _MODELS:
        _MODELS[key] = registry.load_model(settings, version)
    return _MODELS[key]


def load_failure(client: Any, settings: PipelineSettings, champion: str) -> str | None:
    """Why the champion's replicas could not load it, if every replica that tried failed.

    A replica that failed may have been unlucky (a full disk); the champion is
    failing only when failures were announced for it and no live model replica serves it."""
    from contracts.messages import Heartbeat

    failures = []
    for _, fields in client.xrevrange(keys.MODEL_EVENTS_STREAM, count=1000):
        try:
            event = model_events.parse(fields.get(keys.PAYLOAD_FIELD.encode(), b""))
        except ValueError:
            continue
        if isinstance(event, ModelLoadFailed) and event.version == champion:
            failures.append(event.error)
    if not failures:
        return None
    now = time.time()
    beats = [Heartbeat.model_validate_json(v) for v in client.hvals(keys.REPLICAS_HASH)]
    serving = [b for b in beats if b.role == "model" and b.model_version == champion and now - b.last_seen < 30]
    return None if serving else f"{len(failures)} load failure(s), no replica serves it; last: {failures[0][:300]}"


def act(settings: PipelineSettings, client: Any | None, decision: Decision, champion: str | None) -> None:
    """Move the aliases as the decision says, tag the versions, announce to the replicas."""
    version = str(decision.version)
    stamp = {"lifecycle.reason": decision.reason[:5000], "lifecycle.decided_at": round(time.time(), 3)}
    if decision.action == "promote":
        registry.set_champion(settings, version)
        clear_challenger(settings, client)
        registry.tag_version(settings, version, {"lifecycle.promoted": True, **stamp})
        if client is not None:
            model_events.publish_version(settings, client, version)
    elif decision.action == "rollback":
        registry.set_champion(settings, version)
        if champion:
            registry.tag_version(settings, champion, {"lifecycle.rolled_back": True, **stamp})
        if client is not None:
            model_events.publish_version(settings, client, version, rollback=True)
    elif decision.action == "retire":
        clear_challenger(settings, client)
        registry.tag_version(settings, version, {"lifecycle.retired": True, **stamp})
    if decision.action in ("promote", "retire"):
        fill_challenger(settings, client)


def fill_challenger(settings: PipelineSettings, client: Any | None) -> str | None:
    """Make the newest version waiting for the slot the challenger, if the slot is free."""
    if registry.challenger_version(settings) is not None:
        return None
    champion = registry.champion_version(settings)
    waiting = [
        str(v.version)
        for v in registry.versions(settings)
        if v.tags.get("lifecycle.waiting") == "True" and (champion is None or int(v.version) > int(champion))
    ]
    if not waiting:
        return None
    return make_challenger(settings, client, waiting[0])


def make_challenger(settings: PipelineSettings, client: Any | None, version: str) -> str:
    """Point the `challenger` alias at `version` and tell the challenger replicas to load it.

    The `shadow` group is created at the request stream's end: its lag is what a
    challenger Deployment scales on, and old requests were answered already."""
    registry.set_challenger(settings, version)
    if client is not None:
        try:
            client.xgroup_create(keys.PREDICT_STREAM, keys.SHADOW_GROUP, id="$", mkstream=True)
        except Exception as exc:  # BUSYGROUP: it exists
            if "BUSYGROUP" not in str(exc):
                raise
    registry.tag_version(settings, version, {"lifecycle.waiting": False, "lifecycle.challenger_since": time.time()})
    if client is not None:
        model_events.publish_version(settings, client, version, alias="challenger")
    return version


def clear_challenger(settings: PipelineSettings, client: Any | None) -> None:
    """No challenger: the alias goes, and the `shadow` group with it, so nothing lags behind."""
    registry.clear_challenger(settings)
    if client is not None:
        client.xgroup_destroy(keys.PREDICT_STREAM, keys.SHADOW_GROUP)


def log_mlflow(
    settings: PipelineSettings, day: date, versions: dict[str, dict[str, Any]], decision: Decision, applied: bool
) -> None:
    """Each live version's realized scores as a time series on its own run (step = the day), and the
    decision as tags on the version it concerns."""
    mlc = registry.client(settings)
    step = day_number(day)
    for version, figures in versions.items():
        run_id = registry.version_ref(settings, version).run_id
        for key in ("mape", "coverage", "hit_rate", "dates", "n"):
            value = figures.get(key)
            if isinstance(value, int | float) and np.isfinite(value):
                mlc.log_metric(run_id, f"realized.{key}", float(value), step=step)
    if decision.version and decision.action != "none":
        registry.tag_version(
            settings,
            decision.version,
            {
                "lifecycle.last_action": decision.action,
                "lifecycle.last_reason": decision.reason[:5000],
                "lifecycle.applied": applied,
                **{f"lifecycle.{k}": v for k, v in decision.numbers.items() if v is not None},
            },
        )
