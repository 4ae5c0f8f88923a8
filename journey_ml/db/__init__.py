"""The warehouse: engine construction, models and migrations."""

from journey_ml.db.engine import backend_name, make_engine
from journey_ml.db.migrate import current_revision, upgrade

__all__ = ["make_engine", "backend_name", "upgrade", "current_revision"]
