"""The overview's sections over time: a period against the previous one, month by month, the class mix by
month and the cohort heat map. Figures from assets.customers.trends."""

from datetime import date, timedelta

import polars as pl
import pygal

from assets.customers.trends import (
    class_mix_by_month,
    cohort_grid,
    month_ends,
    monthly_figures,
    not_completed_by_month,
    period_totals,
    previous_period,
    rates_as_of,
)
from pipelines.warehouse import COMPLETED
from reports.render import chart, money
from reports.translations import CLASS_NAMES, TEXT

PERIOD_MEASURES = (
    "revenue", "revenue_new", "revenue_returning", "buyers", "new_buyers", "orders", "average_order_value",
    "repeat_rate", "churn_rate", "open_orders", "cancelled_orders",
)  # fmt: skip
MONTH_MEASURES = ("revenue_new", "revenue_returning", "buyers", "orders", "average_order_value", "repeat_rate",
                  "churn_rate", "open_orders", "cancelled_orders")  # fmt: skip
NOT_COMPLETED = ("open_orders", "cancelled_orders")


def months_with_rates(
    orders: pl.DataFrame, completed: pl.DataFrame, first: date, last: date, churned_after_days: int,
    history_start: date,
) -> pl.DataFrame:  # fmt: skip
    """monthly_figures of the completed orders with the rates on each month's last day (within the period) and
    the orders not completed (from `orders`, of every status) beside them; `known`: the month ends on or after
    `history_start` (the figures of one that does not are null: not enough history, not zero)."""
    ends = month_ends(first, last)
    rates = rates_as_of(completed, ends, churned_after_days, history_start).drop("as_of", "customers")
    others = not_completed_by_month(orders, first, last).drop("month")
    months = pl.concat([monthly_figures(completed, first, last), rates, others], how="horizontal")
    return months.with_columns(known=pl.Series([end >= history_start for end in ends], dtype=pl.Boolean)).select(
        "month", "known", pl.when("known").then(pl.exclude("month", "known")).name.keep()
    )


def totals(
    completed: pl.DataFrame, months: pl.DataFrame, first: date, last: date, churned_after_days: int,
    history_start: date,
) -> dict:  # fmt: skip
    """period_totals of the completed orders, and the orders not completed of its months (months_with_rates);
    all null for a period that ends before `history_start`."""
    if last < history_start:
        return dict.fromkeys(PERIOD_MEASURES)
    counts = {m: months[m].sum() for m in NOT_COMPLETED}
    return period_totals(completed, first, last, churned_after_days, history_start) | counts


def trends_context(
    orders: pl.DataFrame, history: pl.DataFrame, first: date, last: date, churned_after_days: int, language: str,
    currency: str, history_start: date,
) -> dict:  # fmt: skip
    """What overview_trends.html.j2 shows: `orders` are orders of every status (customer_id, order_date, amount,
    status); figures count the completed ones, and the others are counted beside them. A period, month or rate
    before `history_start` allows is not known (null), and the page says so."""
    t, names = TEXT[language], CLASS_NAMES[language]
    previous_first, previous_last = previous_period(first, last)
    completed = orders.filter(pl.col("status") == COMPLETED)
    this = months_with_rates(orders, completed, first, last, churned_after_days, history_start)
    before = months_with_rates(orders, completed, previous_first, previous_last, churned_after_days, history_start)
    labels = [f"{m:%Y-%m}" for m in this["month"]]
    revenue_chart = chart(
        pygal.StackedBar, labels,
        {t["measure_revenue_new"]: this["revenue_new"].to_list(),
         t["measure_revenue_returning"]: this["revenue_returning"].to_list()},
        value_formatter=money(currency), x_label_rotation=30,
    )  # fmt: skip
    against_chart = chart(
        pygal.Line, labels,
        {t["this_period"]: this["revenue"].to_list(),
         f"{t['chart_previous']} ({previous_first:%Y-%m} – {previous_last:%Y-%m})": before["revenue"].to_list()},
        value_formatter=money(currency), x_label_rotation=30, dots_size=3, max_scale=8,
    )  # fmt: skip
    mix = class_mix_by_month(history, month_ends(first, last))
    shares = {(row["as_of"], row["rfm_class"]): row["share"] for row in mix.iter_rows(named=True)}
    ends = month_ends(first, last)
    present = [c for c in names if any(k[1] == c for k in shares)]
    mix_chart = (
        chart(pygal.StackedBar, labels, {names[c]: [shares.get((d, c)) for d in ends] for c in present},
              value_formatter=lambda v: f"{v:.0%}", x_label_rotation=30, height=380)
        if shares else ""
    )  # fmt: skip
    at_ends = {(r["as_of"], r["rfm_class"]): r["share"] for r in class_mix_by_month(history, [previous_last, last])
               .iter_rows(named=True)}  # fmt: skip
    class_ends = [(names[c], at_ends.get((last, c)), at_ends.get((previous_last, c))) for c in names
                  if (last, c) in at_ends or (previous_last, c) in at_ends]  # fmt: skip
    grid = cohort_grid(completed, first, last)
    previous_grid = cohort_grid(completed, previous_first, previous_last)
    return {
        "first": first, "last": last, "previous_first": previous_first, "previous_last": previous_last,
        "totals": totals(completed, this, first, last, churned_after_days, history_start),
        "previous_totals": totals(completed, before, previous_first, previous_last, churned_after_days, history_start),
        # the data start inside a period: its figures are of part of it, and a change against it says nothing
        "history_start": history_start, "partial": first < history_start,
        "churn_known_from": history_start + timedelta(days=churned_after_days + 1),
        "previous_partial": previous_first < history_start <= previous_last,
        "previous_known": history_start <= previous_last,
        "period_measures": PERIOD_MEASURES, "month_measures": MONTH_MEASURES,
        "months": list(zip(labels, this.to_dicts(), before.to_dicts() + [None] * (this.height - before.height),
                           strict=False)),
        "churned_after_days": churned_after_days,
        "class_ends": class_ends,
        "revenue_chart": revenue_chart, "against_chart": against_chart, "mix_chart": mix_chart,
        "cohorts": cohort_rows(grid), "previous_cohorts": cohort_rows(previous_grid),
        "cohort_width": max(grid["months_since"].max() or 0, previous_grid["months_since"].max() or 0),
        "heat_max": max(grid["share"].max() or 0, previous_grid["share"].max() or 0, 0.01),
    }  # fmt: skip


def cohort_rows(grid: pl.DataFrame) -> list[dict]:
    """The cohort grid as the heat map's rows: the cohort's month, its customers and its shares by month after."""
    return [
        {"cohort": f"{key[0]:%Y-%m}", "customers": rows["customers"][0], "shares": rows["share"].to_list()}
        for key, rows in grid.group_by("cohort", maintain_order=True)
    ]


def change(measure: str, now: float | None, then: float | None, points: str) -> str:
    """This period against the previous: rates in percentage `points` (the unit's name), other figures in
    percent."""
    if now is None or then is None:
        return "–"
    if "rate" in measure:
        return f"{(now - then) * 100:+.1f} {points}"
    return f"{now / then - 1:+.1%}" if then else "–"
