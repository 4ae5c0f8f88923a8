"""Typed runtime settings: everything secret or machine-specific.

Built once at an entry point (CLI, flow, API) and passed down. Non-secret behaviour
(taxonomy, sources, tasks, policies) lives in the YAML configuration instead; see
:mod:`journey_ml.config`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path(".journey")
# Hashes PII on the embedded default only (the demo, a SQLite warehouse); known to everyone.
DEV_PII_SALT = "journey-ml-dev-salt"
PII_SALT_HINT = ("set it once and never change it, e.g. "
                 "export JOURNEY_PII_SALT=\"$(python -c 'import secrets; print(secrets.token_hex(32))')\" "
                 "(`make up` keeps one in .journey/stack/secrets.env)")


class MissingSecret(ValueError):
    """A secret the configured deployment needs is not set (the message says how to set it)."""


class Settings(BaseSettings):
    """Runtime settings read from ``JOURNEY_*`` environment variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(
        env_prefix="JOURNEY_", env_file=".env", extra="ignore", validate_default=True
    )

    home: Path = Field(DEFAULT_HOME, description="Working directory for embedded stores.")
    database_url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL of the warehouse. Defaults to SQLite under `home`. "
        "Use postgresql+psycopg://user:pass@host/db for PostgreSQL.",
    )
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI. Defaults to SQLite under `home`."
    )
    config_path: Path | None = Field(
        None, description="YAML configuration file. Defaults to the packaged config."
    )
    pii_salt: SecretStr | None = Field(
        None,
        description="Secret key for hashing PII and erasure tombstones. Required with a PostgreSQL "
        "warehouse; the embedded SQLite default (the demo) uses a fixed development salt.",
    )
    api_token: SecretStr | None = Field(None, description="Bearer token for the HTTP API.")
    ingest_batch_rows: int = Field(100_000, gt=0, description="Rows per ingestion batch.")
    api_max_body_bytes: int = Field(2_000_000, gt=0, description="Largest request body the API reads (413 above).")
    api_max_events: int = Field(5_000, gt=0, description="Most events one POST /v1/score may carry (422 above).")
    api_max_header_bytes: int = Field(
        16_384, gt=1024, description="Largest request line + headers the API server reads (431 above).")
    api_registry_poll_seconds: float = Field(
        30.0, ge=0, description="How often the API re-reads @production from the registry (0: never).")
    api_no_auth: bool = Field(
        False, description="Serve /v1/* without a token (set by `journey-ml serve --no-auth`).")
    api_max_inflight: int = Field(
        32, ge=0, description="Most POST /v1/score in progress per API process; more get 503 at once (0: no limit).")
    api_scoring_threads: int = Field(
        1, gt=0, description="Threads scoring POST /v1/score per API process (one per process is fastest: "
                             "scoring holds the GIL; run one process per core with --workers).")
    api_worker_start_seconds: int = Field(
        60, gt=0, description="How long `journey-ml serve --workers N` lets a worker take to start, and to "
                              "answer the supervisor's health check, before it is replaced.")
    api_scratch_databases: int = Field(
        4, gt=0, description="Unused since the API computes the posted entity's features in memory (#14); "
                  "kept so existing environments still parse.")

    @field_validator("home")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @property
    def warehouse_url(self) -> str:
        """The warehouse SQLAlchemy URL, defaulting to an embedded SQLite file."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.home / 'warehouse.db').resolve()}"

    @property
    def embedded(self) -> bool:
        """True on the embedded default: a SQLite warehouse file (the demo, a laptop)."""
        return self.warehouse_url.startswith("sqlite")

    @property
    def uses_dev_salt(self) -> bool:
        """True when PII is hashed with the public development salt (embedded default only)."""
        return self.pii_salt is None or not self.pii_salt.get_secret_value()

    def pii_salt_value(self) -> str:
        """The PII salt: JOURNEY_PII_SALT, or the development salt on the embedded default.

        Raises MissingSecret (saying how to set it) when a non-embedded warehouse (PostgreSQL)
        has no salt: hashing production PII with a public key would make the hashes reversible
        by anyone with a list of candidate emails."""
        if not self.uses_dev_salt:
            return self.pii_salt.get_secret_value()  # type: ignore[union-attr]
        if self.embedded:
            return DEV_PII_SALT
        raise MissingSecret("JOURNEY_PII_SALT is not set: a PostgreSQL warehouse needs its own secret "
                            f"key for hashing personal data; {PII_SALT_HINT}")

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI, defaulting to an embedded SQLite store."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    def ensure_home(self) -> Path:
        """Create the working directory if needed and return it."""
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home
