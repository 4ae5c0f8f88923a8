"""`build_features` with a memory, for one run of several steps over the same data.

The daily cycle builds a task's features as of T in its features step, again to score
(with the production model's feature set) and again to monitor. At a million entities each
build is most of a minute. A `FeatureMemo` is called exactly like `build_features`; the
same (warehouse, task, T, feature set) is built once and every caller gets its own copy
of the frame. It must not outlive the data it read: the cycle makes one per run, after
ingestion.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from datetime import datetime

from sqlalchemy import Engine

from journey_ml.config import JourneyConfig
from journey_ml.features.builder import FeatureFrame, build_features
from journey_ml.features.declaration import FeatureSet


class FeatureMemo:
    """A drop-in for `build_features` that keeps the ``keep`` newest frames (thread-safe;
    a frame is built once even when two threads ask for it together). A call without a
    feature set declares one from the data each time, as `build_features` does, and is
    not kept."""

    def __init__(self, keep: int = 2):
        self.keep = keep
        self.built = 0
        self.reused = 0
        self._frames: OrderedDict[tuple, FeatureFrame] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, engine: Engine, config: JourneyConfig, task_name: str, as_of: datetime,
                 feature_set: FeatureSet | None = None) -> FeatureFrame:
        if feature_set is None:
            return build_features(engine, config, task_name, as_of)
        key = (engine.url.render_as_string(hide_password=True), task_name, as_of,
               feature_set.key)
        with self._lock:
            ff = self._frames.get(key)
            if ff is None:
                ff = build_features(engine, config, task_name, as_of, feature_set=feature_set)
                self.built += 1
                self._frames[key] = ff
                while len(self._frames) > self.keep:
                    self._frames.popitem(last=False)
            else:
                self.reused += 1
                self._frames.move_to_end(key)
        return dataclasses.replace(ff, frame=ff.frame.copy())


__all__ = ["FeatureMemo"]
