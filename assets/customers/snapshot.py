"""A customer snapshot as of any date: facts, RFM, lifecycle and tags in one call. Plain Polars."""

from dataclasses import dataclass
from datetime import date

import polars as pl

from assets.customers.facts import COLUMNS, customer_summary, facts_of
from assets.customers.lifecycle import lifecycle, tags, value_tier
from assets.customers.rfm import classify, rfm_values
from pipelines.settings import ShopSettings

# core.rfm
RFM_COLUMNS = (
    "customer_id", "as_of_date", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score", "r_high",
    "f_high", "m_high", "rfm_class", "rfm_class_zh", "rfm_group", "cycle_used_days", "cycle_source", "stage",
    "due_date", "expected_next_date", "value_tier", "tags",
)  # fmt: skip


@dataclass(frozen=True)
class Snapshot:
    facts: pl.DataFrame  # core.customer_facts
    rfm: pl.DataFrame  # core.rfm


def customer_snapshot(orders: pl.LazyFrame | pl.DataFrame, as_of: date, settings: ShopSettings) -> Snapshot:
    """Every customer with a purchase on or before `as_of`, from `staging.orders`: one pass over the orders."""
    sprints = [event.sprint for event in settings.calendar()]
    return snapshot_of(customer_summary(orders, as_of, sprints, settings.rfm.lookback_days), settings)


def snapshot_of(summary: pl.DataFrame, settings: ShopSettings) -> Snapshot:
    """Facts and RFM from a customer summary (`facts.customer_summary`), row for row: what depends on every
    customer (means, quintiles, typical cycles) is computed here, in one lazy plan (its branches run side by
    side)."""
    facts = facts_of(summary)
    classes = classify(rfm_values(summary.lazy(), settings.rfm), settings.rfm)
    stages = lifecycle(facts.lazy(), settings.lifecycle).select(
        "cycle_used_days", "cycle_source", "stage", "stage_code", "due_date", "expected_next_date",
        "acquired_on_event", "event_orders", "orders", "first_channel", "avg_order_value",
        value_tier=value_tier(pl.col("avg_order_value"), settings.order_value_tiers),
    )  # fmt: skip
    rfm = (
        pl.concat([classes, stages], how="horizontal")
        .with_columns(tags=tags(settings.order_value_tiers), as_of_date=pl.lit(summary["as_of_date"].max(), pl.Date))
        .select(RFM_COLUMNS)
        .collect()
    )
    return Snapshot(facts, rfm)


def next_day_snapshot(
    previous: pl.DataFrame, customers_orders: pl.DataFrame, as_of: date, settings: ShopSettings
) -> Snapshot:
    """The snapshot as of `as_of` from the previous one's facts (core.customer_facts) and all orders of the
    customers who ordered after it (`customers_orders`): their summaries are computed again; everyone else's
    facts only age. Without a look-back window; equals `customer_snapshot` on all orders."""
    sprints = [event.sprint for event in settings.calendar()]
    changed = customer_summary(customers_orders, as_of, sprints)
    if previous.is_empty():
        return snapshot_of(changed, settings)
    if not previous["customer_id"].is_sorted():
        previous = previous.sort("customer_id")
    # in one piece: read from the warehouse, the facts come in many, where a gather costs several times more
    aged = previous.with_columns(
        as_of_date=pl.lit(as_of),
        recency_days=(pl.lit(as_of) - pl.col("last_order_date")).dt.total_days(),
        tenure_days=(pl.lit(as_of) - pl.col("first_order_date")).dt.total_days(),
    ).rechunk()
    # The changed customers located among the previous ones by binary search (not a pass over every id): a
    # returning customer's row is replaced where it is, a new one inserted where their id sorts.
    ids, n = previous["customer_id"], previous.height
    at = ids.search_sorted(changed["customer_id"], side="left").cast(pl.Int64)
    new = ids.gather(at.clip(upper_bound=n - 1)) != changed["customer_id"]
    row = at + new.cum_sum() - new  # each changed customer's row in the new snapshot
    inserted = pl.zeros(n + new.sum(), pl.Int64, eager=True).scatter(row.filter(new), 1)
    # The previous row each row of the new snapshot comes from (any for the inserted ones, then overwritten), in
    # Polars' index type and without nulls: other indices are converted and checked again for every column, which
    # doubled the time at 8.9 million customers.
    source = (pl.int_range(inserted.len(), eager=True) - inserted.cum_sum()).clip(lower_bound=0)
    source = source.cast(pl.get_index_type())
    summary = pl.DataFrame([aged[name].gather(source).scatter(row, changed[name]) for name in COLUMNS])
    all_history = {"window_orders": "orders", "window_purchase_days": "purchase_days", "window_spend": "net_revenue"}
    return snapshot_of(
        summary.with_columns(pl.col(name).alias(window) for window, name in all_history.items()), settings
    )
