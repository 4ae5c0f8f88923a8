"""The simulator's change in what converts (``conversion_shift_from``), on the files it writes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from journey_ml.simulate import SimulationParams, _shift, simulate

SHIFT = date(2025, 11, 1)
PARAMS = SimulationParams(accounts=500, seed=4, end=date(2026, 6, 30), dirty_rate=0.0)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("shift")
    simulate(PARAMS, root / "before")
    simulate(SimulationParams(**{**PARAMS.__dict__, "conversion_shift_from": SHIFT}), root / "after")
    return root / "before", root / "after"


def _sales(out: Path) -> pd.DataFrame:
    s = pd.read_csv(out / "sales/activities.csv", dtype=str)
    s["at"] = pd.to_datetime(s["date"], utc=True, format="ISO8601")
    return s


def _product(out: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted((out / "product").glob("*.parquet"))])


def _wins(s: pd.DataFrame) -> pd.DataFrame:
    return s[s["type"] == "closed_won"].set_index("account_id")["at"]


def test_off_by_default_and_history_before_the_shift_is_kept(worlds) -> None:
    before, after = worlds
    assert PARAMS.conversion_shift_from is None
    shift = pd.Timestamp(SHIFT, tz="UTC")
    wb, wa = _wins(_sales(before)), _wins(_sales(after))
    assert wb[wb < shift].sort_index().equals(wa[wa < shift].sort_index())
    # the files of an unshifted world are byte-identical to the same parameters simulated again
    assert (before / "crm/accounts.csv").read_bytes() == (after / "crm/accounts.csv").read_bytes()


def test_sales_led_wins_after_the_shift_stall_into_losses_at_the_same_time(worlds) -> None:
    before, after = worlds
    shift = pd.Timestamp(SHIFT, tz="UTC")
    wb, sa = _wins(_sales(before)), _sales(after)
    due = wb[wb >= shift]
    won_after = set(_wins(sa).index)
    stalled = [a for a in due.index if a not in won_after]
    lost = sa[sa["type"] == "closed_lost"].set_index("account_id")["at"]
    truth = pd.read_csv(after / "truth/accounts_truth.csv", dtype=str).set_index("account_id")
    dark = set(truth.index[truth["dead_end_at"].notna()])  # went dark before the decision (the dead end)
    assert len(due) >= 20
    assert abs(len(stalled) / len(due) - _shift.STALL_SHARE) < 0.2, (len(stalled), len(due))
    for a in [a for a in stalled if a not in dark]:  # the deal ends as closed_lost on the day it would have been won
        assert lost.loc[[a]].eq(due.loc[a]).any(), a


def test_self_serve_buyers_use_the_product_first_and_never_meet_sales(worlds) -> None:
    before, after = worlds
    shift = pd.Timestamp(SHIFT, tz="UTC")
    wb, sa, prod = _wins(_sales(before)), _sales(after), _product(after)
    wa = _wins(sa)
    new = wa[(wa >= shift) & ~wa.index.isin(wb.index)]
    assert len(new) >= 15, len(new)  # a new way to convert, as big as the sales-led one was
    prod["ts"] = pd.to_datetime(prod["ts"], utc=True)
    first_use = prod[prod["event"] == "login"].groupby("account_id")["ts"].min()
    deal = sa[sa["type"].isin(["demo_held", "proposal_sent", "negotiation"])].groupby("account_id")["at"].min()
    for a, at in new.items():
        assert a in first_use.index and first_use[a] >= shift, a
        gap = (at - first_use[a]).days
        assert 0 <= gap <= _shift.FREE_DAYS[1] + 1, (a, gap)  # first login (Poisson) after the workspace opened
        assert not (a in deal.index and deal[a] < at), a  # no demo, proposal or negotiation before it


def test_shift_outside_the_period_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"conversion_shift_from \(2027-01-01\) must lie within"):
        simulate(SimulationParams(accounts=10, conversion_shift_from=date(2027, 1, 1)), tmp_path)
