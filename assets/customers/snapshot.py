"""A customer snapshot as of any date: facts, RFM, lifecycle and tags in one call. Plain Polars."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import polars as pl

from assets.customers.facts import COLUMNS, WHOLE_HISTORY, customer_summary, derived_facts, facts_of
from assets.customers.lifecycle import lifecycle, tags, value_tier
from assets.customers.rfm import classify, frequency_and_monetary
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
    customer (means, quintiles, typical cycles) is computed here, in one lazy plan. (One line of steps, not
    branches put side by side: their pieces would not line up, and the first select would copy every column.)"""
    frequency, monetary = frequency_and_monetary(
        pl.col("window_orders"), pl.col("window_purchase_days"), pl.col("window_spend"), settings.rfm
    )
    values = summary.lazy().with_columns(frequency=frequency, monetary=monetary)
    rfm = (
        lifecycle(classify(values, settings.rfm), settings.lifecycle)
        .with_columns(value_tier=value_tier(pl.col("avg_order_value"), settings.order_value_tiers))
        .with_columns(tags=tags(settings.order_value_tiers))
        .select(RFM_COLUMNS)
        .collect()
    )
    return Snapshot(facts_of(summary), rfm)


def daily_snapshots(orders: pl.DataFrame, days: list[date], settings: ShopSettings) -> Iterator[Snapshot]:
    """The snapshot as of each of `days`, in order: the first from all orders, each next one from the one before
    and the orders placed since (`next_day_snapshot`, as a daily run makes it) when RFM has no look-back window."""
    previous, previous_day = None, None
    for day in days:
        if previous is None or settings.rfm.lookback_days:
            snapshot = customer_snapshot(orders, day, settings)
        else:
            since = orders.filter(pl.col("order_date").is_between(previous_day, day, closed="right"))
            buyers = since["customer_id"].unique().implode()
            others = previous.facts.filter(~pl.col("customer_id").is_in(buyers))
            theirs = orders.filter(pl.col("customer_id").is_in(buyers) & (pl.col("order_date") <= day))
            snapshot = next_day_snapshot(others, theirs, day, settings)
        yield snapshot
        previous, previous_day = snapshot, day


def next_day_snapshot(
    others: pl.DataFrame, customers_orders: pl.DataFrame, as_of: date, settings: ShopSettings
) -> Snapshot:
    """The snapshot as of `as_of` from the previous one's facts (core.customer_facts, `facts.KEPT_COLUMNS` at
    least) of the customers who did not order after it (`others`) and all orders of those who did
    (`customers_orders`): the buyers' summaries are computed again, everyone else's facts only age. Without a
    look-back window; equals `customer_snapshot` on all orders but for the order of the rows: the others as they
    come, then the buyers, appended without a copy (keeping the customer_id order would copy every column for
    the few thousand new customers)."""
    sprints = [event.sprint for event in settings.calendar()]
    aged = others.with_columns(**derived_facts(as_of)).select(COLUMNS)
    summary = pl.concat([aged, customer_summary(customers_orders, as_of, sprints).select(COLUMNS)])
    return snapshot_of(
        summary.with_columns(pl.col(name).alias(window) for window, name in WHOLE_HISTORY.items()), settings
    )
