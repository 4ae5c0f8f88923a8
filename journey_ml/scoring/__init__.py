"""Batch scoring: probabilities, bands, reasons, next-best actions and a fallback ladder
that never goes dark; buying-committee views of accounts."""

from journey_ml.scoring.actions import choose_action, in_holdout
from journey_ml.scoring.batch import (
           ScoreBatch,
           ScoreRunResult,
           SegmentRun,
           band_of,
           compute_scores,
           score_task,
)
from journey_ml.scoring.committee import CommitteeView, committee_view
from journey_ml.scoring.ladder import MODES, ModelCache, clear_model_cache, open_registry
from journey_ml.scoring.reasons import build_reasons, reason_text

__all__ = ["score_task", "compute_scores", "ScoreBatch", "ScoreRunResult", "SegmentRun", "band_of",
           "committee_view", "CommitteeView", "choose_action", "in_holdout", "build_reasons",
           "reason_text", "MODES", "ModelCache", "clear_model_cache", "open_registry"]
