"""Behaviour of the journey simulator, checked on real files it writes."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

import journey_ml
from journey_ml.simulate import SimulationParams, SimulationResult, simulate
from journey_ml.simulate import generator as generator_module

START, END, DRIFT = date(2025, 1, 1), date(2026, 6, 30), date(2025, 10, 1)
MONTHS = [f"{y}-{m:02d}" for y in (2025, 2026) for m in range(1, 13)][:18]
HIGH_INTENT = {"pricing_page_view", "demo_request", "trial_signup", "webinar_attended",
               "sales_call", "demo_held", "proposal_sent"}  # fmt: skip
COLUMNS = {
    "crm/accounts.csv": ["AccountId", "Company", "Industry", "Employees", "AnnualRevenue", "Country",
                         "CreatedDate", "Region", "Plan", "ContractType"],
    "crm/contacts.csv": ["ContactId", "AccountId", "Email", "FullName", "Phone", "Title", "BuyingRole",
                         "OptedOut", "CreatedDate"],
    "email/email_activity.csv": ["activity_id", "ts", "recipient_id", "campaign", "action"],
    "webinars/webinars.csv": ["contact_id", "account_id", "webinar", "status", "event_time"],
    "sales/activities.csv": ["activity_id", "account_id", "contact_id", "type", "date", "amount", "notes"],
    "support/tickets.csv": ["ticket_event_id", "ticket_id", "event_time", "contact_id", "account_id",
                            "priority", "category", "event", "csat"],
    "billing/billing.parquet": ["billing_event_id", "account_id", "event", "ts", "amount", "plan",
                                "renewal_date"],
    "truth/accounts_truth.csv": ["account_id", "segment", "archetype", "true_conversion_propensity",
                                 "converted_at", "customer_from", "true_churn_propensity", "churned_at",
                                 "drifted", "integrations_visit_at", "dead_end_at"],
    **{f"web/web-{m}.jsonl": ["id", "timestamp", "visitor_id", "account", "event", "url", "session_id",
                              "ip", "duration_s"] for m in MONTHS},
    **{f"product/usage-{m}.parquet": ["account_id", "user_id", "ts", "event", "feature"] for m in MONTHS},
}  # fmt: skip
EVENT_FILES = [p for p in COLUMNS if not p.startswith(("crm/", "truth/"))]


# --- helpers ------------------------------------------------------------------------------


def _csv(out: Path, rel: str) -> pd.DataFrame:
    return pd.read_csv(out / rel, dtype=str, keep_default_na=False, na_values=[""])


def _web(out: Path) -> pd.DataFrame:
    frames = []
    for m in MONTHS:
        with open(out / f"web/web-{m}.jsonl") as fh:
            frame = pd.DataFrame(
                [json.loads(line) for line in fh], columns=COLUMNS[f"web/web-{m}.jsonl"]
            )
        frames.append(frame.assign(file=m))
    return pd.concat(frames, ignore_index=True)


def _when(text: pd.Series) -> pd.Series:
    return pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")


def _events(out: Path) -> pd.DataFrame:
    """All event rows of all sources: source, raw timestamp, parsed time, contact, account, event."""
    contacts = _csv(out, "crm/contacts.csv")
    owner = dict(zip(contacts.ContactId, contacts.AccountId, strict=True))
    web = _web(out).drop_duplicates(subset=COLUMNS["web/web-2025-01.jsonl"])  # monthly overlap
    email = _csv(out, "email/email_activity.csv")
    webinars = _csv(out, "webinars/webinars.csv")
    sales = _csv(out, "sales/activities.csv")
    support = _csv(out, "support/tickets.csv")
    billing = pd.read_parquet(out / "billing/billing.parquet")
    product = pd.concat([pd.read_parquet(out / f"product/usage-{m}.parquet") for m in MONTHS])
    parts = [
        ("web", web.timestamp, web.visitor_id, web.account, web.event),
        ("email", email.ts, email.recipient_id, email.recipient_id.map(owner), email.action),
        (
            "webinars",
            webinars.event_time,
            webinars.contact_id,
            webinars.account_id,
            webinars.status,
        ),
        ("sales", sales.date, sales.contact_id, sales.account_id, sales.type),
        ("support", support.event_time, support.contact_id, support.account_id, support.event),
        ("billing", billing.ts.astype(str), None, billing.account_id, billing.event),
        ("product", product.ts.astype(str), product.user_id, product.account_id, product.event),
    ]
    frames = [
        pd.DataFrame({"source": s, "raw": ts.to_numpy(), "contact": None if c is None else c.to_numpy(),
                      "account": a.to_numpy(), "event": e.to_numpy()})
        for s, ts, c, a, e in parts
    ]  # fmt: skip
    events = pd.concat(frames, ignore_index=True)
    events["t"] = _when(events.raw)
    return events


def _truth(out: Path) -> pd.DataFrame:
    truth = _csv(out, "truth/accounts_truth.csv").set_index("account_id")
    for col in ("converted_at", "customer_from", "churned_at"):
        truth[col] = _when(truth[col])
    return truth


def _clean(events: pd.DataFrame) -> pd.DataFrame:
    start, end = pd.Timestamp(START, tz="UTC"), pd.Timestamp(END, tz="UTC") + pd.Timedelta(days=1)
    return events[
        events.t.notna() & (events.t >= start) & (events.t < end) & events.account.notna()
    ]


def _text_files(out: Path) -> dict[str, bytes]:
    return {p: (out / p).read_bytes() for p in COLUMNS if not p.endswith(".parquet")}


def _parquet_tables(out: Path) -> dict[str, object]:
    return {p: pq.read_table(out / p) for p in COLUMNS if p.endswith(".parquet")}


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drifted(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[SimulationResult, pd.DataFrame, pd.DataFrame]:
    """A 400-account run with drift, shared by the behaviour tests."""
    params = SimulationParams(accounts=400, seed=11, drift_from=DRIFT, dirty_rate=0.01)
    result = simulate(params, tmp_path_factory.mktemp("drifted"))
    return result, _events(result.out_dir), _truth(result.out_dir)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return simulate(SimulationParams(accounts=150, seed=7), tmp_path_factory.mktemp("small"))


# --- reproducibility ----------------------------------------------------------------------


def test_same_seed_gives_identical_files(small: SimulationResult, tmp_path: Path) -> None:
    again = simulate(SimulationParams(accounts=150, seed=7), tmp_path)
    assert again.files == small.files
    for rel in COLUMNS:
        assert (tmp_path / rel).read_bytes() == (small.out_dir / rel).read_bytes(), rel


def test_different_seed_gives_different_files(small: SimulationResult, tmp_path: Path) -> None:
    other = simulate(SimulationParams(accounts=150, seed=8), tmp_path)
    assert _text_files(other.out_dir) != _text_files(small.out_dir)
    assert (tmp_path / "crm/accounts.csv").read_bytes() != (
        small.out_dir / "crm/accounts.csv"
    ).read_bytes()


def test_output_does_not_depend_on_chunk_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generator_module, "_BLOCK_ACCOUNTS", 40)
    calls: list[tuple[int, int]] = []
    params = SimulationParams(accounts=130, seed=3, drift_from=DRIFT)
    one = simulate(
        replace(params, chunk_accounts=40),
        tmp_path / "one",
        progress=lambda d, t: calls.append((d, t)),
    )
    two = simulate(replace(params, chunk_accounts=1_000), tmp_path / "two")
    assert calls == [(40, 130), (80, 130), (120, 130), (130, 130)]
    assert one.files == two.files and one.dirty_rows == two.dirty_rows
    assert _text_files(one.out_dir) == _text_files(two.out_dir)
    a, b = _parquet_tables(one.out_dir), _parquet_tables(two.out_dir)
    assert all(a[p].equals(b[p]) for p in a)


# --- files and columns --------------------------------------------------------------------


def test_writes_exactly_the_listed_files_with_their_columns(small: SimulationResult) -> None:
    out = small.out_dir
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == set(COLUMNS) == set(small.files)
    for rel, columns in COLUMNS.items():
        if rel.endswith(".parquet"):
            assert pq.read_schema(out / rel).names == columns, rel
        elif rel.endswith(".jsonl"):
            first = (out / rel).read_text().splitlines()[0]
            assert list(json.loads(first)) == columns, rel
        else:
            assert (out / rel).read_text().splitlines()[0].split(",") == columns, rel


def test_row_counts_are_reported(small: SimulationResult) -> None:
    out = small.out_dir
    for rel, rows in small.files.items():
        if rel.endswith(".parquet"):
            assert pq.read_metadata(out / rel).num_rows == rows, rel
        elif rel.endswith(".jsonl"):
            assert len((out / rel).read_text().splitlines()) == rows, rel
        else:
            assert len(_csv(out, rel)) == rows, rel
    assert small.events == sum(small.files[p] for p in EVENT_FILES)
    assert small.accounts == small.files["crm/accounts.csv"] == 150
    assert small.contacts == small.files["crm/contacts.csv"]
    assert 100 <= small.events / small.accounts <= 250


def test_mapped_columns_of_the_default_config_exist(small: SimulationResult) -> None:
    config = yaml.safe_load((Path(journey_ml.__file__).parent / "default_config.yaml").read_text())
    for source in config["sources"]:
        path = source["path"]
        files = [p for p in COLUMNS if p.startswith(path)] if path.endswith("/") else [path]
        assert files, path
        for rel in files:
            missing = set(source["columns"].values()) - set(COLUMNS[rel])
            assert not missing, (source["name"], rel, missing)


def test_event_names_come_from_the_taxonomy_except_the_bad_rows(drifted) -> None:
    result, events, _ = drifted
    taxonomy = yaml.safe_load(
        (Path(journey_ml.__file__).parent / "default_config.yaml").read_text()
    )["taxonomy"]
    unknown = events[~events.event.isin(taxonomy)]
    assert 0 < len(unknown) < result.dirty_rows
    produced = set(events.event) & set(taxonomy)
    assert produced == set(taxonomy)  # every taxonomy event type occurs


# --- ids, entities and time ---------------------------------------------------------------


def test_ids_are_unique_except_deliberate_duplicates_and_overlap(drifted) -> None:
    result, _, _ = drifted
    out = result.out_dir
    web = _web(out)
    cols = COLUMNS["web/web-2025-01.jsonl"]
    assert web.drop_duplicates(subset=cols).id.is_unique
    for rel, key in (("email/email_activity.csv", "activity_id"), ("sales/activities.csv", "activity_id"),
                     ("support/tickets.csv", "ticket_event_id")):  # fmt: skip
        frame = _csv(out, rel)
        assert frame.drop_duplicates()[key].is_unique, rel
    assert pd.read_parquet(out / "billing/billing.parquet").billing_event_id.is_unique
    for rel, key in (("crm/accounts.csv", "AccountId"), ("crm/contacts.csv", "ContactId"),
                     ("truth/accounts_truth.csv", "account_id")):  # fmt: skip
        assert _csv(out, rel)[key].is_unique, rel


def test_web_files_repeat_the_last_two_days_of_the_previous_month(drifted) -> None:
    result, _, _ = drifted
    web = _web(result.out_dir)
    web["t"] = _when(web.timestamp)
    for prev, cur in zip(MONTHS, MONTHS[1:], strict=False):
        boundary = pd.Timestamp(f"{cur}-01", tz="UTC")
        tail = web[
            (web.file == prev) & (web.t >= boundary - pd.Timedelta(days=2)) & (web.t < boundary)
        ]
        head = web[(web.file == cur) & (web.t < boundary)]
        assert len(tail) > 0
        assert set(tail.id) == set(head.id)
        assert (head.t >= boundary - pd.Timedelta(days=2)).all()


def test_web_timestamps_mostly_utc_some_with_offsets(drifted) -> None:
    result, _, _ = drifted
    stamps = _web(result.out_dir).timestamp
    offset = stamps.str.contains(r"[+-]\d\d:\d\d$")
    assert 0.05 < offset.mean() < 0.2
    assert stamps.str.endswith("Z").mean() > 0.75


def test_contacts_belong_to_accounts_in_committees(drifted) -> None:
    result, _, truth = drifted
    accounts = _csv(result.out_dir, "crm/accounts.csv")
    contacts = _csv(result.out_dir, "crm/contacts.csv")
    assert set(contacts.AccountId) <= set(accounts.AccountId)
    sizes = contacts.groupby("AccountId").size().reindex(accounts.AccountId, fill_value=0)
    segment = truth.segment.reindex(accounts.AccountId)
    for seg, lo, hi in (("smb", 1, 3), ("mid_market", 3, 6), ("enterprise", 6, 12)):
        s = sizes[segment.to_numpy() == seg]
        assert s.min() >= lo and s.max() <= hi, seg
    assert contacts.groupby("AccountId").BuyingRole.apply(lambda r: "end_user" in set(r)).all()
    big = contacts[contacts.AccountId.isin(sizes[sizes >= 6].index)].groupby("AccountId").BuyingRole
    for role in ("economic_buyer", "technical_evaluator", "procurement"):
        assert big.apply(lambda r, role=role: role in set(r)).mean() > 0.6, role
    assert set(contacts.BuyingRole) <= {
        "economic_buyer",
        "technical_evaluator",
        "end_user",
        "procurement",
        "champion",
    }
    assert set(contacts.OptedOut) == {"true", "false"}
    assert (contacts.OptedOut == "true").mean() < 0.08
    assert (
        contacts.Email.is_unique
        and contacts.Email.str.match(r"^[a-z]+\.[a-z]+@company\d+\.example$").all()
    )


def test_segments_follow_employees(drifted) -> None:
    result, _, truth = drifted
    accounts = _csv(result.out_dir, "crm/accounts.csv").set_index("AccountId")
    employees = accounts.Employees.astype(int)
    expected = np.select([employees < 200, employees < 2000], ["smb", "mid_market"], "enterprise")
    assert (truth.segment.reindex(accounts.index).to_numpy() == expected).all()
    share = truth.segment.value_counts(normalize=True)
    assert (
        0.45 < share["smb"] < 0.65
        and 0.2 < share["mid_market"] < 0.4
        and 0.07 < share["enterprise"] < 0.25
    )


def test_events_fall_in_the_period_except_deliberate_bad_rows(drifted) -> None:
    result, events, _ = drifted
    start, end = pd.Timestamp(START, tz="UTC"), pd.Timestamp(END, tz="UTC") + pd.Timedelta(days=1)
    unparsable = events.t.isna()
    future = events.t >= end
    assert unparsable.sum() > 0 and future.sum() > 0
    assert (events.t[future].dt.year >= 2031).all()
    assert not (events.t < start).any()
    assert unparsable.sum() + future.sum() < result.dirty_rows
    # about dirty_rate of the rows are bad on purpose
    assert 0.5 * 0.01 < result.dirty_rows / result.events < 2 * 0.01


def test_no_event_before_its_account_or_contact_exists(drifted) -> None:
    result, events, _ = drifted
    events = _clean(events)
    accounts = _csv(result.out_dir, "crm/accounts.csv").set_index("AccountId")
    contacts = _csv(result.out_dir, "crm/contacts.csv").set_index("ContactId")
    assert (events.t >= events.account.map(_when(accounts.CreatedDate))).all()
    with_contact = events[events.contact.notna()]
    assert (with_contact.t >= with_contact.contact.map(_when(contacts.CreatedDate))).all()


def test_no_event_without_any_id_except_bad_rows(drifted) -> None:
    result, events, _ = drifted
    orphan = events.account.isna() & events.contact.isna()
    assert 0 < orphan.sum() < result.dirty_rows


# --- behaviour ----------------------------------------------------------------------------


def test_about_a_third_are_customers_and_a_quarter_of_prospects_convert(drifted) -> None:
    _, _, truth = drifted
    start = pd.Timestamp(START, tz="UTC")
    at_start = truth.customer_from < start
    assert 0.2 < at_start.mean() < 0.4
    prospects = truth[~at_start]
    assert 0.15 < prospects.converted_at.notna().mean() < 0.4
    assert prospects.true_conversion_propensity.notna().all()
    assert truth[at_start].true_conversion_propensity.isna().all()


def test_converted_accounts_have_closed_won_and_a_subscription(drifted) -> None:
    _, events, truth = drifted
    events = _clean(events)
    converted = truth[truth.converted_at.notna()]
    won = events[events.event == "closed_won"].groupby("account").t.min()
    assert set(won.index) == set(converted.index)
    assert (won.reindex(converted.index) == converted.converted_at).all()
    started = events[events.event == "subscription_started"].groupby("account").t.min()
    assert set(started.index) == set(converted.index)
    assert (started.reindex(converted.index) >= converted.converted_at).all()


def test_converters_escalate_high_intent_activity_before_buying(drifted) -> None:
    _, events, truth = drifted
    events = _clean(events)
    high = events[events.event.isin(HIGH_INTENT)]
    start, end = pd.Timestamp(START, tz="UTC"), pd.Timestamp(END, tz="UTC")

    def count(window_end: pd.Series) -> pd.Series:
        e = high[high.account.isin(window_end.index)]
        stop = e.account.map(window_end)
        inside = (e.t < stop) & (e.t >= stop - pd.Timedelta(days=60))
        return inside.groupby(e.account).sum().reindex(window_end.index, fill_value=0)

    conv = truth.converted_at.dropna()
    conv = conv[conv > start + pd.Timedelta(days=60)]
    prospects = truth[
        (truth.customer_from.isna() | (truth.customer_from >= start)) & truth.converted_at.isna()
    ]
    first_seen = events[events.account.isin(prospects.index)].groupby("account").t.min()
    comparable = (first_seen + pd.Timedelta(days=90)).clip(upper=end)
    assert len(conv) > 20 and len(comparable) > 100
    before_conv, other = count(conv).mean(), count(comparable).mean()
    assert before_conv > 2 * other + 1

    # the committee widens: economic buyers and technical evaluators show up late
    contacts = _csv(drifted[0].out_dir, "crm/contacts.csv").set_index("ContactId")
    late = events[
        events.contact.map(contacts.BuyingRole).isin(["economic_buyer", "technical_evaluator"])
    ]
    late = late[late.account.isin(conv.index) & (late.source == "web")]
    lead = (late.account.map(conv) - late.t).dt.days
    assert (lead[lead > 0] < 60).mean() > 0.6


def test_churners_use_the_product_less_before_cancelling(drifted) -> None:
    _, events, truth = drifted
    start = pd.Timestamp(START, tz="UTC")
    churned = truth.churned_at.dropna()
    churned = churned[churned > start + pd.Timedelta(days=120)]
    usage = _clean(events)
    usage = usage[(usage.source == "product") & usage.account.isin(churned.index)]
    lead = usage.account.map(churned) - usage.t
    last = (lead > pd.Timedelta(0)) & (lead <= pd.Timedelta(days=60))
    prior = (lead > pd.Timedelta(days=60)) & (lead <= pd.Timedelta(days=120))
    assert len(churned) >= 10
    assert last.sum() < 0.7 * prior.sum()
    cancelled = events[events.event == "cancellation"].account
    assert set(cancelled) == set(truth.churned_at.dropna().index)
    customers = truth.customer_from.notna()
    assert 0.05 < truth.churned_at.notna().sum() / customers.sum() < 0.4


def test_drift_makes_pricing_views_common_for_drifted_accounts(drifted) -> None:
    _, events, truth = drifted
    web = _clean(events)
    web = web[web.source == "web"]
    cut = pd.Timestamp(DRIFT, tz="UTC")
    is_drifted = web.account.map(truth.drifted == "true")
    assert 0.45 < (truth.drifted == "true").mean() < 0.75

    def pricing_share(mask: pd.Series) -> float:
        return float((web[mask].event == "pricing_page_view").mean())

    assert (
        pricing_share(is_drifted & (web.t >= cut))
        > pricing_share(is_drifted & (web.t < cut)) + 0.15
    )
    assert (
        abs(
            pricing_share(~is_drifted & (web.t >= cut)) - pricing_share(~is_drifted & (web.t < cut))
        )
        < 0.1
    )


def test_drift_lowers_email_opens_and_logins_of_drifted_accounts(drifted) -> None:
    _, events, truth = drifted
    events = _clean(events)
    after = events.t >= pd.Timestamp(DRIFT, tz="UTC")
    is_drifted = events.account.map(truth.drifted == "true")

    def ratio(mask: pd.Series, numerator: str, denominator: str) -> float:
        counts = events[mask].event.value_counts()
        return counts.get(numerator, 0) / counts.get(denominator, 1)

    for num, den in (("email_open", "email_sent"), ("login", "feature_used")):
        before_d, after_d = (
            ratio(is_drifted & ~after, num, den),
            ratio(is_drifted & after, num, den),
        )
        before_o, after_o = (
            ratio(~is_drifted & ~after, num, den),
            ratio(~is_drifted & after, num, den),
        )
        assert after_d < 0.7 * before_d, num
        assert after_o > 0.8 * before_o, num


def test_without_drift_no_account_is_drifted(small: SimulationResult) -> None:
    assert (_csv(small.out_dir, "truth/accounts_truth.csv").drifted == "false").all()


# --- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"accounts": 0}, "accounts must be a positive integer"),
        ({"accounts": -5}, "accounts must be a positive integer"),
        ({"end": START}, "must be after start"),
        ({"end": date(2024, 12, 31)}, "must be after start"),
        ({"drift_from": date(2024, 6, 1)}, "drift_from (2024-06-01) must lie within"),
        ({"drift_from": date(2026, 7, 1)}, "drift_from (2026-07-01) must lie within"),
        ({"dirty_rate": -0.1}, "dirty_rate must be within [0, 0.5]"),
        ({"dirty_rate": 0.6}, "dirty_rate must be within [0, 0.5]"),
        ({"chunk_accounts": 0}, "chunk_accounts must be a positive integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
    ],
)
def test_invalid_parameters_are_rejected(changes: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        simulate(replace(SimulationParams(), **changes), tmp_path)
    assert not any(tmp_path.iterdir())


def test_zero_dirty_rate_writes_clean_files(tmp_path: Path) -> None:
    result = simulate(SimulationParams(accounts=60, seed=5, dirty_rate=0.0), tmp_path)
    events = _events(result.out_dir)
    assert result.dirty_rows == 0
    assert events.t.notna().all() and events.account.notna().all()
    assert (events.t < pd.Timestamp(END, tz="UTC") + pd.Timedelta(days=1)).all()
