"""A snapshot task end to end (#12 What to build 1): a contacts export with a label column
and no timestamps -> ingest -> train (stratified random holdout, k-fold metrics) -> score,
through the same job functions the CLI and the flows call."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from journey_ml.config import load_config
from journey_ml.db import make_engine, upgrade
from journey_ml.jobs import TrainingParams, run_training
from journey_ml.jobs.ingest import IngestParams, run_ingest
from journey_ml.jobs.scoring import ScoringParams, run_scoring
from journey_ml.runtime import Runtime
from journey_ml.settings import Settings
from journey_ml.training import GLOBAL, TrainingError, prepare_snapshot_training

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

CONFIG = """
sources:
  - name: crm
    kind: contacts
    path: customers.csv
    columns: {contact_id: customer}
tasks:
  churn:
    entity: contact
    outcome: Churn
    snapshot: {cv_folds: 3}
training: {min_segment_rows: 100, min_segment_positives: 10}
"""


def _export(path, n: int = 900, seed: int = 4) -> pd.DataFrame:
    """Churn driven by contract, tenure and charges; ``Churn`` is Yes/No (a telco-style export)."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    monthly = np.round(rng.uniform(20, 110, n), 2)
    contract = rng.choice(["month", "one_year", "two_year"], n, p=[0.5, 0.3, 0.2])
    logit = -1.0 - 0.04 * tenure + 0.02 * (monthly - 60) + 1.5 * (contract == "month")
    churn = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "Yes", "No")
    df = pd.DataFrame({"customer": [f"C{i:04d}" for i in range(n)], "tenure": tenure, "monthly": monthly,
                       "contract": contract, "Churn": churn})
    df.to_csv(path / "customers.csv", index=False)
    return df


@pytest.fixture
def rt(tmp_path):
    (tmp_path / "data").mkdir()
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(CONFIG)
    cfg, base = load_config(cfg_file)
    engine = make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    upgrade(engine)
    settings = Settings(home=tmp_path / "home", pii_salt="t",
                        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    return Runtime(settings=settings, config=cfg, config_base=base, _engine=engine)


def test_a_contacts_export_with_a_label_trains_and_scores(rt, tmp_path):
    df = _export(tmp_path / "data")
    ing = run_ingest(rt, IngestParams(received_at=datetime(2026, 3, 1, tzinfo=UTC), data_dir=tmp_path / "data"))
    assert ing.error is None

    data = prepare_snapshot_training(rt.engine, rt.config, "churn")
    f = data.frame
    assert len(f) == len(df) and f["entity_id"].is_unique
    assert f["label"].sum() == (df["Churn"] == "Yes").sum()
    # stratified, seeded: the test holdout is 20% of the rows with the overall positive rate
    test = f[f["split"] == "test"]
    assert len(test) == 180 and abs(test["label"].mean() - f["label"].mean()) < 0.01
    # features from the attributes, never the label
    assert {"attr_tenure", "attr_monthly", "attr_contract"} <= set(data.feature_set.names())
    assert not any("churn" in n.lower() for n in data.feature_set.names())
    again = prepare_snapshot_training(rt.engine, rt.config, "churn")
    assert again.frame["split"].tolist() == f["split"].tolist()  # seeded

    result = run_training(rt, TrainingParams(actor="test"))
    assert result.failures == (), result.failures  # never "the warehouse has no events yet"
    (o,) = result.outcomes
    assert o.segment == GLOBAL and o.cv is not None and o.cv["folds"] == 3.0
    assert o.cv_summary.startswith("3-fold cross-validated roc_auc ")
    assert o.selection.startswith(f"{o.model_kind} won on 3-fold cross-validated roc_auc")
    assert o.metrics["roc_auc"] > 0.7
    assert result.holdout_notes == {"churn": "churn: stratified random 20% of 900 rows (180), seed 7"}
    assert o.status == "promoted", o.reason

    scored = run_scoring(rt, ScoringParams(scored_at=datetime(2026, 3, 2, tzinfo=UTC)))
    (run,) = scored.runs
    assert run.rows_written == len(df)
    with rt.engine.connect() as conn:
        rows = pd.read_sql(sa.text("SELECT entity_id, probability, mode, reasons FROM scores WHERE task = 'churn'"),
                           conn)
    assert sorted(rows["entity_id"]) == sorted(df["customer"])
    assert set(rows["mode"]) == {"global_model"}
    assert rows["probability"].between(0, 1).all() and rows["probability"].nunique() > 100
    # the model ranks: month-to-month contracts score higher
    merged = rows.merge(df, left_on="entity_id", right_on="customer")
    by = merged.groupby("contract")["probability"].mean()
    assert by["month"] > by["two_year"]
    assert rows["reasons"].notna().all()


def test_a_snapshot_task_without_labels_says_which_column(rt, tmp_path):
    df = _export(tmp_path / "data", n=50)
    df.drop(columns="Churn").to_csv(tmp_path / "data" / "customers.csv", index=False)
    run_ingest(rt, IngestParams(received_at=datetime(2026, 3, 1, tzinfo=UTC), data_dir=tmp_path / "data"))
    with pytest.raises(TrainingError, match="task 'churn': no contact has a value in the label column 'Churn'"):
        prepare_snapshot_training(rt.engine, rt.config, "churn")


def test_an_empty_snapshot_says_to_ingest_first(rt):
    with pytest.raises(TrainingError, match="the warehouse has no contacts yet"):
        prepare_snapshot_training(rt.engine, rt.config, "churn")
