"""The shop over time, for the overview: figures by calendar month of a period, the repeat-purchase and
churn rates as of any day, the class mix by month and a cohort grid. Plain Polars over completed orders
(`customer_id, order_date, amount`); orders not completed are counted by month beside them.

Before the shop's history starts nothing is known: a month that ends before it, or a churn rate on a day
too soon after it for anyone to have been away `churned_after_days`, is null ("not enough history"), not 0."""

from datetime import date, timedelta

import polars as pl

from assets.customers.history import state_at
from pipelines.warehouse import CANCELLED, OPEN


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    """The first day of the month `months` after `day`'s."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def default_period(as_of: date) -> tuple[date, date]:
    """The 12 calendar months to `as_of` (its own month included, up to `as_of`)."""
    return add_months(as_of, -11), as_of


def previous_period(first: date, last: date) -> tuple[date, date]:
    """The period of the same length just before: as many calendar months back when first..last starts on the
    first of a month, else as many days."""
    if first.day != 1:
        days = (last - first).days + 1
        return first - timedelta(days=days), first - timedelta(days=1)
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    return add_months(first, -months), _months_back(last, months)


def _months_back(day: date, months: int) -> date:
    """`day`, `months` earlier, kept inside its month (31 March, one month back: 29 February 2024)."""
    start = add_months(day, -months)
    return start.replace(day=min(day.day, (add_months(start, 1) - timedelta(days=1)).day))


def month_ends(first: date, last: date) -> list[date]:
    """The last day of each calendar month touching first..last, the last one cut at `last`."""
    ends, start = [], month_start(first)
    while start <= last:
        ends.append(min(add_months(start, 1) - timedelta(days=1), last))
        start = add_months(start, 1)
    return ends


def monthly_figures(orders: pl.DataFrame, first: date, last: date) -> pl.DataFrame:
    """One row per calendar month of first..last (its days inside the period): net revenue from new customers
    (whose first order is in that month) and from returning ones, buyers (new, returning), orders, average
    order value. `orders` are every completed order up to `last`, earlier ones telling who is returning."""
    firsts = orders.group_by("customer_id").agg(first_month=pl.col("order_date").min().dt.truncate("1mo"))
    months = pl.DataFrame({"month": [month_start(end) for end in month_ends(first, last)]})
    new = pl.col("first_month") == pl.col("month")
    figures = (
        orders.filter(pl.col("order_date").is_between(first, last))
        .join(firsts, on="customer_id")
        .with_columns(month=pl.col("order_date").dt.truncate("1mo"))
        .group_by("month")
        .agg(
            revenue_new=pl.col("amount").filter(new).sum(),
            revenue_returning=pl.col("amount").filter(~new).sum(),
            buyers=pl.col("customer_id").n_unique(),
            new_buyers=pl.col("customer_id").filter(new).n_unique(),
            orders=pl.len(),
        )
    )
    return (
        months.join(figures, on="month", how="left")
        .fill_null(0)
        .with_columns(
            revenue=pl.col("revenue_new") + pl.col("revenue_returning"),
            returning_buyers=pl.col("buyers") - pl.col("new_buyers"),
        )
        .with_columns(average_order_value=pl.when(pl.col("orders") > 0).then(pl.col("revenue") / pl.col("orders")))
    )


def not_completed_by_month(orders: pl.DataFrame, first: date, last: date) -> pl.DataFrame:
    """One row per calendar month of first..last: orders placed in it still open, and cancelled or returned
    (`orders` of every status; neither counts as revenue)."""
    months = pl.DataFrame({"month": [month_start(end) for end in month_ends(first, last)]})
    counts = (
        orders.filter(pl.col("order_date").is_between(first, last))
        .group_by(month=pl.col("order_date").dt.truncate("1mo"))
        .agg(open_orders=(pl.col("status") == OPEN).sum(), cancelled_orders=(pl.col("status") == CANCELLED).sum())
    )
    return months.join(counts, on="month", how="left").fill_null(0)


def period_totals(
    orders: pl.DataFrame, first: date, last: date, churned_after_days: int, history_start: date | None = None
) -> dict:
    """The period's figures: net revenue (new, returning: as by month), buyers and new buyers (first order in
    the period), orders, average order value; the repeat-purchase and churn rates on its last day (the churn
    rate null too soon after `history_start`: see rates_as_of)."""
    months = monthly_figures(orders, first, last)
    inside = orders.filter(pl.col("order_date").is_between(first, last))
    firsts = orders.group_by("customer_id").agg(pl.col("order_date").min())
    revenue, count = months["revenue"].sum(), inside.height
    return {
        "revenue": revenue, "revenue_new": months["revenue_new"].sum(),
        "revenue_returning": months["revenue_returning"].sum(),
        "buyers": inside["customer_id"].n_unique(),
        "new_buyers": firsts.filter(pl.col("order_date").is_between(first, last)).height,
        "orders": count, "average_order_value": revenue / count if count else None,
        **rates_as_of(orders, [last], churned_after_days, history_start).drop("as_of", "customers").row(0, named=True),
    }  # fmt: skip


def rates_as_of(
    orders: pl.DataFrame, days: list[date], churned_after_days: int, history_start: date | None = None
) -> pl.DataFrame:
    """For each day: customers so far (a completed order on or before it), the repeat-purchase rate (the share
    with two or more purchase days) and the churn rate (the share whose last order is more than
    `churned_after_days` before the day: not back within a year, with the default 365). The churn rate is null
    up to `churned_after_days` after `history_start`, when nobody can have been away that long."""
    purchase_days = orders.select("customer_id", "order_date").unique()
    rows = []
    for day in days:
        rates = (
            purchase_days.filter(pl.col("order_date") <= day)
            .group_by("customer_id")
            .agg(days=pl.len(), last=pl.col("order_date").max())
            .select(
                customers=pl.len(),
                repeat_rate=(pl.col("days") >= 2).mean(),
                churn_rate=((pl.lit(day) - pl.col("last")).dt.total_days() > churned_after_days).mean(),
            )
        )
        row = {"as_of": day, **rates.row(0, named=True)}
        if history_start is not None and (day - history_start).days <= churned_after_days:
            row["churn_rate"] = None
        rows.append(row)
    return pl.DataFrame(
        rows, schema={"as_of": pl.Date, "customers": pl.Int64, "repeat_rate": pl.Float64, "churn_rate": pl.Float64}
    )


def class_mix_by_month(history: pl.DataFrame, days: list[date]) -> pl.DataFrame:
    """Customers per RFM class on each day (a month's last), from core.segment_history: one row per day and
    class, with its share of that day's customers. Days before the recorded history have none."""
    frames = [state_at(history, day).group_by("rfm_class").len("customers").with_columns(as_of=pl.lit(day))
              for day in days]  # fmt: skip
    mix = pl.concat(frames) if frames else pl.DataFrame(schema={"rfm_class": pl.String, "customers": pl.UInt32})
    return mix.with_columns(share=pl.col("customers") / pl.col("customers").sum().over("as_of")).sort("as_of")


def cohort_grid(orders: pl.DataFrame, first: date, last: date) -> pl.DataFrame:
    """Customers by the month of their first completed order (within first..last) and months since: one row
    per cohort and month after it up to `last`'s month, with the share of the cohort who bought in that month."""
    firsts = orders.group_by("customer_id").agg(cohort=pl.col("order_date").min().dt.truncate("1mo"))
    cohorts = firsts.filter(pl.col("cohort").is_between(month_start(first), last))
    sizes = cohorts.group_by("cohort").len("customers")
    index = pl.col("order_date").dt.year() * 12 + pl.col("order_date").dt.month()
    bought = (
        orders.filter(pl.col("order_date") <= last)
        .join(cohorts, on="customer_id")
        .with_columns(months_since=index - (pl.col("cohort").dt.year() * 12 + pl.col("cohort").dt.month()))
        .filter(pl.col("months_since") >= 1)
        .group_by("cohort", "months_since")
        .agg(buyers=pl.col("customer_id").n_unique())
    )
    last_index = last.year * 12 + last.month
    grid = (
        sizes.with_columns(
            months_since=pl.int_ranges(
                1, last_index - (pl.col("cohort").dt.year() * 12 + pl.col("cohort").dt.month()) + 1, dtype=pl.Int32
            )
        )
        .explode("months_since")
        .drop_nulls("months_since")
    )
    return (
        grid.join(bought.with_columns(pl.col("months_since").cast(pl.Int32)), on=["cohort", "months_since"],
                  how="left")
        .with_columns(pl.col("buyers").fill_null(0))
        .with_columns(share=pl.col("buyers") / pl.col("customers"))
        .sort("cohort", "months_since")
    )  # fmt: skip
