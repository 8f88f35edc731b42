"""A customer snapshot as of any date: facts, RFM, lifecycle and tags in one call. Plain Polars."""

from dataclasses import dataclass
from datetime import date

import polars as pl

from assets.customers.facts import customer_facts
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
    """Every customer with a purchase on or before `as_of`, from `staging.orders`."""
    orders = orders.lazy().filter(pl.col("order_date") <= as_of).collect()  # read the orders once
    facts = customer_facts(orders, as_of, [event.sprint for event in settings.calendar()])
    classes = classify(rfm_values(orders, facts, as_of, settings.rfm), settings.rfm)
    stages = lifecycle(facts, settings.lifecycle).select(
        "customer_id", "cycle_used_days", "cycle_source", "stage", "due_date", "expected_next_date",
        "acquired_on_event", "event_orders", "orders", "first_channel",
        value_tier=value_tier(pl.col("avg_order_value"), settings.order_value_tiers),
    )  # fmt: skip
    rfm = (
        classes.drop("main_category")
        .join(stages, on="customer_id")
        .join(facts.select("customer_id", "main_category"), on="customer_id")
        .with_columns(tags=tags(), as_of_date=pl.lit(as_of))
        .select(RFM_COLUMNS)
        .sort("customer_id")
    )
    return Snapshot(facts, rfm)
