"""The warehouse: engine construction, models and migrations."""

from journey_ml.db.engine import make_engine, backend_name
from journey_ml.db.migrate import upgrade, current_revision

__all__ = ["make_engine", "backend_name", "upgrade", "current_revision"]
