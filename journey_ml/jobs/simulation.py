"""The simulation job: seeded source exports into the configured data folder."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from journey_ml.config import SimulationConfig
from journey_ml.runtime import Runtime
from journey_ml.simulate import SimulationParams, SimulationResult, simulate


def simulation_params(defaults: SimulationConfig, **overrides: Any) -> SimulationParams:
    """SimulationParams from the config's ``simulation:`` block and explicit overrides
    (None means "keep the default"); dates may be ``YYYY-MM-DD`` strings. ValueError names
    a value that is not a date."""
    vals = defaults.model_dump()
    vals.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name: f for f in dataclasses.fields(SimulationParams)}
    unknown = sorted(set(vals) - set(known))
    if unknown:
        raise ValueError(f"simulation: unknown parameter(s) {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for k, v in vals.items():
        if isinstance(v, str) and k in ("start", "end", "drift_from", "conversion_shift_from",
                                                  "tracking_outage_from"):
            try:
                v = date.fromisoformat(v)
            except ValueError:
                raise ValueError(f"simulation.{k}: not a date (YYYY-MM-DD): {v!r}") from None
        out[k] = v
    return SimulationParams(**out)


def run_simulation(rt: Runtime, out_dir: Path | None = None,
                   progress: Callable[[int, int], None] | None = None, **overrides: Any) -> SimulationResult:
    """Write the simulated exports (default folder: the config's data_dir)."""
    params = simulation_params(rt.config.simulation, **overrides)
    return simulate(params, out_dir or rt.data_dir, progress=progress)
