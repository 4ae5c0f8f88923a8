"""Reading the simulator's ground truth back (for checks and the demo; never ingested)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from journey_ml.simulate._vocab import DEAD_END_EXIT, INTEGRATIONS, WEB_EVENTS

DEAD_END_STEP = WEB_EVENTS[INTEGRATIONS]


@dataclass(frozen=True)
class DeadEnd:
    """The simulated dead end as of T: visitors, visitors gone dark (silent for a gap)."""

    step: str
    visitors: int
    gone_dark: int
    dark_share_of_non_buyers: float  # the simulator's DEAD_END_EXIT

    @property
    def exit_rate(self) -> float:
        return self.gone_dark / self.visitors if self.visitors else float("nan")


def dead_end(out_dir: Path, as_of: datetime, gap_days: float, lookback_days: float | None = None) -> DeadEnd:
    """The exit rate of the integrations page by construction, from ``truth/accounts_truth.csv``:
    visits before T (and within ``lookback_days`` of it), and those after which the account
    went dark at least ``gap_days`` before T."""
    t = pd.read_csv(Path(out_dir) / "truth" / "accounts_truth.csv")
    visit = pd.to_datetime(t["integrations_visit_at"], utc=True, format="ISO8601")
    dark = pd.to_datetime(t["dead_end_at"], utc=True, format="ISO8601")
    seen = visit < pd.Timestamp(as_of)
    if lookback_days is not None:
        seen &= visit >= pd.Timestamp(as_of) - timedelta(days=lookback_days)
    gone = seen & (dark < pd.Timestamp(as_of) - timedelta(days=gap_days))
    return DeadEnd(DEAD_END_STEP, int(seen.sum()), int(gone.sum()), DEAD_END_EXIT)


__all__ = ["DeadEnd", "dead_end", "DEAD_END_STEP"]
