"""The alias ledger held against the registry: is what the ledger says production is there?

The ledger (in the warehouse) is our record of every alias move. When it says a model's
``production`` is version N and the registry has no such model or version (a deleted or
replaced tracking store), scoring must not quietly fall back and overwrite good scores:
that is an outage, and the callers (batch scoring, the API's readiness) say which version
is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from journey_ml.registry import ledger
from journey_ml.registry._types import (
    PRODUCTION,
    AliasMoveInfo,
    ModelNotFound,
    RegistryError,
    split_model_name,
)


@dataclass(frozen=True)
class MissingProduction:
    """A production version the ledger records and the registry cannot produce."""

    model_name: str
    version: int
    since: datetime
    registry_says: str

    def sentence(self) -> str:
        return (f"the alias ledger says {self.model_name}@production is v{self.version} (since "
                f"{self.since:%Y-%m-%d %H:%M} UTC), but the registry {self.registry_says}")


class RegistryOutage(RegistryError):
    """The registry cannot produce the production versions the ledger records."""

    def __init__(self, missing: list[MissingProduction]):
        super().__init__("registry outage: " + "; ".join(m.sentence() for m in missing)
                         + " -- nothing was written; restore the tracking store or re-register and "
                           "promote the model")
        self.missing = missing


def ledger_production(engine: Engine, task: str | None = None) -> dict[str, AliasMoveInfo]:
    """Per model (of ``task``, or all): the newest production move recorded in the ledger."""
    out: dict[str, AliasMoveInfo] = {}
    for m in ledger.moves(engine, task=task, alias=PRODUCTION):  # newest first
        out.setdefault(m.model_name, m)
    return {k: v for k, v in out.items() if v.to_version is not None}


def missing_production(engine: Engine, registry, task: str | None = None) -> list[MissingProduction]:
    """The models whose ledger production version the registry does not have (or points
    elsewhere). Registry read errors propagate: an unreachable registry is the caller's
    fallback case, not an inconsistency."""
    out: list[MissingProduction] = []
    for name, move in sorted(ledger_production(engine, task).items()):
        t, seg = split_model_name(name)
        if t is None:
            continue
        info = registry.production(t, seg)
        if info is not None and info.version == move.to_version:
            continue
        if info is not None:
            says = f"points production at v{info.version}"
        else:
            try:
                registry.version(t, seg, move.to_version)
                says = "has no production alias on it"
            except ModelNotFound:
                says = f"has no version {move.to_version} of it (was the tracking store deleted or replaced?)"
        out.append(MissingProduction(name, int(move.to_version), move.at, says))
    return out


__all__ = ["MissingProduction", "RegistryOutage", "ledger_production", "missing_production"]
