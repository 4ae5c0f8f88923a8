"""`make demo` tells the whole monitoring story with the policy's own decisions (#11.5).

Runs `journey-ml demo` as a user does (a subprocess in a fresh home) and checks, in its
terminal output and in the stores it leaves behind, the five kinds of step: a stable period
with no alert, the injected drift detected, a retrain promoted because it beat production on
recent matured data, an accuracy collapse that sent a segment to the rules model, and the
restore of a retrained model. The alias ledger is the evidence: every move the story names
is a row there, at the walk date it names (the demo runs on a simulated clock).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    where = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOURNEY_", "PREFECT_", "MLFLOW_"))}
    env.update(JOURNEY_HOME=str(where / ".journey"), COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "journey_ml", "demo"], cwd=where, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return where / ".journey", proc.stdout


def _story_lines(out: str) -> dict[str, tuple[date, str]]:
    """step label -> (date, task/segment) from the demo's "8/8 the story" block."""
    block = out[out.index("8/8 the story"):out.index("summary")]
    found = {}
    for line in block.splitlines():
        m = re.match(r"\s+(\d{4}-\d{2}-\d{2}) (\S+)\s+(.+?):", line)
        if m:
            found[m.group(3)] = (date.fromisoformat(m.group(1)), m.group(2))
    return found


def test_the_demo_shows_the_five_kinds_of_step(demo) -> None:
    home, out = demo
    assert "all five kinds of step seen" in out, out[out.index("8/8 the story"):]
    assert "not seen" not in out[out.index("8/8 the story"):]
    steps = _story_lines(out)
    labels = {k.split(" (")[0] for k in steps}
    for want in ("a stable period", "drift detected", "a retrain promoted because it beat production on recent "
                 "matured post-onset data", "an accuracy collapse sent a segment to the rules model",
                 "a retrained model recovered and was restored to production"):
        assert any(label.startswith(want) for label in labels), (want, steps)


def test_the_story_is_in_the_alias_ledger_at_the_simulated_dates(demo) -> None:
    from journey_ml.cli.demo import DemoScenario
    from journey_ml.config import load_config
    from journey_ml.db import make_engine
    from journey_ml.registry import ledger
    from journey_ml.settings import Settings

    home, out = demo
    settings = Settings(home=home, _env_file=None)
    engine = make_engine(settings.warehouse_url)
    scenario = DemoScenario.of(load_config(None)[0].simulation)
    steps = _story_lines(out)

    def step(prefix: str) -> tuple[date, str]:
        return next(v for k, v in steps.items() if k.startswith(prefix))

    stable, _ = step("a stable period")
    drift, _ = step("drift detected")
    # the quiet period comes first and the drift is seen after the injected onset, not before
    assert stable < scenario.outage <= drift, (stable, scenario.outage, drift)
    for prefix, action, reason in (("an accuracy collapse", "fallback", "monitor: "),
                                   ("a retrained model recovered", "restore", "monitor: "),
                                   ("a retrain promoted", "promote", "promoted on recent matured data")):
        when, where = step(prefix)
        task, segment = where.split("/")
        rows = [m for m in ledger.moves(engine, task=task, segment=segment)
                if m.action == action and m.reason.startswith(reason)
                and m.at == datetime(when.year, when.month, when.day, tzinfo=UTC)]
        assert rows, (prefix, when, where, [(m.action, m.at, m.reason[:60]) for m in
                                            ledger.moves(engine, task=task, segment=segment)])
    # the promotion won on matured data from after the onset (the dates are in the ledger's reason)
    when, where = step("a retrain promoted")
    won = [m.reason for m in ledger.moves(engine, task=where.split("/")[0], segment=where.split("/")[1])
           if m.action == "promote" and m.reason.startswith("promoted on recent matured data")]
    spans = [re.search(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", r) for r in won]
    assert any(m and date.fromisoformat(m.group(1)) >= min(scenario.outage, scenario.shift) for m in spans), won
    fell, where = step("an accuracy collapse")
    back, where_back = step("a retrained model recovered")
    assert where_back == where and back >= fell
    # the fallback went to the registered rules version: production there was the rules model
    moved = [m for m in ledger.moves(engine, task=where.split("/")[0], segment=where.split("/")[1])
             if m.action == "fallback"]
    assert moved and moved[-1].to_version is not None
    engine.dispose()
