"""Segments: rules, columns and behavioural clusters, stored per as-of date."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from journey_ml.config import SegmentationConfig
from journey_ml.segments import ClusterSegmenter, assign_segments, store_memberships
from tests.conftest import table_rows

FIRMO = SegmentationConfig(kind="rules", column="employees", rules=[
    {"name": "smb", "max": 199}, {"name": "mid_market", "min": 200, "max": 1999}, {"name": "enterprise", "min": 2000}])


@pytest.mark.parametrize(("employees", "segment"), [
    (1, "smb"), (199, "smb"), (200, "mid_market"), (1999, "mid_market"), (2000, "enterprise"),
    (None, "other"), ("n/a", "other")])
def test_firmographic_rules(employees, segment):
    frame = pd.DataFrame({"employees": [employees]}, index=["a1"])
    assert assign_segments(frame, FIRMO).tolist() == [segment]


def test_firmographic_rules_on_nullable_integers_keep_the_index():
    frame = pd.DataFrame({"employees": pd.array([5, None, 300, 5000], dtype="Int64")}, index=list("dcba"))
    out = assign_segments(frame, FIRMO)
    assert out.to_dict() == {"d": "smb", "c": "other", "b": "mid_market", "a": "enterprise"}
    assert out.name == "segment"


def test_column_segments_are_slugged_and_missing_column_is_named():
    cfg = SegmentationConfig(kind="column", column="attributes.Plan")
    frame = pd.DataFrame({"attr_plan": ["Pro Plus", None, "basic"]})
    assert assign_segments(frame, cfg).tolist() == ["pro_plus", "other", "basic"]
    with pytest.raises(ValueError, match="segment column 'attributes.Tier' is not a feature"):
        assign_segments(frame, SegmentationConfig(kind="column", column="attributes.Tier"))


def test_clusters_separate_behaviours_with_readable_names():
    rng = np.random.default_rng(0)
    n = 300
    heavy_pricing = pd.DataFrame({"pricing_page_view_30d": rng.poisson(8, n), "content_download_90d": rng.poisson(0.2, n)})
    heavy_content = pd.DataFrame({"pricing_page_view_30d": rng.poisson(0.2, n), "content_download_90d": rng.poisson(9, n)})
    frame = pd.concat([heavy_pricing, heavy_content], ignore_index=True)
    seg = ClusterSegmenter(["pricing_page_view_30d", "content_download_90d"], k=2, random_state=1).fit(frame)
    labels = seg.predict(frame)
    assert set(seg.names_) == {"pricing_page_view_heavy", "content_download_heavy"}
    assert (labels[:n] == "pricing_page_view_heavy").mean() > 0.95
    assert (labels[n:] == "content_download_heavy").mean() > 0.95


def test_clusters_fitted_on_a_sample_segment_like_a_full_fit():
    """Above ``fit_rows`` k-means sees a seeded sample; every row is still assigned, and
    separated behaviours land where a fit on all rows puts them."""
    rng = np.random.default_rng(3)
    n = 4000
    frame = pd.concat([
        pd.DataFrame({"pricing_page_view_30d": rng.poisson(8, n), "content_download_90d": rng.poisson(0.2, n)}),
        pd.DataFrame({"pricing_page_view_30d": rng.poisson(0.2, n), "content_download_90d": rng.poisson(9, n)})],
        ignore_index=True)
    cols = ["pricing_page_view_30d", "content_download_90d"]
    sampled = ClusterSegmenter(cols, k=2, random_state=1, fit_rows=1000).fit(frame)
    full = ClusterSegmenter(cols, k=2, random_state=1, fit_rows=len(frame)).fit(frame)
    assert len(sampled.kmeans_.labels_) == 1000 and len(full.kmeans_.labels_) == len(frame)
    out = sampled.predict(frame)
    assert len(out) == len(frame) and (out == full.predict(frame)).mean() > 0.999
    cfg = SegmentationConfig(kind="clusters", k=2, features=cols, fit_rows=1000)
    assert assign_segments(frame, cfg, random_state=1).equals(out)


def test_memberships_are_stored_per_as_of_and_replaced(engine):
    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    store_memberships(engine, "firmographic", t1, pd.Series({"a1": "smb", "a2": "enterprise"}), "account")
    store_memberships(engine, "firmographic", t2, pd.Series({"a1": "mid_market"}), "account")
    store_memberships(engine, "firmographic", t2, pd.Series({"a1": "mid_market", "a3": "smb"}), "account")
    rows = table_rows(engine, "segment_memberships", "as_of, entity_id")
    assert [(r[2], r[4]) for r in rows] == [("a1", "smb"), ("a2", "enterprise"), ("a1", "mid_market"), ("a3", "smb")]


def test_memberships_keep_awkward_ids_exactly_and_refuse_a_naive_date(engine):
    """PostgreSQL writes memberships by COPY (CSV): quotes, commas, newlines, backslashes
    and an empty-looking segment name must come back as they went in, on both backends."""
    t = datetime(2026, 3, 1, tzinfo=UTC)
    ids = ['a,1', 'a"2', "a\n3", "a\n\\4", " a5 ", "NULL", "\\N"]
    segs = ["smb", "mid,market", 'x"y', "other", "enterprise", "NULL", "\\N"]
    assert store_memberships(engine, "firmographic", t, pd.Series(segs, index=ids), "account") == len(ids)
    rows = table_rows(engine, "segment_memberships", "entity_id")
    assert sorted((r[2], r[4]) for r in rows) == sorted(zip(ids, segs, strict=True))
    assert {r[0] for r in rows} == {"firmographic"} and {r[3] for r in rows} == {"account"}
    assert {str(r[1])[:19] for r in rows} == {"2026-03-01 00:00:00"}
    assert store_memberships(engine, "firmographic", t, pd.Series([], dtype=object), "account") == 0
    assert table_rows(engine, "segment_memberships", "entity_id") == []
    with pytest.raises(Exception, match="naive datetime"):
        store_memberships(engine, "firmographic", datetime(2026, 3, 2), pd.Series({"a": "smb"}), "account")
