"""`journey-ml score` from the command line: output is ours (no MLflow download bars or INFO
lines unless --verbose, issue #9 case 20); an empty population is an error unless
--allow-empty (case 19)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from tests.scoring.conftest import world  # noqa: F401 - the shared trained world

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning:mlflow.*")


def _env(world, tmp_path) -> tuple[dict, str]:  # noqa: F811
    cfg = tmp_path / "journey.yaml"
    cfg.write_text(yaml.safe_dump(world.config.model_dump(mode="json")))
    env = {**os.environ, "JOURNEY_HOME": str(tmp_path / "home"), "JOURNEY_PII_SALT": "t",
           "JOURNEY_DATABASE_URL": f"sqlite:///{world.root / 'warehouse.db'}",
           "JOURNEY_MLFLOW_TRACKING_URI": world.registry.tracking_uri}
    for k in ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "MLFLOW_LOGGING_LEVEL"):
        env.pop(k, None)
    return env, str(cfg)


def test_score_output_has_no_mlflow_chatter_unless_verbose(world, tmp_path):  # noqa: F811
    env, cfg = _env(world, tmp_path)

    def run(*pre: str):
        return subprocess.run([sys.executable, "-m", "journey_ml", *pre, "score", "--config", cfg,
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


@pytest.mark.parametrize("command", [["score"], ["features", "build"]])
def test_empty_population_after_the_data_is_an_error_unless_allowed(world, tmp_path, command):  # noqa: F811
    """Before: `score --as-of 2030-01-01` wrote 0 rows and exited 0 in silence."""
    env, cfg = _env(world, tmp_path)

    def run(*extra: str):
        return subprocess.run([sys.executable, "-m", "journey_ml", *command, "--config", cfg,
                               "--as-of", "2030-01-01", *extra], capture_output=True, text=True, env=env,
                              timeout=600)

    r = run()
    assert r.returncode == 1, r.stdout + r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert "task 'conversion': no entity is in the 'prospects' population as of 2030-01-01" in line
    assert f"the data ends at {world.as_of:%Y-%m-%d}" in line and "--allow-empty" in line
    assert "Traceback" not in r.stderr
    ok = run("--allow-empty")
    assert ok.returncode == 0, ok.stderr
