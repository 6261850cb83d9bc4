"""Settings of the stream workers and of the batch pipeline, from the environment (prefix POKEWATCH_).

`WorkerSettings` is what a model or decision replica reads, `PipelineSettings`
what the pipeline (CLI, Airflow tasks) reads. Both share the registry's
location and the signal rule's thresholds, whose defaults are
`workers.signals.DEFAULT_RULE`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.settings import BrokerSettings
from workers.signals import DEFAULT_RULE, SignalRule

ENV = SettingsConfigDict(env_prefix="POKEWATCH_", extra="ignore")


class RegistrySettings(BaseSettings):
    """Where the data and the MLflow registry are."""

    model_config = ENV

    data_dir: Path = Field(
        default=Path(".pokewatch/data"), description="all pipeline files and the default MLflow store"
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "POKEWATCH_MLFLOW_TRACKING_URI"),
        description="MLflow tracking and registry; unset = `sqlite:///<data dir>/mlflow.db`",
    )
    model_name: str = Field(default="pokewatch-fair-price", description="the registered model's name")
    experiment_name: str = Field(default="pokewatch", description="the MLflow experiment of the pipeline's runs")

    @property
    def tracking_uri(self) -> str:
        """MLFLOW_TRACKING_URI, else a sqlite file in the data dir."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        return (self.data_dir / "mlartifacts").resolve()


class SignalSettings(BaseSettings):
    """POKEWATCH_BUY_THRESHOLD / POKEWATCH_SELL_THRESHOLD (the fixed rule) and POKEWATCH_TRADE_FEE."""

    model_config = ENV

    buy_threshold: float = Field(
        default=DEFAULT_RULE.buy, gt=0, lt=1, description="the fixed rule: BUY at this far under fair (0.10 = 10%)"
    )
    sell_threshold: float = Field(
        default=DEFAULT_RULE.sell, gt=0, description="the fixed rule: SELL at this far over fair (0.15 = 15%)"
    )
    trade_fee: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="fee a signal's expected move must clear (0.12 = 12%), in the rule choice and in serving; 0 = none",
    )

    @property
    def rule(self) -> SignalRule:
        return SignalRule(buy=self.buy_threshold, sell=self.sell_threshold)


class WorkerSettings(BrokerSettings, RegistrySettings, SignalSettings):
    """A stream worker replica (model or decision)."""

    model_config = ENV

    signals_maxlen: int = Field(default=100_000, ge=100, description="pokewatch:signals is capped near this")
    changes_maxlen: int = Field(
        default=100_000, ge=100, description="pokewatch:signal-changes and pokewatch:price-updates are capped near this"
    )
    scan: bool = Field(default=True, description="model replicas scan every tracked card when the version changes")
    scan_batch: int = Field(default=100, ge=1, le=500, description="cards per scan request")
    scan_wait_s: float = Field(
        default=60.0, ge=0, description="a scan waits this long for every live replica to serve the new version"
    )
    dead_letter_maxlen: int = Field(default=10_000, ge=100, description="pokewatch:dead-letter is capped near this")
    heartbeat_s: float = Field(default=2.0, gt=0, description="seconds between a replica's heartbeats")
    batch_size: int = Field(default=64, ge=1, le=1000, description="entries read per XREADGROUP")
    poll_ms: int = Field(default=100, ge=1, description="BLOCK time of each XREADGROUP, in milliseconds")
    claim_idle_ms: int = Field(default=3000, ge=100, description="pending this long -> another replica claims it")
    max_deliveries: int = Field(default=3, ge=1, description="deliveries before an entry is dead-lettered")
    champion_poll_s: float = Field(
        default=60.0,
        gt=0,
        description="model replicas re-check the champion alias (catch-up for missed events), "
        "challenger replicas the challenger alias",
    )
    shadow_maxlen: int = Field(
        default=50_000, ge=100, description="pokewatch:shadow-quotes is capped near this (challenger replicas)"
    )
    shadow_batch: int = Field(
        default=256, ge=1, le=1000, description="requests a challenger replica reads per XREADGROUP (fewer round trips)"
    )
    shadow_idle: bool = Field(
        default=False,
        description="challenger replicas run at idle CPU priority (Linux SCHED_IDLE): only CPU the champion's "
        "path leaves idle; on a saturated machine they starve (heartbeats included), so off by default",
    )
    shadow_nice: int = Field(
        default=10, ge=0, le=19, description="without idle priority, lower the challenger's CPU priority this much"
    )
    graceful_timeout_s: float = Field(
        default=10.0, gt=0, description="on SIGTERM, how long a worker may finish what it holds"
    )
    metrics: bool = Field(default=True, description="Prometheus metrics at /metrics on the health port")
    health_port: int = Field(
        default=0, ge=0, le=65535, description="port of /livez, /readyz and /metrics (8081 in the images); 0 = off"
    )
    health_host: str = Field(default="0.0.0.0", description="address of the health port")  # noqa: S104 (in a pod)


