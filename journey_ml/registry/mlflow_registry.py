"""The registry adapter: MLflow's model registry, aliases only, with a ledger in the warehouse.

Every model of a task's segment is the registered model ``journey-<task>-<segment>``; each
logged scorer (XGBoost or rules) is a version of it, served through
``models:/journey-<task>-<segment>@production``. Registered model stages are not used.

Everything here talks to MLflow through one ``MlflowClient`` bound to the adapter's tracking
URI (never MLflow's process-wide "current" tracking URI or active run), so several adapters,
threads and stores can coexist. Alias moves are serialised per model by a warehouse lock and
recorded in the alias ledger in the same transaction (see :mod:`journey_ml.registry.ledger`).

Integrity: when a version is logged, a SHA-256 digest of its artifact files is stored as the
version tag ``journey.digest``; loading and promoting re-compute it on the downloaded files
before anything is deserialised and refuse a mismatch with :class:`CorruptModel`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from mlflow.artifacts import download_artifacts
from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.tracking import MlflowClient
from sqlalchemy import Connection, Engine

from journey_ml.registry import ledger
from journey_ml.registry._gate import evaluate_gate
from journey_ml.registry._types import (
    MODEL_PREFIX,
    PRODUCTION,
    STAGING,
    AliasMoveInfo,
    CorruptModel,
    GateDecision,
    LoadedModel,
    ModelNotFound,
    ModelSummary,
    ModelVersionInfo,
    NoChange,
    NothingToRollBack,
    model_name,
    split_model_name,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

DIGEST_TAG = "journey.digest"
KIND_TAG = "journey.kind"
TASK_TAG = "journey.task"
SEGMENT_TAG = "journey.segment"
PROMOTED_AT_TAG = "journey.promoted_at"
PROMOTION_REASON_TAG = "journey.promotion_reason"
# files an artifact download may add that are not part of what was logged
_DIGEST_IGNORED = frozenset({"registered_model_meta"})
_TRANSIENT_CODES = frozenset({"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED",
                              "DEADLINE_EXCEEDED", "ABORTED"})
_TRANSIENT_TEXT = ("database is locked", "deadlock detected", "could not serialize",
                   "connection refused", "connection reset", "server closed the connection",
                   "timed out", "temporarily unavailable")
_TAG_MAX = 5000


def tree_digest(path: str | Path) -> str:
    """SHA-256 over a model folder: every file's relative path and content, in path order."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"not a model folder: {root}")
    outer = hashlib.sha256()
    for f in sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix()):
        rel = f.relative_to(root).as_posix()
        if rel in _DIGEST_IGNORED:
            continue
        inner = hashlib.sha256()
        with f.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                inner.update(chunk)
        outer.update(f"{rel}\0{inner.hexdigest()}\n".encode())
    return outer.hexdigest()


def _code(e: BaseException) -> str | None:
    return getattr(e, "error_code", None) if isinstance(e, MlflowException) else None


def _is_transient(e: BaseException) -> bool:
    if isinstance(e, (ConnectionError, TimeoutError, sa.exc.OperationalError)):
        return True
    if isinstance(e, MlflowException):
        if _code(e) in _TRANSIENT_CODES:
            return True
        text = str(e).lower()
        return _code(e) in ("INTERNAL_ERROR", "BAD_REQUEST") and any(t in text for t in _TRANSIENT_TEXT)
    try:
        import requests

        return isinstance(e, (requests.ConnectionError, requests.Timeout))
    except ImportError:  # pragma: no cover - requests ships with mlflow
        return False


def _not_found(e: BaseException) -> bool:
    return _code(e) == "RESOURCE_DOES_NOT_EXIST"


