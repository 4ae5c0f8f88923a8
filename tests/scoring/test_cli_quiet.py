"""`journey-ml score` output is ours: no MLflow download bars or INFO lines unless --verbose
(issue #9 case 20)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from tests.scoring.conftest import world  # noqa: F401 - the shared trained world

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning:mlflow.*")


def test_score_output_has_no_mlflow_chatter_unless_verbose(world, tmp_path):  # noqa: F811
    cfg = tmp_path / "journey.yaml"
    cfg.write_text(yaml.safe_dump(world.config.model_dump(mode="json")))
    env = {**os.environ, "JOURNEY_HOME": str(tmp_path / "home"), "JOURNEY_PII_SALT": "t",
           "JOURNEY_DATABASE_URL": f"sqlite:///{world.root / 'warehouse.db'}",
           "JOURNEY_MLFLOW_TRACKING_URI": world.registry.tracking_uri}
    for k in ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "MLFLOW_LOGGING_LEVEL"):
        env.pop(k, None)

    def run(*pre: str):
        return subprocess.run([sys.executable, "-m", "journey_ml", *pre, "score", "--config", str(cfg),
                               "--as-of", world.as_of.isoformat(), "--top", "1"],
                              capture_output=True, text=True, env=env, timeout=600)

    quiet = run()
    assert quiet.returncode == 0, quiet.stderr
    assert "conversion as of" in quiet.stdout
    chatter = [ln for ln in (quiet.stdout + quiet.stderr).splitlines()
               if "Downloading artifacts" in ln or " INFO " in ln or ln.startswith("INFO")]
    assert not chatter, chatter[:5]
    loud = run("--verbose")
    assert loud.returncode == 0, loud.stderr
    assert "INFO" in loud.stderr  # the option really lets MLflow and our loggers speak