class PipelineSettings(RegistrySettings, SignalSettings):
    """The batch pipeline; defaults run locally."""

    model_config = ENV

    cards_file: Path = Field(default=Path("cards.yaml"), description="the tracked sets and cards")

    horizon: int = Field(default=1, ge=1, description="forecast horizon, in observations")
    fair_horizon: int = Field(default=8, ge=1, description="observations the fair level looks ahead / averages")
    train_fraction: float = Field(
        default=0.7, gt=0.1, lt=0.95, description="walk-forward: the dates before this share train the first fold"
    )
    embargo_days: int = Field(
        default=3, ge=0, description="walk-forward: training targets this close to a test block are dropped"
    )
    max_train_rows: int = Field(
        default=300_000, ge=1000, description="the forecast fits on at most this many of the most recent rows"
    )
    eval_folds: int = Field(default=6, ge=1, description="walk-forward retrains across the test window")
    half_life_days: float | None = Field(
        default=None,
        ge=0,
        description="recency half-life in days; unset = chosen per feed on validation among none, 90 and 35; 0 = off",
    )
    max_signal_share: float = Field(
        default=0.10,
        gt=0,
        le=1,
        description="the largest share of card-days a signal rule may fire on (its most confident ones)",
    )

    serving_days: int = Field(default=400, ge=1, description="days of history per card shipped for serving")
    cards_per_partition: int = Field(
        default=2000,
        ge=1,
        description="the catalogue is split into one partition per this many cards (at most 256 partitions)",
    )
    partitions: int | None = Field(
        default=None, ge=1, le=256, description="a fixed partition count; unset = one per cards_per_partition cards"
    )
    sample_rows: int = Field(
        default=1_000_000,
        ge=10_000,
        description="training and evaluation read whole cards, chosen by hash, up to this many feature rows",
    )

    challenger_trial: bool = Field(
        default=True,
        description="a candidate that passes the gate while a champion serves becomes the challenger "
        "(false: it becomes champion at once)",
    )
    challenger_dates: int = Field(
        default=7, ge=1, description="independent dates of realized outcomes before a challenger can be promoted"
    )
    challenger_max_dates: int = Field(
        default=21, ge=1, description="a challenger that has not won after this many dates is retired"
    )
    auto_promote: bool = Field(
        default=True, description="the lifecycle rule promotes and rolls back by itself (false: it only records)"
    )
    lifecycle_days: int = Field(default=120, ge=7, description="days of forecasts the lifecycle rule scores")
    rollout_timeout_s: float = Field(
        default=300.0,
        ge=0,
        description="after publishing a champion, how long to watch the model replicas load it; if they "
        "announce load failures and none serves it, it is rolled back at once",
    )

    demo_cards: int = Field(default=200, ge=1, description="cards of the synthetic demo source")
    demo_days: int = Field(default=365, ge=30, description="days of history per demo card")
    demo_seed: int = Field(default=7, description="the demo source's random seed (same seed, same prices)")
    default_currency: str = Field(default="USD", description="currency of rows that name none")

    pokemonpricetracker_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("POKEMONPRICETRACKER_API_KEY", "POKEWATCH_POKEMONPRICETRACKER_API_KEY"),
        description="the Pokémon Price Tracker API key (never commit it)",
    )
    pokemonpricetracker_base_url: str = Field(
        default="https://www.pokemonpricetracker.com/api/v2", description="that API's base URL"
    )
    pokemonpricetracker_days: int = Field(default=90, description="days of history fetched per card from that API")


class NotifierSettings(WorkerSettings):
    """The notifier (`pokewatch worker notifier`): matching changes to watchlists, delivering webhooks."""

    model_config = ENV

    webhook_allow: str = Field(
        default="", description="networks or hosts a webhook may point to although private (comma-separated)"
    )
    webhook_attempts: int = Field(default=8, ge=1, le=50, description="POSTs of one alert before its dead letter")
    webhook_backoff_s: float = Field(default=0.5, gt=0, description="first wait between attempts (doubles, jittered)")
    webhook_backoff_max_s: float = Field(default=60.0, gt=0, description="longest wait, Retry-After included")
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="one POST's timeout")
    webhook_concurrency: int = Field(default=32, ge=1, le=1000, description="alerts delivered at once")
    alerts_maxlen: int = Field(default=100_000, ge=100, description="pokewatch:alerts is capped near this")
