"""Seeded journey simulator: realistic source exports for N B2B accounts."""

from journey_ml.simulate.generator import (
    SimulationParams,
    SimulationResult,
    simulate,
    validate_params,
)

__all__ = ["SimulationParams", "SimulationResult", "simulate", "validate_params"]
