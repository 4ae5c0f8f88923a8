"""Simulation flow: write seeded source exports into the configured data folder."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from journey_ml.jobs import run_simulation
from journey_ml.runtime import Runtime
from journey_ml.simulate import SimulationResult


@task(cache_policy=NO_CACHE)
def write_exports(rt: Runtime, accounts: int | None, seed: int | None, drift_from: str | None,
                  conversion_shift_from: str | None = None, end: str | None = None,
                  tracking_outage_from: str | None = None) -> SimulationResult:
    return run_simulation(rt, accounts=accounts, seed=seed, drift_from=drift_from,
                          conversion_shift_from=conversion_shift_from, end=end,
                          tracking_outage_from=tracking_outage_from)


@flow(name="journey-simulate")
def simulate_flow(accounts: int | None = None, seed: int | None = None,
                  drift_from: str | None = None, config_path: str | None = None,
                  conversion_shift_from: str | None = None, end: str | None = None,
                  tracking_outage_from: str | None = None) -> SimulationResult:
    """Simulate ``accounts`` companies' journeys (defaults from the config's simulation block)."""
    rt = Runtime.load(config_path=config_path)
    return write_exports(rt, accounts, seed, drift_from, conversion_shift_from, end, tracking_outage_from)