def _utc(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: pass a timezone-aware (UTC) time")
    return at.astimezone(UTC)


def _default_artifact_location(tracking_uri: str) -> str | None:
    """Artifacts of a SQLite tracking store live beside its file (not in ./mlruns)."""
    db = _sqlite_file(tracking_uri)
    return (db.parent / "mlartifacts").as_uri() if db is not None else None


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite:"):
        return None
    db = sa.engine.make_url(url).database
    return Path(db).expanduser().resolve() if db and db != ":memory:" else None


def _as_uri(location: str) -> str:
    return location if "://" in location or location.startswith("file:") else Path(location).resolve().as_uri()


class Registry:
    """The model registry of journey-ml: log, gate, promote, roll back, list, load."""

    def __init__(self, tracking_uri: str, engine: Engine, experiment: str = "journey-ml",
                 actor: str = "journey-ml", *, artifact_location: str | None = None,
                 registry_uri: str | None = None, retries: int = 4, backoff: float = 0.2):
        wh = _sqlite_file(engine.url.render_as_string(hide_password=False))
        if wh is not None and wh == _sqlite_file(tracking_uri):
            # the alias lock holds the warehouse file's write lock while MLflow writes the alias
            raise ValueError(f"the warehouse and the MLflow tracking store must be different "
                             f"SQLite files (both are {wh})")
        self.tracking_uri = tracking_uri
        self.engine = engine
        self.experiment = experiment
        self.actor = actor
        self.artifact_location = (_as_uri(artifact_location) if artifact_location
                                  else _default_artifact_location(tracking_uri))
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)
        self.retries = max(int(retries), 1)
        self.backoff = backoff
        self._experiment_id: str | None = None

    # --- plumbing -------------------------------------------------------------------------

    def _retry(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call an MLflow function, retrying transient errors with exponential backoff."""
        for attempt in range(self.retries):
            try:
                return fn(*args, **kwargs)
            except Exception as e:
                if attempt == self.retries - 1 or not _is_transient(e):
                    raise
                delay = self.backoff * (2 ** attempt) * (1 + random.random() / 2)
                log.warning("transient MLflow error in %s (%s); retrying in %.2fs",
                            getattr(fn, "__name__", fn), e, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def experiment_id(self) -> str:
        """The experiment models are logged to (created, with its artifact location, if new)."""
        if self._experiment_id is None:
            exp = self._retry(self.client.get_experiment_by_name, self.experiment)
            if exp is None:
                try:
                    eid = self._retry(self.client.create_experiment, self.experiment,
                                      artifact_location=self.artifact_location)
                except MlflowException as e:
                    if _code(e) != "RESOURCE_ALREADY_EXISTS":
                        raise
                    eid = self._retry(self.client.get_experiment_by_name, self.experiment).experiment_id
            else:
                eid = exp.experiment_id
                if exp.lifecycle_stage == "deleted":
                    self._retry(self.client.restore_experiment, eid)
            self._experiment_id = eid
        return self._experiment_id

    def _ensure_registered_model(self, name: str, task: str, segment: str) -> None:
        try:
            self._retry(self.client.create_registered_model, name,
                        tags={TASK_TAG: task, SEGMENT_TAG: segment},
                        description=f"journey-ml model of task {task!r}, segment {segment!r}")
        except MlflowException as e:
            if _code(e) != "RESOURCE_ALREADY_EXISTS":
                raise

    def _info(self, mv, aliases: dict[str, int] | None = None) -> ModelVersionInfo:
        """Typed info of an MLflow ModelVersion; ``aliases`` (alias -> version) overrides the
        entity's own list, which MLflow's version search leaves empty."""
        tags = dict(mv.tags or {})
        own = ([a for a, v in aliases.items() if v == int(mv.version)] if aliases is not None
               else list(mv.aliases or []))
        return ModelVersionInfo(
            name=mv.name, version=int(mv.version), run_id=mv.run_id or None,
            kind=tags.get(KIND_TAG), digest=tags.get(DIGEST_TAG),
            aliases=sorted(own),
            created_at=datetime.fromtimestamp((mv.creation_timestamp or 0) / 1000, UTC),
            tags=tags, source=mv.source)

    def _version(self, name: str, version: int):
        try:
            return self._retry(self.client.get_model_version, name, str(int(version)))
        except MlflowException as e:
            if _not_found(e):
                raise ModelNotFound(f"model {name} has no version {version}", name, version) from None
            raise

    def _alias(self, name: str, alias: str):
        """The version an alias points to (MLflow entity), or None (no model or no alias)."""
        try:
            return self._retry(self.client.get_model_version_by_alias, name, alias)
        except MlflowException as e:
            if _not_found(e) or _code(e) == "INVALID_PARAMETER_VALUE":
                return None
            raise

    def _versions(self, name: str) -> list:
        out, token = [], None
        while True:
            page = self._retry(self.client.search_model_versions, f"name = '{name}'",
                               max_results=1000, page_token=token)
            out.extend(page)
            token = page.token
            if not token:
                return out

    # --- logging a run ----------------------------------------------------------------------

    def log_run(self, run_name: str, *, tags: dict[str, str], params: dict[str, Any],
                metrics: dict[str, float], artifacts: str | Path | None = None,
                artifact_path: str = "report") -> str:
        """One finished run of the adapter's experiment: tags, parameters (values cut to
        6,000 characters), metrics (NaN left out) and the files of ``artifacts`` under
        ``artifact_path``. Returns the run id."""
        import math

        run = self._retry(self.client.create_run, self.experiment_id, run_name=run_name, tags=tags)
        rid = run.info.run_id
        now_ms = int(time.time() * 1000)
        self._retry(self.client.log_batch, rid,
                    metrics=[Metric(k, float(v), now_ms, 0) for k, v in metrics.items()
                             if v is not None and not math.isnan(v)],
                    params=[Param(k, str(v)[:6000]) for k, v in params.items()])
        if artifacts is not None:
            self._retry(self.client.log_artifacts, rid, str(artifacts), artifact_path)
        self._retry(self.client.set_terminated, rid)
        return rid

    def log_journey_run(self, task: str, segment: str, as_of: datetime, *, metrics: dict[str, float],
                        params: dict[str, Any], files: list[Path]) -> str:
        """One journey-mapping run of a task and segment: its figures as metrics, the map
        (HTML + JSON) as artifacts under ``journey_map/``. Returns the run id."""
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            for f in files:
                shutil.copy2(f, Path(d) / Path(f).name)
            return self.log_run(f"journeys-{task}-{segment}",
                                tags={"journey.kind": "journey_map", "journey.task": task, "journey.segment": segment,
                                      "journey.as_of": _utc(as_of).isoformat()},
                                params=params, metrics={k: float(v) for k, v in metrics.items() if v is not None},
                                artifacts=d, artifact_path="journey_map")

    # --- logging a model --------------------------------------------------------------------

    def log_model(self, scorer, *, task: str, segment: str, run_id: str | None = None,
                  feature_set: dict | None = None, metrics: dict[str, float] | None = None,
                  params: dict | None = None, tags: dict[str, str] | None = None,
                  signature: ModelSignature | None = None, set_staging: bool = True,
                  at: datetime | None = None) -> ModelVersionInfo:
        """Log ``scorer`` as a pyfunc model, register it as a new version, alias it ``staging``.

        The model goes into ``run_id`` (or a new run of the adapter's experiment): explicit
        pinned requirements, a signature from ``scorer.feature_names`` (or ``signature``), a
        synthetic input example. ``metrics`` are logged to the run, linked to the model;
        ``params`` to the logged model (and to the run when the run is new); ``tags`` to the
        model version. The version gets the tags journey.digest, journey.kind, journey.task,
        journey.segment. With ``set_staging`` the ``staging`` alias moves to it (ledger
        action "stage").
        """
        from journey_ml.models.pyfunc import save_pyfunc

        name = model_name(task, segment)
        kind = getattr(scorer, "kind", None) or type(scorer).__name__
        when = _utc(at)
        exp_id = self.experiment_id
        self._ensure_registered_model(name, task, segment)
        own_run = run_id is None
        if own_run:
            run = self._retry(self.client.create_run, exp_id, run_name=f"{name}-{kind}",
                              tags={TASK_TAG: task, SEGMENT_TAG: segment, KIND_TAG: kind})
            run_id = run.info.run_id
        str_params = {str(k): str(v)[:6000] for k, v in (params or {}).items()}
        lm = None
        try:
            lm = self._retry(self.client.create_logged_model, exp_id, name=name, source_run_id=run_id,
                             params=str_params or None, model_type=kind,
                             tags={TASK_TAG: task, SEGMENT_TAG: segment, KIND_TAG: kind})
            self._retry(self.client.log_outputs, run_id, [LoggedModelOutput(lm.model_id, step=0)])
            ts = int(when.timestamp() * 1000)
            batch_metrics = [Metric(str(k), float(v), ts, 0, model_id=lm.model_id)
                             for k, v in (metrics or {}).items()]
            batch_params = [Param(k, v) for k, v in str_params.items()] if own_run else []
            if batch_metrics or batch_params:
                self._retry(self.client.log_batch, run_id, metrics=batch_metrics, params=batch_params)
            with tempfile.TemporaryDirectory(prefix="journey-model-") as tmp:
                local = Path(tmp) / "model"
                mlflow_model = Model(artifact_path=lm.artifact_location, model_uuid=lm.model_id,
                                     run_id=run_id, model_id=lm.model_id)
                save_pyfunc(scorer, local, feature_set=feature_set, signature=signature,
                            mlflow_model=mlflow_model)
                digest = tree_digest(local)
                self._retry(self.client.log_model_artifacts, lm.model_id, str(local))
            self._retry(self.client.finalize_logged_model, lm.model_id, LoggedModelStatus.READY)
            version_tags = {**{str(k): str(v)[:_TAG_MAX] for k, v in (tags or {}).items()},
                            DIGEST_TAG: digest, KIND_TAG: kind, TASK_TAG: task, SEGMENT_TAG: segment}
            if feature_set and "version" in feature_set:
                version_tags.setdefault("journey.feature_set_version", str(feature_set["version"]))
            # source: the logged model's artifact location (a models:/<id> source would make
            # MLflow's SQL store look the model up through the process-wide tracking URI)
            mv = self._retry(self.client.create_model_version, name, lm.artifact_location,
                             run_id=run_id, tags=version_tags, model_id=lm.model_id,
                             await_creation_for=0)
        except BaseException:
            # best effort: the original error is what matters
            if lm is not None:
                with contextlib.suppress(Exception):
                    self.client.finalize_logged_model(lm.model_id, LoggedModelStatus.FAILED)
            if own_run:
                with contextlib.suppress(Exception):
                    self.client.set_terminated(run_id, "FAILED")
            raise
        if own_run:
            self._retry(self.client.set_terminated, run_id, "FINISHED")
        version = int(mv.version)
        if set_staging:
            self._move(name, STAGING, version, action="stage", run_id=run_id, at=at,
                       reason=f"logged {kind} version {version}")
        return self._info(self._version(name, version))

    # --- reading ------------------------------------------------------------------------------

    def production(self, task: str, segment: str) -> ModelVersionInfo | None:
        """The version behind ``@production``; None when the model or the alias does not exist."""
        mv = self._alias(model_name(task, segment), PRODUCTION)
        return self._info(mv) if mv is not None else None

    def staging(self, task: str, segment: str) -> ModelVersionInfo | None:
        """The version behind ``@staging``; None when the model or the alias does not exist."""
        mv = self._alias(model_name(task, segment), STAGING)
        return self._info(mv) if mv is not None else None

    def version(self, task: str, segment: str, version: int) -> ModelVersionInfo:
        """One version; raises ModelNotFound."""
        return self._info(self._version(model_name(task, segment), version))

    def _aliases_of(self, name: str) -> dict[str, int]:
        try:
            rm = self._retry(self.client.get_registered_model, name)
        except MlflowException as e:
            if _not_found(e):
                return {}
            raise
        return {a: int(v) for a, v in (rm.aliases or {}).items()}

    def versions(self, task: str, segment: str) -> list[ModelVersionInfo]:
        """Every version of a model, newest first (empty when the model does not exist)."""
        name = model_name(task, segment)
        mvs = self._versions(name)
        aliases = self._aliases_of(name) if mvs else {}
        return sorted((self._info(mv, aliases) for mv in mvs), key=lambda i: -i.version)

    def find_version(self, task: str, segment: str, tags: dict[str, str | None]) -> ModelVersionInfo | None:
        """The newest version whose tags match (a None value: the tag is present, any value)."""
        for info in self.versions(task, segment):
            if all(k in info.tags and (v is None or info.tags[k] == str(v)) for k, v in tags.items()):
                return info
        return None

    def tag_version(self, name: str, version: int, tags: dict[str, str]) -> None:
        """Set tags on a model version (values truncated to MLflow's limit)."""
        for k, v in tags.items():
            self._retry(self.client.set_model_version_tag, name, str(int(version)), k, str(v)[:_TAG_MAX])

    def log_version_artifacts(self, name: str, version: int, local_dir: str | Path,
                              artifact_path: str) -> str | None:
        """Log the files of ``local_dir`` under ``artifact_path`` of a version's run.

        Returns the run id, or None when the version has no run. Raises ModelNotFound.
        """
        mv = self._version(name, version)
        if not mv.run_id:
            return None
        self._retry(self.client.log_artifacts, mv.run_id, str(local_dir), artifact_path)
        return mv.run_id

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of each metric of an MLflow run."""
        return dict(self._retry(self.client.get_run, run_id).data.metrics)

    def history(self, task: str | None = None, segment: str | None = None) -> list[AliasMoveInfo]:
        """Alias moves from the ledger, newest first (all models, a task's, a segment's, or one)."""
        if task is not None and segment is not None:
            return ledger.moves(self.engine, model_name(task, segment))
        return ledger.moves(self.engine, task=task, segment=segment)

    def list_models(self) -> list[ModelSummary]:
        """Every ``journey-*`` registered model with its versions, aliases and scorer kinds."""
        models, token = [], None
        while True:
            page = self._retry(self.client.search_registered_models,
                               filter_string=f"name LIKE '{MODEL_PREFIX}%'", max_results=1000,
                               page_token=token)
            models.extend(page)
            token = page.token
            if not token:
                break
        out = []
        for rm in sorted(models, key=lambda m: m.name):
            versions = self._versions(rm.name)
            aliases = {a: int(v) for a, v in (rm.aliases or {}).items()}
            kinds = {int(mv.version): (mv.tags or {}).get(KIND_TAG, "?") for mv in versions}
            prod = aliases.get(PRODUCTION)
            since = None
            if prod is not None:
                move = ledger.last_move_to(self.engine, rm.name, PRODUCTION, prod)
                if move is not None:
                    since = move.at
                else:
                    tagged = next((mv.tags.get(PROMOTED_AT_TAG) for mv in versions
                                   if int(mv.version) == prod and mv.tags), None)
                    since = datetime.fromisoformat(tagged) if tagged else None
            rm_tags = dict(rm.tags or {})
            task, segment = split_model_name(rm.name)
            out.append(ModelSummary(
                name=rm.name, task=rm_tags.get(TASK_TAG, task), segment=rm_tags.get(SEGMENT_TAG, segment),
                versions=sorted(kinds), production_version=prod, production_since=since,
                staging_version=aliases.get(STAGING), kinds=dict(sorted(kinds.items())),
                holdout_auc={int(mv.version): _holdout_auc(mv.tags or {}) for mv in versions
                             if _holdout_auc(mv.tags or {})}))
        return out

    # --- integrity and loading ------------------------------------------------------------------

    def _download_verified(self, mv, dst: str) -> Path:
        """Download a version's artifacts into ``dst`` and check them against journey.digest."""
        name, version = mv.name, int(mv.version)
        expected = (mv.tags or {}).get(DIGEST_TAG)
        if not expected:
            raise CorruptModel(name, version, f"no {DIGEST_TAG} tag: not logged by journey-ml")
        uri = self._retry(self.client.get_model_version_download_uri, name, str(version))
        try:
            local = self._retry(download_artifacts, artifact_uri=uri, dst_path=dst,
                                tracking_uri=self.tracking_uri)
        except (FileNotFoundError, MlflowException) as e:
            if isinstance(e, MlflowException) and not _not_found(e):
                raise
            raise CorruptModel(name, version, f"artifacts missing at {uri}") from None
        actual = tree_digest(local)
        if actual != expected:
            raise CorruptModel(name, version, f"expected sha256 {expected[:16]}..., found {actual[:16]}...")
        return Path(local)

    def verify(self, task: str, segment: str, version: int) -> ModelVersionInfo:
        """Check a version's artifacts against its digest; raises CorruptModel or ModelNotFound."""
        mv = self._version(model_name(task, segment), version)
        with tempfile.TemporaryDirectory(prefix="journey-verify-") as tmp:
            self._download_verified(mv, tmp)
        return self._info(mv)

    def load(self, task: str, segment: str, alias: str = PRODUCTION, *,
             version: int | None = None) -> LoadedModel:
        """The pyfunc model, its scorer and version info behind an alias (or a version).

        The downloaded artifacts are checked against the version's digest before anything is
        deserialised: raises CorruptModel on a mismatch, ModelNotFound when there is no such
        model, version or alias.
        """
        import mlflow.pyfunc

        from journey_ml.models.pyfunc import unwrap_scorer

        name = model_name(task, segment)
        if version is not None:
            mv = self._version(name, version)
        else:
            mv = self._alias(name, alias)
            if mv is None:
                raise ModelNotFound(f"model {name} has no @{alias} version (or does not exist)",
                                    name, alias=alias)
        with tempfile.TemporaryDirectory(prefix="journey-load-") as tmp:
            local = self._download_verified(mv, tmp)
            pyfunc = mlflow.pyfunc.load_model(str(local))
            scorer = unwrap_scorer(pyfunc)
        return LoadedModel(pyfunc=pyfunc, scorer=scorer, info=self._info(mv))

    # --- alias moves ------------------------------------------------------------------------------

    def evaluate_gate(self, candidate_metric: float, production_metric: float | None, metric: str,
                      margin: float, *, baselines: dict[str, float] | None = None,
                      global_metric: float | None = None, selection: str | None = None) -> GateDecision:
        """Pure: see `journey_ml.registry._gate.evaluate_gate` (baselines, global, production)."""
        return evaluate_gate(candidate_metric, production_metric, metric, margin, baselines=baselines,
                             global_metric=global_metric, selection=selection)

    def _set_alias(self, name: str, alias: str, version: int | None) -> None:
        if version is None:
            self._retry(self.client.delete_registered_model_alias, name, alias)
        else:
            self._retry(self.client.set_registered_model_alias, name, alias, str(version))

    def _move(self, name: str, alias: str, target: int | Callable[[Connection, int | None], int], *,
              action: str, reason: str, run_id: str | None, at: datetime | None,
              actor: str | None = None, verify: bool = False) -> AliasMoveInfo:
        """Move ``alias`` of ``name`` under the per-model lock and record it in the ledger.

        ``target`` is a version or a function of (ledger connection, current version) that
        picks one under the lock. The alias write, the version tags and the ledger row happen
        while the lock is held; if the tags or the ledger row fail, the alias is put back.
        """
        moved_from: list[int | None] = []
        try:
            with ledger.locked(self.engine, name) as conn:
                cur = self._alias(name, alias)
                current = int(cur.version) if cur is not None else None
                to_version = target(conn, current) if callable(target) else int(target)
                if to_version == current:  # a no-op must not enter the ledger (it would break rollback)
                    raise NoChange(name, alias, to_version)
                mv = self._version(name, to_version)
                if verify:
                    with tempfile.TemporaryDirectory(prefix="journey-verify-") as tmp:
                        self._download_verified(mv, tmp)
                when = _utc(at)  # under the lock: ledger times follow the order of the moves
                self._set_alias(name, alias, to_version)
                moved_from.append(current)
                if alias == PRODUCTION:
                    self.tag_version(name, to_version, {PROMOTED_AT_TAG: when.isoformat(),
                                                        PROMOTION_REASON_TAG: reason})
                return ledger.record(conn, model_name=name, alias=alias, from_version=current,
                                     to_version=to_version, action=action, reason=reason,
                                     actor=actor or self.actor, at=when, run_id=run_id)
        except BaseException:
            if moved_from:
                try:  # the ledger is the record: no alias move without its row
                    self._set_alias(name, alias, moved_from[0])
                except Exception:  # noqa: BLE001 - report the original error
                    log.exception("could not put alias %s of %s back to %s", alias, name, moved_from[0])
            raise

    def promote(self, task: str, segment: str, version: int, *, reason: str, run_id: str | None = None,
                action: str = "promote", alias: str = PRODUCTION, actor: str | None = None,
                at: datetime | None = None) -> AliasMoveInfo:
        """Point ``@production`` (or ``alias``) at ``version``, after checking its digest.

        ``action`` is what the ledger calls the move (promote, fallback, restore...). Raises
        ModelNotFound for an unknown model or version, CorruptModel for a corrupted artifact,
        NoChange (writing nothing) when the alias already points at ``version``.
        """
        name = model_name(task, segment)
        self._version(name, version)  # a clear ModelNotFound before taking the lock
        return self._move(name, alias, int(version), action=action, reason=reason, run_id=run_id,
                          at=at, actor=actor, verify=True)

    def retire(self, task: str, segment: str, *, reason: str, run_id: str | None = None,
               actor: str | None = None, at: datetime | None = None) -> AliasMoveInfo:
        """Remove ``@production`` of a segment model (ledger action ``retire``), so that the
        scoring ladder serves the segment with the global model. Raises ModelNotFound when the
        model has no production version."""
        name = model_name(task, segment)
        with ledger.locked(self.engine, name) as conn:
            cur = self._alias(name, PRODUCTION)
            if cur is None:
                raise ModelNotFound(f"{name} has no production version to retire", name=name, alias=PRODUCTION)
            current = int(cur.version)
            when = _utc(at)
            self._set_alias(name, PRODUCTION, None)
            try:
                return ledger.record(conn, model_name=name, alias=PRODUCTION, from_version=current,
                                     to_version=None, action="retire", reason=reason,
                                     actor=actor or self.actor, at=when, run_id=run_id)
            except BaseException:
                self._set_alias(name, PRODUCTION, current)
                raise

    def rollback(self, task: str, segment: str, *, to_version: int | None = None,
                 reason: str = "manual rollback", run_id: str | None = None, actor: str | None = None,
                 at: datetime | None = None) -> AliasMoveInfo:
        """Put ``@production`` back on the version it replaced (or on ``to_version``).

        The previous version is the ``from_version`` of the newest ledger move onto the current
        production version that was not itself a rollback, so rolling back twice walks further
        back instead of undoing the first rollback. Raises NothingToRollBack when there is no
        production version or no earlier one, ModelNotFound, CorruptModel.
        """
        name = model_name(task, segment)

        def choose(conn: Connection, current: int | None) -> int:
            if to_version is not None:
                if current == int(to_version):
                    raise NothingToRollBack(f"version {to_version} of {name} is already production")
                return int(to_version)
            if current is None:
                raise NothingToRollBack(f"{name} has no production version: nothing to roll back")
            last = ledger.last_move_to(conn, name, PRODUCTION, current, exclude_actions=("rollback",))
            if last is None or last.from_version is None or last.from_version == current:
                raise NothingToRollBack(f"{name}: no version before production v{current} in the "
                                        "ledger; nothing to roll back to (use --to-version)")
            return last.from_version

        return self._move(name, PRODUCTION, choose, action="rollback", reason=reason, run_id=run_id,
                          at=at, actor=actor, verify=True)


def _holdout_auc(tags: dict[str, str]) -> dict[str, str]:
    """{"model": AUC, <baseline>: AUC, "global": AUC} from a version's journey.* AUC tags."""
    out = {}
    if "journey.test.roc_auc" in tags:
        out["model"] = tags["journey.test.roc_auc"]
    for k, v in sorted(tags.items()):
        if k.startswith("journey.baseline.") and k.endswith(".roc_auc"):
            out[k[len("journey.baseline."):-len(".roc_auc")]] = v
    if "journey.global_on_segment.roc_auc" in tags:
        out["global"] = tags["journey.global_on_segment.roc_auc"]
    return out


__all__ = ["Registry", "tree_digest", "DIGEST_TAG", "KIND_TAG", "PROMOTED_AT_TAG",
           "PROMOTION_REASON_TAG"]
