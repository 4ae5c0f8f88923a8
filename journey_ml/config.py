"""The one YAML configuration file: everything non-secret.

Parsed into pydantic models that reject unknown keys; every error names the file and the
key (``config.yaml: sources.2.columns.occured_at: ...``). Without a file, the packaged
``default_config.yaml`` is used, which reads the simulator's exports.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from journey_ml.schemas import CONTRACTS, STAGES, Kind

DEFAULT_CONFIG_NAME = "default_config.yaml"


class ConfigError(ValueError):
    """The configuration file is unreadable or invalid; the message names file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaxonomyEntry(_Strict):
    channel: str
    stage: str

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, v: str) -> str:
        if v not in STAGES:
            raise ValueError(f"unknown stage {v!r}; expected one of {', '.join(STAGES)}")
        return v


class PiiConfig(_Strict):
    """Source columns that are personal data: hashed (keyed) or dropped before storage."""

    hash: list[str] = Field(default_factory=list)
    drop: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _disjoint(self) -> PiiConfig:
        both = set(self.hash) & set(self.drop)
        if both:
            raise ValueError(f"columns both hashed and dropped: {sorted(both)}")
        return self


class SourceConfig(_Strict):
    """One source: a file, a folder or a glob of CSV / Parquet / JSON-lines exports."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Kind
    path: str
    format: Literal["auto", "csv", "parquet", "jsonl"] = "auto"
    # contract field -> column name in the export
    columns: dict[str, str] = Field(default_factory=dict)
    # constant values for contract fields the export does not carry (e.g. channel: web)
    defaults: dict[str, Any] = Field(default_factory=dict)
    # timezone assumed for timestamps without an offset
    timezone: str = "UTC"
    pii: PiiConfig = Field(default_factory=PiiConfig)
    # unmapped columns: kept in properties/attributes ("keep") or discarded ("drop")
    extra_columns: Literal["keep", "drop"] = "keep"
    # CSV values that mean "missing"
    null_values: list[str] = Field(default_factory=lambda: ["", "NULL", "null", "NA", "N/A"])
    # values of a boolean column that mean true (case-insensitive)
    true_values: list[str] = Field(default_factory=lambda: ["true", "1", "yes", "y", "t"])

    @model_validator(mode="after")
    def _known_fields(self) -> SourceConfig:
        contract = CONTRACTS[self.kind]
        for key in (*self.columns, *self.defaults):
            if key not in contract.names:
                raise ValueError(
                    f"{key!r} is not a field of the {self.kind} contract "
                    f"(fields: {', '.join(contract.names)})"
                )
        return self

    def column_for(self, field: str) -> str:
        """The export's column name for a contract field (the field name when unmapped)."""
        return self.columns.get(field, field)


class IngestConfig(_Strict):
    max_future_skew_minutes: int = Field(60, ge=0)
    # incremental runs re-read files changed within this window before the watermark
    overlap_hours: int = Field(72, ge=0)
    unknown_event_types: Literal["keep", "reject"] = "keep"


class SimulationConfig(_Strict):
    """Defaults for `journey-ml simulate` (all overridable on the command line)."""

    accounts: int = Field(600, gt=0)
    seed: int = 7
    start: str = "2025-01-01"
    end: str = "2026-06-30"
    drift_from: str | None = None
    dirty_rate: float = Field(0.002, ge=0, le=0.5)


class JourneyConfig(_Strict):
    """The whole configuration file."""

    version: Literal[1] = 1
    data_dir: str = "{home}/exports"
    taxonomy: dict[str, TaxonomyEntry] = Field(default_factory=dict)
    outcomes: dict[str, list[str]] = Field(
        default_factory=dict,
        description="outcome name -> event types that mean it happened",
    )
    pii: PiiConfig = Field(default_factory=PiiConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    sources: list[SourceConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_sources(self) -> JourneyConfig:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique, repeated: {dupes}")
        return self

    def source(self, name: str) -> SourceConfig:
        """The source called ``name``; raises ConfigError naming the known sources."""
        for s in self.sources:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"unknown source {name!r} (configured: {known})")

    def resolve_data_dir(self, home: Path, base: Path | None = None) -> Path:
        """Where relative source paths point: ``data_dir`` with ``{home}`` filled in."""
        d = Path(self.data_dir.format(home=str(home)))
        if not d.is_absolute() and base is not None:
            d = base / d
        return d


def _format_error(path: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{path}: {loc}: {msg}")
    return "\n".join(lines)


def parse_config(data: Any, origin: str = "<config>") -> JourneyConfig:
    """Validate an already-parsed YAML document; errors name ``origin`` and the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping, got {type(data).__name__}")
    try:
        return JourneyConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_error(origin, e)) from None


def load_config(path: Path | str | None = None) -> tuple[JourneyConfig, Path | None]:
    """Load and validate the YAML configuration.

    Returns the config and the folder relative paths resolve against (None for the
    packaged default). Raises ConfigError naming the file and key on any problem.
    """
    if path is None:
        text = resources.files("journey_ml").joinpath(DEFAULT_CONFIG_NAME).read_text("utf-8")
        return parse_config(yaml.safe_load(text), f"<packaged {DEFAULT_CONFIG_NAME}>"), None
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: configuration file not found")
    try:
        data = yaml.safe_load(p.read_text("utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    return parse_config(data, str(p)), p.parent.resolve()
