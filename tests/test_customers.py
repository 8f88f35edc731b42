"""Customer facts, RFM and lifecycle on hand-worked examples, and their properties."""

from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from assets.customers.counts import of, value_counts
from assets.customers.facts import KEPT_COLUMNS, customer_facts
from assets.customers.lifecycle import lifecycle, stage, value_tier
from assets.customers.rfm import GROUPS, classify, cuts_of, quintile
from assets.customers.snapshot import customer_snapshot, next_day_snapshot
from pipelines.rfm_classes import CLASS_CODES
from pipelines.settings import LifecycleSettings, RfmSettings
from tests.conftest import shop

AS_OF = date(2024, 12, 31)
SETTINGS = shop(Path("unused"))  # default RFM and lifecycle rules


def orders(*rows: tuple) -> pl.DataFrame:
    """(customer, day, amount[, status[, category]]) -> staging.orders rows."""
    records = []
    for n, (customer, day, amount, *rest) in enumerate(rows):
        status = rest[0] if rest else "completed"
        category = rest[1] if len(rest) > 1 else "tea"
        records.append({
            "order_id": f"O{n}", "customer_id": customer,
            "order_ts": datetime.combine(day, datetime.min.time()) + timedelta(hours=n % 24),
            "order_date": day, "amount": float(amount), "items": 1, "channel": "app", "region": "Zhejiang",
            "category": category, "status": status,
        })  # fmt: skip
    return pl.DataFrame(records)


def test_facts_of_a_repeat_buyer_worked_by_hand():
    # Purchases on 1, 11 and 31 December: gaps 10 and 20 days, cycle (31-1)/2 = 15; a return of 30 on the 20th.
    facts = customer_facts(
        orders(
            ("a", date(2024, 12, 1), 100),
            ("a", date(2024, 12, 11), 50),
            ("a", date(2024, 12, 20), -30, "cancelled"),
            ("a", date(2024, 12, 31), 80),
            ("a", date(2025, 1, 5), 999),
        ),  # fmt: skip
        AS_OF,
    ).row(0, named=True)
    assert facts["orders"] == 3 and facts["purchase_days"] == 3
    assert facts["net_revenue"] == 200.0 and facts["avg_order_value"] == pytest.approx(66.67)
    assert facts["cycle_days"] == 15.0 and facts["cycle_median_days"] == 15.0
    assert facts["cycle_std_days"] == pytest.approx(7.0711, abs=1e-4)
    assert (facts["recency_days"], facts["tenure_days"]) == (0, 30)


def test_two_orders_on_one_day_make_a_one_time_buyer():
    facts = customer_facts(orders(("a", date(2024, 12, 1), 10), ("a", date(2024, 12, 1), 20)), AS_OF).row(0, named=True)
    assert (facts["orders"], facts["purchase_days"], facts["cycle_days"]) == (2, 1, None)


def test_acquired_on_event_means_a_first_order_inside_a_sprint():
    sprints = [(date(2024, 11, 11), date(2024, 11, 11))]
    facts = customer_facts(orders(("a", date(2024, 11, 11), 10), ("b", date(2024, 11, 12), 10)), AS_OF, sprints)
    assert facts.select("customer_id", "acquired_on_event").rows() == [("a", True), ("b", False)]


def test_classes_against_the_mean_worked_by_hand():
    values = pl.DataFrame({
        "customer_id": ["a", "b", "c", "d"], "recency_days": [10, 100, 20, 200],
        "frequency": [5, 4, 1, 1], "monetary": [900.0, 50.0, 40.0, 800.0], "main_category": ["tea"] * 4,
    })  # fmt: skip
    # Means: recency 82.5, frequency 2.75, monetary 447.5.
    classes = classify(values, RfmSettings())
    assert classes.sort("customer_id")["rfm_class"].to_list() == [
        "important_value",
        "general_maintain",
        "new",
        "important_retain",
    ]


def test_fixed_thresholds_use_the_category_active_window():
    values = pl.DataFrame({
        "customer_id": ["a", "b"], "recency_days": [80, 80], "frequency": [2, 2], "monetary": [600.0, 600.0],
        "main_category": ["apparel", "snacks"],
    })  # fmt: skip
    rules = RfmSettings(threshold="fixed", recency_days=30, active_window_days={"apparel": 90})
    assert classify(values, rules).sort("customer_id")["rfm_class"].to_list() == [
        "important_value",
        "important_winback",
    ]


def test_quintiles_give_ties_one_score():
    values = pl.DataFrame({"v": [1, 1, 1, 2, 3, 4, 5, 6, 7, 8]})
    cuts = cuts_of(of(value_counts(values.lazy(), "v", pl.col("v")).collect(), "v"))
    scores = values.select(quintile(pl.col("v"), cuts)).to_series().to_list()
    assert scores == [1, 1, 1, 2, 3, 3, 4, 4, 5, 5]


def test_named_groups_cover_every_score_pair_once():
    assert len(GROUPS) == 25 and set(GROUPS.values()) >= {"Champions", "Lost", "Can't lose them", "At risk"}


