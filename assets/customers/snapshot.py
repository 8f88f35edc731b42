"""A customer snapshot as of any date: facts, RFM, lifecycle and tags in one call, or bucket by bucket with one
merge of what depends on every customer (`bucketed_snapshot`). Plain Polars."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import polars as pl

from assets.customers.counts import merge_counts
from assets.customers.facts import COLUMNS, WHOLE_HISTORY, customer_summary, derived_facts, facts_of
from assets.customers.lifecycle import TypicalCycles, cycle_counts, lifecycle, tags, typical_cycles, value_tier
from assets.customers.rfm import RfmCuts, classify, frequency_and_monetary, rfm_counts, rfm_cuts
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


@dataclass(frozen=True)
class ShopCuts:
    """What depends on every customer: RFM's thresholds and the typical purchase cycles."""

    rfm: RfmCuts
    cycles: TypicalCycles


def customer_snapshot(orders: pl.LazyFrame | pl.DataFrame, as_of: date, settings: ShopSettings) -> Snapshot:
    """Every customer with a purchase on or before `as_of`, from `staging.orders`: one pass over the orders."""
    return snapshot_of(summary_of(orders, as_of, settings), settings)


def summary_of(orders: pl.LazyFrame | pl.DataFrame, as_of: date, settings: ShopSettings) -> pl.DataFrame:
    """The customer summary (`facts.customer_summary`) of the customers of `orders`, with the shop's events and
    look-back window: each customer's row depends on their own orders alone."""
    sprints = [event.sprint for event in settings.calendar()]
    return customer_summary(orders, as_of, sprints, settings.rfm.lookback_days)


def _values(summary: pl.DataFrame, settings: ShopSettings) -> pl.LazyFrame:
    frequency, monetary = frequency_and_monetary(
        pl.col("window_orders"), pl.col("window_purchase_days"), pl.col("window_spend"), settings.rfm
    )
    return summary.lazy().with_columns(frequency=frequency, monetary=monetary)


def shop_counts(summary: pl.DataFrame, settings: ShopSettings) -> pl.DataFrame:
    """What the shop's thresholds need to know of the customers of `summary`, as value counts (`counts`): the
    counts of buckets of customers, merged, are the counts of all of them."""
    values = _values(summary, settings)
    return pl.concat(pl.collect_all([*rfm_counts(values), cycle_counts(values)]))


def shop_cuts(counts: pl.DataFrame, settings: ShopSettings) -> ShopCuts:
    """The thresholds from the value counts of all customers (`shop_counts`, merged)."""
    return ShopCuts(rfm_cuts(counts, settings.rfm), typical_cycles(counts))


def snapshot_of(summary: pl.DataFrame, settings: ShopSettings, cuts: ShopCuts | None = None) -> Snapshot:
    """Facts and RFM from a customer summary (`facts.customer_summary`), row for row, with the `cuts` of all
    customers: by default, of the customers of `summary`. (One line of steps, not branches put side by side:
    their pieces would not line up, and the first select would copy every column.)"""
    cuts = cuts or shop_cuts(shop_counts(summary, settings), settings)
    rfm = (
        lifecycle(classify(_values(summary, settings), settings.rfm, cuts.rfm), settings.lifecycle, cuts.cycles)
        .with_columns(value_tier=value_tier(pl.col("avg_order_value"), settings.order_value_tiers))
        .with_columns(tags=tags(settings.order_value_tiers))
        .select(RFM_COLUMNS)
        .collect()
    )
    return Snapshot(facts_of(summary), rfm)


def bucketed_snapshot(buckets: list[pl.LazyFrame | pl.DataFrame], as_of: date, settings: ShopSettings) -> Snapshot:
    """`customer_snapshot` of a shop whose orders come split by customer (each customer's orders in one of
    `buckets`), in three steps that the Dagster assets run on any worker: each bucket's summary and value counts,
    one merge of the counts into the shop's cuts, each bucket finished with them. Equal to the snapshot of all
    orders at once, row for row; the rows bucket after bucket."""
    summaries = [summary_of(orders, as_of, settings) for orders in buckets]
    cuts = shop_cuts(merge_counts(shop_counts(summary, settings) for summary in summaries), settings)
    parts = [snapshot_of(summary, settings, cuts) for summary in summaries]
    return Snapshot(pl.concat(part.facts for part in parts), pl.concat(part.rfm for part in parts))


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
