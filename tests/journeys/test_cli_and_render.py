"""`journey-ml journeys ...` on the simulated world, `reports list`, and a headless render."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from journey_ml.cli.app import app

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="module")
def cli_env(sim_world, tmp_path_factory):
    root, cfg, engine = sim_world
    home = tmp_path_factory.mktemp("journeys_cli_home")
    cfg_path = home / "journey.yaml"
    import yaml

    doc = cfg.model_dump(mode="json")
    doc["journeys"]["bootstrap"] = 10
    cfg_path.write_text(yaml.safe_dump(doc))
    return {"JOURNEY_DATABASE_URL": str(engine.url), "JOURNEY_HOME": str(home / "home"),
            "JOURNEY_MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}, cfg_path


def _invoke(env, *args):
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture(scope="module")
def built_map(cli_env):
    env, cfg = cli_env
    r = _invoke(env, "journeys", "map", "-c", str(cfg), "-t", "conversion", "-s", "all", "-s", "smb", "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_map_command_writes_pages_listed_by_reports_list(cli_env, built_map):
    env, cfg = cli_env
    maps = built_map["maps"]
    assert [m["segment"] for m in maps] == ["all", "smb"]
    for m in maps:
        assert Path(m["report_html"]).exists() and m["run_id"]
    r = _invoke(env, "reports", "list", "-c", str(cfg), "--json")
    assert r.exit_code == 0, r.output
    listed = {(f["task"], f["segment"]): f["html"] for f in json.loads(r.stdout)["journey_maps"]}
    assert listed[("conversion", "all")] == maps[0]["report_html"]
    r = _invoke(env, "reports", "list", "-c", str(cfg))
    assert "journey maps" in r.stdout and "conversion/smb" in r.stdout


def test_table_commands_agree_with_the_map(cli_env, built_map):
    env, cfg = cli_env
    whole = built_map["maps"][0]
    r = _invoke(env, "journeys", "friction", "-c", str(cfg), "-t", "conversion", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["friction"] == whole["friction"]
    r = _invoke(env, "journeys", "friction", "-c", str(cfg), "-t", "conversion")
    assert whole["friction"][0]["sentence"] in r.stdout.replace("\n  ", " ")
    r = _invoke(env, "journeys", "paths", "-c", str(cfg), "-t", "conversion", "--json")
    assert json.loads(r.stdout)[0]["paths_to_conversion"] == whole["paths_to_conversion"]
    r = _invoke(env, "journeys", "attribution", "-c", str(cfg), "-t", "conversion", "--json")
    got = json.loads(r.stdout)[0]["attribution"]
    assert got == whole["attribution"]
    total = sum(x["conversions"] for x in got if x["method"] == "markov_2")
    assert total == pytest.approx(whole["summary"]["conversions"])
    r = _invoke(env, "journeys", "attribution", "-c", str(cfg), "-t", "conversion")
    assert r.exit_code == 0 and "markov 3" in r.stdout and "shapley" in r.stdout
    r = _invoke(env, "journeys", "next", "-c", str(cfg), "-t", "conversion", "--order", "1", "--json")
    nxt = json.loads(r.stdout)[0]["next_step"]
    assert nxt["order"] == 1 and nxt["top1"] > nxt["baseline_top1"]
    r = _invoke(env, "journeys", "lift", "-c", str(cfg), "-t", "conversion")
    assert r.exit_code == 0 and "no matured scores" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["journeys", "friction", "--level", "campaign"], "unknown journey level 'campaign'"),
    (["journeys", "map", "-s", "nowhere"], "no journeys in segment(s) nowhere"),
    (["journeys", "paths", "-t", "nope"], "unknown task 'nope'"),
    (["journeys", "paths", "--gap-days", "0"], "the inactivity gap must be positive"),
])
def test_bad_input_is_one_line_exit_1(cli_env, args, message):
    env, cfg = cli_env
    r = _invoke(env, *args, "-c", str(cfg))
    assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_headless_chromium_draws_the_sankey_and_the_tables(built_map, tmp_path):
    page = built_map["maps"][0]["report_html"]
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--virtual-time-budget=15000"]
    dom = subprocess.run([*common, "--dump-dom", Path(page).as_uri()], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # plotly ran and drew the Sankey: its SVG nodes and links exist in the live DOM
    assert 'class="main-svg"' in html and "sankey-node" in html and "sankey-link" in html
    assert '<table id="friction">' in html and built_map["maps"][0]["friction"][0]["step"] in html
    shot = tmp_path / "map.png"
    r = subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,2400", Path(page).as_uri()],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and shot.exists() and shot.stat().st_size > 20_000
    keep = Path(page).with_suffix(".png")
    shutil.copy(shot, keep)  # beside the page, for a person to look at


def test_score_shows_each_journey_and_agrees_with_journeys_next(cli_env, sim_world):
    """`journey-ml score` stores and shows the stage and likeliest next step; `journeys next`
    on the all-entities map gives the same probabilities for the same entity and T."""
    import sqlalchemy as sa

    from journey_ml.db.models import Score

    env, cfg = cli_env
    r = _invoke({**env, "COLUMNS": "240"}, "score", "-c", str(cfg), "-t", "conversion", "--top", "3")
    assert r.exit_code == 0, r.output
    assert "journey: stage > likely next" in r.stdout
    engine = sim_world[2]
    s = Score.__table__
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.c.entity_id, s.c.as_of, s.c.probability, s.c.stage, s.c.next_steps)
                            .where(s.c.task == "conversion")).mappings().all()
    newest = max(x["as_of"] for x in rows)
    stored = {x["entity_id"]: x for x in rows if x["as_of"] == newest}
    top = sorted(stored.values(), key=lambda x: -x["probability"])[:3]
    for x in top:
        assert x["entity_id"] in r.stdout and (x["stage"] is None or x["stage"] in r.stdout)
    r = _invoke(env, "journeys", "next", "-c", str(cfg), "-t", "conversion", "-s", "all", "--json")
    assert r.exit_code == 0, r.output
    preds = {p["entity_id"]: p for p in json.loads(r.stdout)[0]["next_predictions"]}
    both = sorted(set(preds) & {e for e, x in stored.items() if x["next_steps"]})
    assert len(both) >= 5
    for e in both:
        assert stored[e]["stage"] == preds[e]["predicted_current"]
        for k, v in stored[e]["next_steps"].items():
            assert v == pytest.approx(preds[e][f"p_{k}"], abs=1e-12)
