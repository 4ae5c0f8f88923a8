"""A cached view of the model registry for the API: no MLflow call on the request path.

The fallback ladder asks a registry two questions per segment, ``production(task,
segment)`` and ``find_version(task, segment, tags)``, and loads versions through
``load``. `RegistryView` answers the questions from memory; `refresh()` (run by a
background poller every ``poll_seconds``) asks the real registry again and, when
``@production`` moved, first loads the new version into the shared ModelCache and only
then publishes the new answer, so requests switch to a model that is ready.

A registry outage during a refresh keeps the last known good answers (and the models
already loaded). A question never asked before is passed through to the registry, unless
the last refresh failed: then it fails at once and the ladder degrades to built-in rules,
as batch scoring does when the registry is unreachable.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from journey_ml.config import JourneyConfig
from journey_ml.registry._types import model_name
from journey_ml.scoring.ladder import RULES_HASH_TAG, ModelCache, one_line
from journey_ml.segments import candidate_segments

log = logging.getLogger(__name__)
_MISS = object()


class RegistryDown(RuntimeError):
    """The registry failed its last refresh and the question is not cached."""


@dataclass
class ViewStatus:
    """What the view knows: when it last refreshed, the last error, the versions in use."""

    refreshed_at: datetime | None
    last_error: str | None
    refreshes: int
    failures: int
    production: dict[str, int | None] = field(default_factory=dict)  # model name -> version
    kinds: dict[str, str | None] = field(default_factory=dict)


class RegistryView:
    """Registry stand-in answering ``production``/``find_version`` from memory.

    ``load`` goes to the registry (the ModelCache calls it once per version); a version
    that failed to load is remembered for ``retry_failed_seconds`` so a corrupt artifact
    is not downloaded again on every request.
    """

    def __init__(self, registry, cache: ModelCache, *, retry_failed_seconds: float = 60.0):
        self.registry = registry
        self.cache = cache
        self.tracking_uri = getattr(registry, "tracking_uri", f"view-{id(registry)}")
        self.retry_failed_seconds = retry_failed_seconds
        self._answers: dict[tuple, Any] = {}
        self._failed_loads: dict[tuple, tuple[float, BaseException]] = {}
        self._loaded: set[tuple[str, str, int | None]] = set()
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self.refreshed_at: datetime | None = None
        self.last_error: str | None = None
        self.refreshes = 0
        self.failures = 0

    # --- the registry interface the ladder uses --------------------------------------------

    def production(self, task: str, segment: str):
        return self._answer(("production", task, segment), lambda: self.registry.production(task, segment))

    def find_version(self, task: str, segment: str, tags: dict[str, str | None]):
        key = ("find_version", task, segment, tuple(sorted(tags.items(), key=lambda kv: kv[0])))
        return self._answer(key, lambda: self.registry.find_version(task, segment, tags))

    def load(self, task: str, segment: str, *args, version: int | None = None, **kwargs):
        key = (task, segment, version)
        failed = self._failed_loads.get(key)
        if failed is not None and time.monotonic() - failed[0] < self.retry_failed_seconds:
            raise failed[1]
        try:
            loaded = self.registry.load(task, segment, *args, version=version, **kwargs)
        except Exception as e:
            self._failed_loads[key] = (time.monotonic(), e)
            raise
        self._failed_loads.pop(key, None)
        with self._lock:
            self._loaded.add(key)
        return loaded

    def is_loaded(self, task: str, segment: str, version: int) -> bool:
        """Whether this version was loaded (into the ModelCache) by this view."""
        with self._lock:
            return (task, segment, int(version)) in self._loaded

    def _answer(self, key: tuple, ask):
        with self._lock:
            got = self._answers.get(key, _MISS)
        if got is not _MISS:
            return got
        if self.last_error is not None:
            raise RegistryDown(f"registry unreachable at the last refresh ({self.last_error})")
        got = ask()  # errors propagate: the ladder's reader reports the registry unreachable
        with self._lock:
            self._answers[key] = got
        return got

    # --- refreshing ---------------------------------------------------------------------

    def warm(self, config: JourneyConfig, tasks: list[str] | None = None) -> bool:
        """Ask every question the ladder can ask for ``tasks`` (default: all) and load the
        production models, so the first request needs no registry call. False when the
        registry could not be reached."""
        from journey_ml.scoring.batch import rules_hash

        keys: list[tuple] = []
        for t in tasks or list(config.tasks):
            rh = rules_hash(config, t)
            for seg in candidate_segments(config, t):
                keys.append(("production", t, seg))
                for tags in ([{RULES_HASH_TAG: rh}] if rh else []) + [{RULES_HASH_TAG: None}]:
                    keys.append(("find_version", t, seg, tuple(sorted(tags.items()))))
        with self._lock:
            for k in keys:
                self._answers.setdefault(k, _MISS)
        return self.refresh()

    def refresh(self) -> bool:
        """Re-ask every cached question; load moved production versions before publishing.

        Returns False (keeping every previous answer) when the registry fails.
        """
        with self._refresh_lock:
            with self._lock:
                keys = list(self._answers)
            keys = [k for k in keys if k[0] in ("production", "find_version")]
            fresh: dict[tuple, Any] = {}
            try:
                for k in keys:
                    if k[0] == "production":
                        fresh[k] = self.registry.production(k[1], k[2])
                    else:
                        fresh[k] = self.registry.find_version(k[1], k[2], dict(k[3]))
            except Exception as e:  # noqa: BLE001 - any registry failure: keep the last good answers
                self.failures += 1
                self.last_error = one_line(e)
                log.warning("registry refresh failed (%s): serving the last known models", self.last_error)
                return False
            for k, info in fresh.items():
                if k[0] != "production" or info is None:
                    continue
                with self._lock:
                    old = self._answers.get(k, _MISS)
                if old is not _MISS and old is not None and old.version == info.version:
                    continue
                try:  # load before publishing: requests switch to a model that is ready
                    self.cache.get(self, k[1], k[2], info.version, info.kind)
                except Exception as e:  # noqa: BLE001 - the ladder reports it per request
                    log.warning("%s v%s does not load (%s): the ladder will fall back",
                                info.name, info.version, one_line(e))
                else:
                    if old is not _MISS and old is not None:
                        log.info("%s: production moved v%s -> v%s", info.name, old.version, info.version)
            with self._lock:
                self._answers.update(fresh)
            self.last_error = None
            self.refreshes += 1
            self.refreshed_at = datetime.now(UTC)
            return True

    def status(self) -> ViewStatus:
        with self._lock:
            prod = {k: v for k, v in self._answers.items() if k[0] == "production"}
        return ViewStatus(
            refreshed_at=self.refreshed_at, last_error=self.last_error, refreshes=self.refreshes,
            failures=self.failures,
            production={model_name(k[1], k[2]): (v.version if v not in (None, _MISS) else None)
                        for k, v in sorted(prod.items())},
            kinds={model_name(k[1], k[2]): (v.kind if v not in (None, _MISS) else None)
                   for k, v in sorted(prod.items())})


class Poller:
    """Calls ``view.refresh()`` every ``interval`` seconds in a daemon thread."""

    def __init__(self, view: RegistryView, interval: float):
        self.view = view
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="registry-poller", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.view.refresh()
            except Exception:  # pragma: no cover - refresh catches registry errors itself
                log.exception("registry refresh crashed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


__all__ = ["RegistryView", "RegistryDown", "Poller", "ViewStatus", "candidate_segments"]
