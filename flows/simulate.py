"""Simulation flow: write seeded source exports into the configured data folder."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from journey_ml.runtime import Runtime
from journey_ml.simulate import SimulationParams, simulate


@task(cache_policy=NO_CACHE)
def write_exports(rt: Runtime, params: SimulationParams) -> dict:
    r = simulate(params, rt.data_dir)
    return {"out_dir": str(r.out_dir), "files": r.files, "events": r.events,
            "accounts": r.accounts, "contacts": r.contacts, "dirty_rows": r.dirty_rows}


@flow(name="journey-simulate")
def simulate_flow(accounts: int | None = None, seed: int | None = None,
                  drift_from: str | None = None, config_path: str | None = None) -> dict:
    """Simulate ``accounts`` companies' journeys (defaults from the config's simulation block)."""
    from journey_ml.cli import simulation_params

    rt = Runtime.load(config_path=config_path)
    params = simulation_params(rt.config.simulation, accounts=accounts, seed=seed,
                               drift_from=drift_from)
    return write_exports(rt, params)
