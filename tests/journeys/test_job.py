"""The journeys job on a simulated world: the dead end is found, maps are written and logged."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from journey_ml.jobs import JourneysParams, run_journeys
from journey_ml.journeys import friction
from journey_ml.journeys.build import cut
from journey_ml.journeys.read import read_events
from journey_ml.runtime import Runtime
from journey_ml.settings import Settings
from journey_ml.simulate.truth import dead_end
from journey_ml.training import data_end

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")
NOW = datetime(2026, 7, 2, tzinfo=UTC)


def test_friction_recovers_the_simulated_dead_end(sim_world):
    root, cfg, engine = sim_world
    as_of = data_end(engine)
    truth = dead_end(root / "exports", as_of, cfg.journeys.gap_days)
    expected = truth.exit_rate
    assert truth.step == "integrations_page_view" and truth.visitors > 50 and 0.3 < expected < 0.9
    events = read_events(engine, as_of, lookback_days=10_000)
    j = cut(events, cfg.journeys.model_copy(update={"max_steps": 10_000}), as_of, "event_type",
            cfg.outcomes["conversion"])
    f = friction(j).set_index("step")
    got = f.loc["integrations_page_view"]
    assert abs(got["exit_rate"] - expected) < 0.05, (got["exit_rate"], expected)
    # it is the step with the highest exit rate among the well-visited ones
    busy = f[f["journeys"] >= 50]
    assert busy["exit_rate"].idxmax() == "integrations_page_view"


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.external, self.tables, self.divs = [], {}, set()
        self._table = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img", "iframe") and re.match(r"https?://", a.get("src") or ""):
            self.external.append(a["src"])
        if tag == "link" and re.match(r"https?://", a.get("href") or ""):
            self.external.append(a["href"])
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        if tag == "div" and a.get("id"):
            self.divs.add(a["id"])

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._table and data.strip():
            self.tables[self._table].append(data.strip())


def test_job_writes_offline_maps_with_the_tables_and_logs_them(sim_world, tmp_path):
    root, cfg, engine = sim_world
    settings = Settings(home=tmp_path / "home", pii_salt="t",
                        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    rt = Runtime(settings=settings, config=cfg.model_copy(update={
        "journeys": cfg.journeys.model_copy(update={"bootstrap": 20})}), _engine=engine)
    res = run_journeys(rt, JourneysParams(computed_at=NOW, tasks=("conversion",)))
    segs = {m.segment for m in res.maps}
    assert "all" in segs and {"smb", "mid_market", "enterprise"} <= segs
    m = res.map("conversion")
    assert m.journeys > 100 and m.conversions > 10 and m.run_id
    top = m.top_friction
    assert top["sentence"].startswith(f"{top['exit_rate']:.0%} of journeys that reach {top['step']} end there")
    html = Path(m.report_html).read_text(encoding="utf-8")
    page = _Page()
    page.feed(html)
    assert page.external == []  # opens offline: plotly.js is inlined
    assert {"sankey", "graph"} <= page.divs and '"type":"sankey"' in html.replace(" ", "")
    assert {"friction", "attribution", "attribution-value", "paths-conversion", "paths-drop-off",
            "step-matrix", "committee"} <= set(page.tables)
    assert "economic_buyer" in page.tables["committee"]
    # the figures of the tables are on the page
    assert top["step"] in page.tables["friction"] and f"{top['exit_rate']:.1%}" in page.tables["friction"]
    lin = m.attribution.wide()["linear"]
    ch = lin.idxmax()
    assert any(cell.startswith(f"{lin[ch]:,.1f} [") for cell in page.tables["attribution"])
    assert m.paths_to_conversion["path"].iloc[0] in page.tables["paths-conversion"]
    doc = json.loads(Path(m.report_html).with_suffix(".json").read_text())
    assert doc["summary"]["journeys"] == m.journeys and doc["friction"][0]["step"] == top["step"]
    # the same files are the journey run's artifacts in MLflow
    from mlflow import MlflowClient

    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(m.run_id)
    assert run.data.tags["journey.kind"] == "journey_map" and run.data.tags["journey.segment"] == "all"
    assert run.data.metrics["journeys"] == m.journeys
    names = sorted(a.path for a in client.list_artifacts(m.run_id, "journey_map"))
    assert [n.rsplit("/", 1)[-1].rsplit(".", 1)[-1] for n in names] == ["html", "json"]
    # next-step accuracy sits beside the order-0 baseline
    assert m.next_step.top1 > m.next_step.baseline_top1


def test_unknown_segment_and_section_are_named(sim_world, tmp_path):
    root, cfg, engine = sim_world
    rt = Runtime(settings=Settings(home=tmp_path, pii_salt="t"), config=cfg, _engine=engine)
    with pytest.raises(ValueError, match="no journeys in segment.*nowhere"):
        run_journeys(rt, JourneysParams(computed_at=NOW, tasks=("conversion",), segments=("nowhere",),
                                        report=False, lift=False))
    with pytest.raises(ValueError, match="unknown journey map section"):
        run_journeys(rt, JourneysParams(computed_at=NOW, tasks=("conversion",), segments=("all",),
                                        sections=("bogus",), report=False, lift=False))
