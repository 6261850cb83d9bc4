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

    data_dir: Path = Path(".pokewatch/data")
    mlflow_tracking_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "POKEWATCH_MLFLOW_TRACKING_URI")
    )
    model_name: str = "pokewatch-fair-price"
    experiment_name: str = "pokewatch"

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

    buy_threshold: float = Field(default=DEFAULT_RULE.buy, gt=0, lt=1)
    sell_threshold: float = Field(default=DEFAULT_RULE.sell, gt=0)
    trade_fee: float = Field(
        default=0.0, ge=0, lt=1, description="fee a signal's expected move must clear (0.12 = 12%); 0 = none"
    )

    @property
    def rule(self) -> SignalRule:
        return SignalRule(buy=self.buy_threshold, sell=self.sell_threshold)


class WorkerSettings(BrokerSettings, RegistrySettings, SignalSettings):
    """A stream worker replica (model or decision)."""

    model_config = ENV

    signals_maxlen: int = Field(default=100_000, ge=100)
    changes_maxlen: int = Field(default=100_000, ge=100, description="pokewatch:signal-changes is capped near this")
    scan: bool = Field(default=True, description="model replicas scan every tracked card when the version changes")
    scan_batch: int = Field(default=100, ge=1, le=500, description="cards per scan request")
    scan_wait_s: float = Field(
        default=60.0, ge=0, description="a scan waits this long for every live replica to serve the new version"
    )
    dead_letter_maxlen: int = Field(default=10_000, ge=100)
    heartbeat_s: float = Field(default=2.0, gt=0)
    batch_size: int = Field(default=64, ge=1, le=1000, description="entries read per XREADGROUP")
    poll_ms: int = Field(default=100, ge=1)
    claim_idle_ms: int = Field(default=3000, ge=100, description="pending this long -> another replica claims it")
    max_deliveries: int = Field(default=3, ge=1, description="deliveries before an entry is dead-lettered")
    champion_poll_s: float = Field(default=60.0, gt=0, description="model replicas re-check the champion alias")
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
    graceful_timeout_s: float = Field(default=10.0, gt=0)
    metrics: bool = Field(default=True, description="Prometheus metrics at /metrics on the health port")
    # HTTP probes (/livez, /readyz) and /metrics; 0 = off.
    health_port: int = Field(default=0, ge=0, le=65535)
    health_host: str = "0.0.0.0"  # noqa: S104 (a probe port inside a pod)


class PipelineSettings(RegistrySettings, SignalSettings):
    """The batch pipeline; defaults run locally."""

    model_config = ENV

    cards_file: Path = Path("cards.yaml")

    horizon: int = Field(default=1, ge=1)
    fair_horizon: int = Field(default=8, ge=1)
    train_fraction: float = Field(default=0.7, gt=0.1, lt=0.95)
    embargo_days: int = Field(default=3, ge=0)
    max_train_rows: int = Field(default=300_000, ge=1000)
    eval_folds: int = Field(default=6, ge=1)
    half_life_days: float | None = Field(
        default=None, ge=0, description="recency half-life in days; unset = chosen per feed on validation, 0 = off"
    )
    max_signal_share: float = Field(
        default=0.10, gt=0, le=1, description="the largest share of card-days a signal rule may fire on"
    )

    serving_days: int = Field(default=400, ge=1, description="days of history per card shipped for serving")
    cards_per_partition: int = Field(
        default=2000, ge=1, description="the catalogue is split into one partition per this many cards"
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

    demo_cards: int = Field(default=200, ge=1)
    demo_days: int = Field(default=365, ge=30)
    demo_seed: int = 7
    default_currency: str = "USD"

    pokemonpricetracker_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("POKEMONPRICETRACKER_API_KEY", "POKEWATCH_POKEMONPRICETRACKER_API_KEY"),
    )
    pokemonpricetracker_base_url: str = "https://www.pokemonpricetracker.com/api/v2"
    pokemonpricetracker_days: int = 90


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
