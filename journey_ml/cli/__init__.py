"""The `journey-ml` command line: commands call the jobs; rendering lives in `render`."""

from journey_ml.cli.app import app, main

__all__ = ["app", "main"]
