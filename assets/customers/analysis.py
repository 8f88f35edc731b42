"""The shop analysis the seller literature asks for, one small table each. Plain Polars."""

import polars as pl

from pipelines.warehouse import CANCELLED, COMPLETED, OPEN


def repeat_purchase(facts: pl.DataFrame) -> pl.DataFrame:
    """Customers, repeat buyers (two or more purchase days) and the repeat-purchase rate."""
    return facts.select(
        customers=pl.len(),
        repeat_customers=(pl.col("purchase_days") >= 2).sum(),
        repeat_rate=((pl.col("purchase_days") >= 2).mean()).round(4),
    )


def value_tiers(facts: pl.DataFrame, rfm: pl.DataFrame) -> pl.DataFrame:
    """Per order-value tier (of a customer's average order): customers, revenue and its share, repeat rate."""
    joined = facts.join(rfm.select("customer_id", "value_tier"), on="customer_id")
    return (
        joined.group_by("value_tier")
        .agg(
            customers=pl.len(),
            revenue=pl.col("net_revenue").sum().round(2),
            repeat_rate=(pl.col("purchase_days") >= 2).mean().round(4),
            low=pl.col("avg_order_value").min(),
        )
        .with_columns(revenue_share=(pl.col("revenue") / pl.col("revenue").sum()).round(4))
        .sort("low")
        .drop("low")
    )


def top_customers(facts: pl.DataFrame, share: float = 0.2) -> pl.DataFrame:
    """The share of revenue that the top `share` of customers by net revenue bring."""
    top_n = max(int(round(facts.height * share)), 1) if facts.height else 0
    ranked = facts.sort("net_revenue", "customer_id", descending=[True, False])
    total = facts["net_revenue"].sum()
    top = ranked.head(top_n)["net_revenue"].sum()
    return pl.DataFrame(
        {
            "top_share_of_customers": [share],
            "customers": [top_n],
            "revenue": [round(top, 2)],
            "revenue_share": [round(top / total, 4) if total else None],
        }  # fmt: skip
    )


def class_mix(facts: pl.DataFrame, rfm: pl.DataFrame) -> pl.DataFrame:
    """Per RFM class: customers and revenue, with their shares."""
    joined = facts.select("customer_id", "net_revenue").join(
        rfm.select("customer_id", "rfm_class", "rfm_class_zh"), on="customer_id"
    )
    return (
        joined.group_by("rfm_class", "rfm_class_zh")
        .agg(customers=pl.len(), revenue=pl.col("net_revenue").sum().round(2))
        .with_columns(
            customer_share=(pl.col("customers") / pl.col("customers").sum()).round(4),
            revenue_share=(pl.col("revenue") / pl.col("revenue").sum()).round(4),
        )
        .sort("revenue", descending=True)
    )


def category_cycles(facts: pl.DataFrame) -> pl.DataFrame:
    """Per main category: repeat buyers and their typical (median) and mean purchase cycle in days."""
    return (
        facts.filter(pl.col("cycle_days").is_not_null())
        .group_by(pl.col("main_category").fill_null("(none)"))
        .agg(
            repeat_customers=pl.len(),
            median_cycle_days=pl.col("cycle_days").median().round(1),
            mean_cycle_days=pl.col("cycle_days").mean().round(1),
        )
        .sort("main_category")
    )


def never_completed(by_status: pl.DataFrame) -> pl.DataFrame:
    """Customers with orders but no completed one, from their orders counted per status (customer_id, status,
    orders, first_order_date, last_order_date): an audience of its own, since facts and classes count
    purchases only."""
    return (
        by_status.group_by("customer_id")
        .agg(
            orders=pl.col("orders").sum(),
            open_orders=pl.col("orders").filter(pl.col("status") == OPEN).sum(),
            cancelled_orders=pl.col("orders").filter(pl.col("status") == CANCELLED).sum(),
            completed_orders=pl.col("orders").filter(pl.col("status") == COMPLETED).sum(),
            first_order_date=pl.col("first_order_date").min(),
            last_order_date=pl.col("last_order_date").max(),
        )
        .filter(pl.col("completed_orders") == 0)
        .drop("completed_orders")
        .sort("customer_id")
    )
