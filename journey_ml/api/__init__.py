"""The scoring HTTP API (FastAPI): `create_app()`; served by `journey-ml serve`."""

from journey_ml.api.app import app_from_env, create_app

__all__ = ["create_app", "app_from_env"]
