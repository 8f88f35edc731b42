"""Care after an order: the moments the seller literature names. Plain Polars."""

from datetime import date, timedelta

import polars as pl

from pipelines.warehouse import COMPLETED


def care_moments(orders: pl.DataFrame, day: date) -> pl.DataFrame:
    """Care for orders of completed purchases: the day one ships, the day after delivery, ten days after it."""
    done = orders.filter(pl.col("status") == COMPLETED)
    moments = [
        ("shipped", pl.col("shipped_ts").dt.date() == day),
        ("delivered", pl.col("delivered_ts").dt.date() == day - timedelta(days=1)),
        ("follow_up", pl.col("delivered_ts").dt.date() == day - timedelta(days=10)),
    ]
    return pl.concat(
        [done.filter(when).select("customer_id", "order_id", "channel", reason=pl.lit(kind)) for kind, when in moments]
    ).with_columns(contact_date=pl.lit(day))