@pytest.mark.parametrize(
    ("days", "expected"),
    [(26, "new"), (27, "due"), (45, "due"), (46, "at_risk"), (60, "at_risk"), (61, "churned")],
)
def test_lifecycle_boundaries_for_a_30_day_cycle(days, expected):
    # due from 0.9 x 30 = 27 days; at risk beyond 45; churned beyond 60.
    frame = pl.DataFrame({"d": [days]}).select(stage(pl.col("d"), pl.lit(30.0), pl.lit(1), LifecycleSettings()))
    assert frame.item() == expected


def test_churned_beyond_a_year_whatever_the_cycle():
    frame = pl.DataFrame({"d": [365, 366]}).select(stage(pl.col("d"), pl.lit(500.0), pl.lit(3), LifecycleSettings()))
    assert frame.to_series().to_list() == ["active", "churned"]


def test_value_tiers_are_left_closed():
    tiers = pl.DataFrame({"v": [99.99, 100.0, 300.0, 1000.0]}).select(value_tier(pl.col("v"), [100, 300, 1000]))
    assert tiers.to_series().to_list() == ["<100", "100-300", "300-1000", "1000+"]


order_rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.integers(0, 700).map(lambda n: date(2023, 1, 1) + timedelta(days=n)),
        st.integers(1, 2000),
        st.sampled_from(["completed", "completed", "completed", "cancelled"]),
        st.sampled_from(["tea", "cups"]),
    ),
    min_size=1,
    max_size=40,
)


@hypothesis_settings(max_examples=60, deadline=None)
@given(order_rows)
def test_every_customer_has_exactly_one_class_group_and_stage(rows):
    frame = orders(*rows)
    snapshot = customer_snapshot(frame, date(2024, 12, 31), SETTINGS)
    buyers = frame.filter(pl.col("status") == "completed")["customer_id"].unique().sort().to_list()
    assert snapshot.rfm["customer_id"].to_list() == buyers
    assert snapshot.rfm["rfm_class"].is_in(list(CLASS_CODES)).all()
    assert snapshot.rfm["rfm_group"].is_in(list(GROUPS.values())).all()
    assert snapshot.rfm["stage"].is_in(["new", "active", "due", "at_risk", "churned"]).all()
    one_day = snapshot.facts.filter(pl.col("purchase_days") == 1)["customer_id"]
    assert not snapshot.rfm.filter(pl.col("customer_id").is_in(one_day.implode()))["stage"].is_in(["active"]).any()


@hypothesis_settings(max_examples=60, deadline=None)
@given(order_rows, st.integers(1, 5000))
def test_raising_a_customers_spend_never_lowers_their_m_score(rows, extra):
    frame = orders(*rows)
    buyer = frame.filter(pl.col("status") == "completed")["customer_id"].first()
    if buyer is None:
        return
    before = customer_snapshot(frame, date(2024, 12, 31), SETTINGS).rfm
    richer = pl.concat([frame, orders((buyer, date(2023, 1, 1), extra, "completed"))])
    after = customer_snapshot(richer, date(2024, 12, 31), SETTINGS).rfm
    score = lambda rfm: rfm.filter(pl.col("customer_id") == buyer)["m_score"].item()  # noqa: E731
    assert score(after) >= score(before)


@hypothesis_settings(max_examples=60, deadline=None)
@given(order_rows, st.integers(0, 3))
def test_the_next_days_snapshot_from_the_previous_facts_equals_a_full_one(rows, later):
    frame = orders(*rows)
    day = rows[0][1] + timedelta(days=later)  # a day with orders, or a few days after one
    previous = customer_snapshot(frame, day - timedelta(days=1), SETTINGS).facts
    new = frame.filter(pl.col("order_date") == day)
    buyers = pl.col("customer_id").is_in(new["customer_id"].implode())
    theirs = frame.filter(buyers & (pl.col("order_date") <= day))
    expected = customer_snapshot(frame, day, SETTINGS)
    others = previous.filter(~buyers).select(KEPT_COLUMNS).sample(fraction=1.0, shuffle=True, seed=1)
    updated = next_day_snapshot(others, theirs, day, SETTINGS)
    # equal in any row order, floats to the last few bits: Polars' grouped standard deviation is not bit-identical
    # across plans
    for table in ("facts", "rfm"):
        ours, full = getattr(updated, table), getattr(expected, table)
        assert_frame_equal(ours, full, check_row_order=False, rel_tol=1e-12, abs_tol=0)


def test_the_stage_compares_the_unrounded_cycle():
    # Four purchase days spread over 190 days: cycle 190 / 3 = 63.33 days, at_risk beyond 1.5 x 63.33 = 95.0 days.
    # 95 days after the last order is still due (95 > 95.0 is false); rounded to 63.3 it was 94.95: at_risk.
    facts = pl.DataFrame({
        "cycle_days": [190 / 3], "main_category": ["tea"], "recency_days": [95], "purchase_days": [4],
        "last_order_date": [date(2024, 7, 9)],
    })  # fmt: skip
    row = lifecycle(facts, LifecycleSettings()).row(0, named=True)
    assert (row["stage"], row["cycle_used_days"]) == ("due", 63.3)
    assert row["due_date"] == date(2024, 7, 9) + timedelta(days=57)  # ceil(0.9 x 63.33 = 57.0)
