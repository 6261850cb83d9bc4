"""Settings of the workers and the batch pipeline, from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class PipelineSettings(BaseSettings):
    """Env-driven settings (prefix POKEWATCH_); defaults run locally."""

    model_config = SettingsConfigDict(env_prefix="POKEWATCH_", extra="ignore")

    data_dir: Path = Path(".pokewatch/data")
    mlflow_tracking_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "POKEWATCH_MLFLOW_TRACKING_URI")
    )
    model_name: str = "pokewatch-fair-price"
    experiment_name: str = "pokewatch"
    cards_file: Path = Path("cards.yaml")

    horizon: int = Field(default=1, ge=1)
    fair_horizon: int = Field(default=8, ge=1)
    buy_threshold: float = Field(default=0.10, gt=0, lt=1)
    sell_threshold: float = Field(default=0.15, gt=0)
    train_fraction: float = Field(default=0.7, gt=0.1, lt=0.95)
    embargo_days: int = Field(default=3, ge=0)
    max_train_rows: int = Field(default=300_000, ge=1000)
    eval_folds: int = Field(default=8, ge=1)
    half_life_days: float = Field(default=35.0, ge=0, description="recency weighting; 0 disables")

    serving_days: int = Field(default=400, ge=1, description="days of history per card shipped for serving")

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

    @property
    def tracking_uri(self) -> str:
        """MLFLOW_TRACKING_URI, else a sqlite file in the data dir."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        return (self.data_dir / "mlartifacts").resolve()
