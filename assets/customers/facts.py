"""Customer facts as of any date: the one function the daily snapshot, event baselines and
backfills all call. Plain Polars, no Dagster.

A purchase is a completed order; money is net (a return counts against its customer). A
customer's purchase cycle is the mean interval between their purchase *days*: two orders on
one day make a one-time buyer, not a zero-day cycle.
"""

from datetime import date

import polars as pl

from pipelines.warehouse import COMPLETED

# core.customer_facts
COLUMNS = (
    "customer_id", "as_of_date", "first_order_date", "last_order_date", "orders", "purchase_days", "net_revenue",
    "items", "avg_order_value", "recency_days", "tenure_days", "cycle_days", "cycle_median_days", "cycle_std_days",
    "main_category", "first_channel", "region", "acquired_on_event", "event_orders",
)  # fmt: skip


def orders_until(orders: pl.LazyFrame | pl.DataFrame, as_of: date) -> pl.LazyFrame:
    return orders.lazy().filter(pl.col("order_date") <= as_of)


def in_sprints(day: pl.Expr, sprints: list[tuple[date, date]]) -> pl.Expr:
    """Whether a day falls inside any event's sprint."""
    return pl.any_horizontal([day.is_between(first, last) for first, last in sprints]) if sprints else pl.lit(False)


def customer_facts(
    orders: pl.LazyFrame | pl.DataFrame, as_of: date, sprints: list[tuple[date, date]] = ()
) -> pl.DataFrame:
    """One row per customer with a purchase on or before `as_of` (from `staging.orders`)."""
    orders = orders_until(orders, as_of).collect()
    purchases = orders.filter(pl.col("status") == COMPLETED).sort("order_ts")
    facts = purchases.group_by("customer_id").agg(
        first_order_date=pl.col("order_date").min(),
        last_order_date=pl.col("order_date").max(),
        orders=pl.len().cast(pl.Int64),
        purchase_days=pl.col("order_date").n_unique().cast(pl.Int64),
        items=pl.col("items").sum().cast(pl.Int64),
        first_channel=pl.col("channel").first(),
        region=pl.col("region").last(),
        event_orders=in_sprints(pl.col("order_date"), list(sprints)).sum().cast(pl.Int64),
    )
    # net of returns and cancellations, which are orders of their own
    net = orders.group_by("customer_id").agg(net_revenue=pl.col("amount").sum().round(2))
    gaps = (
        purchases.select("customer_id", "order_date")
        .unique()
        .sort("customer_id", "order_date")
        # rows are in customer order: a gap is only a gap between two days of one customer
        .with_columns(
            gap=pl.when(pl.col("customer_id") == pl.col("customer_id").shift(1)).then(
                pl.col("order_date").diff().dt.total_days()
            )
        )
        .group_by("customer_id")
        .agg(
            cycle_median_days=pl.when(pl.len() >= 3).then(pl.col("gap").median()),
            cycle_std_days=pl.when(pl.len() >= 3).then(pl.col("gap").std()),
        )
    )
    category = (
        purchases.filter(pl.col("category").is_not_null())
        .group_by("customer_id", "category")
        .agg(pl.col("amount").sum())
        .sort("customer_id", pl.col("amount"), "category", descending=[False, True, False])
        .group_by("customer_id", maintain_order=True)
        .agg(main_category=pl.col("category").first())
    )
    span = (pl.col("last_order_date") - pl.col("first_order_date")).dt.total_days()
    return (
        facts.join(net, on="customer_id", how="left")
        .join(gaps, on="customer_id", how="left")
        .join(category, on="customer_id", how="left")
        .with_columns(
            as_of_date=pl.lit(as_of),
            avg_order_value=(pl.col("net_revenue") / pl.col("orders")).round(2),
            recency_days=(pl.lit(as_of) - pl.col("last_order_date")).dt.total_days(),
            tenure_days=(pl.lit(as_of) - pl.col("first_order_date")).dt.total_days(),
            cycle_days=pl.when(pl.col("purchase_days") >= 2).then(span / (pl.col("purchase_days") - 1)),
            acquired_on_event=in_sprints(pl.col("first_order_date"), list(sprints)),
        )
        .select(COLUMNS)
    )
