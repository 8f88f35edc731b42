"""The role each product plays (the seller literature's traffic, profit, potential and marginal products).
Plain Polars."""

from datetime import date, timedelta

import polars as pl

WINDOW_DAYS = 90  # growth: orders in the last WINDOW_DAYS against the WINDOW_DAYS before
GROWING = 0.2  # potential: at least 20% more orders in the last window
RULES = {
    "traffic": "in more first orders than the average item, and more than in returning customers' orders",
    "profit": "in more returning customers' orders than the average item, and more than in first orders",
    "potential": "neither, but at least 20% more orders in the last 90 days than in the 90 before (or new)",
    "marginal": "none of the above",
}
ROLES = tuple(RULES)


def product_roles(orders: pl.DataFrame, items: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """One row per item (a product, or a category where the export has no products) from completed `orders`
    (`order_id, customer_id, order_date`) up to `as_of` and the `items` each holds (`order_id, item`): its share
    of first orders (those on a customer's first purchase day) and of returning customers' orders (the others),
    how many customers it acquired and the share of them who bought again, its growth, and its role:

    - traffic: in a larger share of first orders than the average item, and larger there than in returning
      customers' orders;
    - profit: in a larger share of returning customers' orders than the average item, and larger there than
      in first orders;
    - potential: neither, but ordered at least 20% more in the last 90 days than in the 90 before (or new);
    - marginal: the rest.
    """
    orders = orders.filter(pl.col("order_date") <= as_of).with_columns(
        first=pl.col("order_date") == pl.col("order_date").min().over("customer_id"),
        repeat=pl.col("order_date").n_unique().over("customer_id") >= 2,
    )
    first_orders, returning_orders = orders["first"].sum(), (~orders["first"]).sum()
    recent, before = as_of - timedelta(days=WINDOW_DAYS), as_of - timedelta(days=2 * WINDOW_DAYS)
    order_id, first = pl.col("order_id"), pl.col("first")
    acquired = pl.col("customer_id").filter(first)
    roles = (
        items.select("order_id", "item").unique().join(orders, on="order_id")
        .group_by("item")
        .agg(
            first_order_share=order_id.filter(first).n_unique() / max(first_orders, 1),
            returning_order_share=order_id.filter(~first).n_unique() / max(returning_orders, 1),
            acquired_customers=acquired.n_unique(),
            acquired_repeat=pl.col("customer_id").filter(first & pl.col("repeat")).n_unique(),
            orders_recent=order_id.filter(pl.col("order_date") > recent).n_unique(),
            orders_before=order_id.filter(pl.col("order_date").is_between(before, recent, closed="right")).n_unique(),
        )
        .with_columns(
            acquired_repeat_rate=pl.when(pl.col("acquired_customers") > 0)
            .then(pl.col("acquired_repeat") / pl.col("acquired_customers")),
            growth=pl.when(pl.col("orders_before") > 0).then(pl.col("orders_recent") / pl.col("orders_before") - 1),
        )
    )  # fmt: skip
    f, r, growth = pl.col("first_order_share"), pl.col("returning_order_share"), pl.col("growth")
    return (
        roles.with_columns(
            role=pl.when((f > f.mean()) & (f > r)).then(pl.lit("traffic"))
            .when((r > r.mean()) & (r > f)).then(pl.lit("profit"))
            .when((growth >= GROWING) | (growth.is_null() & (pl.col("orders_recent") > 0))).then(pl.lit("potential"))
            .otherwise(pl.lit("marginal"))
        )
        .with_columns(rule=pl.col("role").replace_strict(RULES))
        .drop("acquired_repeat")
        .sort(pl.col("role").cast(pl.Enum(ROLES)), -f, -r, "item")
    )  # fmt: skip


def items_of(lines: pl.DataFrame, orders: pl.DataFrame) -> tuple[str, pl.DataFrame]:
    """What an order holds, as finely as the export tells: products (`sku`, named by their most frequent
    product name) from the order lines, else categories (of the lines, else of the orders)."""
    if lines["sku"].drop_nulls().len():
        names = lines.group_by("sku").agg(name=pl.col("product").drop_nulls().mode().sort().first())
        return "sku", lines.select("order_id", item="sku").drop_nulls().join(names, left_on="item", right_on="sku")
    source = lines if lines["category"].drop_nulls().len() else orders
    return "category", source.select("order_id", item="category", name="category").drop_nulls()
