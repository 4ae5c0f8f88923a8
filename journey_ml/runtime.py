"""The resources an entry point builds once and passes down: settings, config, engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine

from journey_ml.config import JourneyConfig, load_config
from journey_ml.db import make_engine
from journey_ml.registry.protocol import ModelRegistry
from journey_ml.settings import Settings


@dataclass
class Runtime:
    """Settings, the validated configuration and (lazily) the warehouse engine."""

    settings: Settings
    config: JourneyConfig
    config_base: Path | None = None
    _engine: Engine | None = field(default=None, repr=False)

    @classmethod
    def load(cls, settings: Settings | None = None, config_path: Path | str | None = None) -> Runtime:
        """Build from the environment; ``config_path`` overrides JOURNEY_CONFIG_PATH.

        Raises ConfigError (naming file and key) for an invalid configuration.
        """
        settings = settings or Settings()
        config, base = load_config(config_path or settings.config_path)
        return cls(settings=settings, config=config, config_base=base)

    def __getstate__(self) -> dict:
        # what a Dask worker gets: settings and configuration; it opens its own engine and
        # registry (connections and MLflow clients do not travel)
        state = {k: v for k, v in self.__dict__.items() if k not in ("engine", "registry")}
        if state.get("_engine") is not None:
            state["_engine"] = state["_engine"].url.render_as_string(hide_password=False)
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state.get("_engine"), str):
            state = {**state, "_engine": make_engine(state["_engine"])}
        self.__dict__.update(state)

    @cached_property
    def engine(self) -> Engine:
        if self._engine is not None:
            return self._engine
        self.settings.ensure_home()
        return make_engine(self.settings.warehouse_url)

    @cached_property
    def registry(self) -> ModelRegistry:
        """The model registry adapter (MLflow + the warehouse's alias ledger)."""
        from journey_ml.registry import Registry

        uri = self.settings.tracking_uri
        # a database-backed store without a server would put artifacts in ./mlruns
        local = None if uri.startswith(("http://", "https://", "databricks")) else \
            str((self.settings.home / "mlartifacts").resolve())
        return Registry(uri, self.engine, experiment=self.config.registry.experiment,
                        artifact_location=local)

    @property
    def data_dir(self) -> Path:
        """Where relative source paths resolve."""
        return self.config.resolve_data_dir(self.settings.home, self.config_base)

    @property
    def salt(self) -> str:
        """The PII salt; MissingSecret outside the embedded default when none is set."""
        return self.settings.pii_salt_value()
