"""The overview over time and product roles, on hand-made shops worked by hand."""

from datetime import date

import polars as pl
import pytest

from assets.customers.products import items_of, product_roles
from assets.customers.trends import cohort_grid, monthly_figures, period_totals, previous_period, rates_as_of
from reports.trends import months_with_rates, totals

D = date
# Completed orders: a comes in January 2024 and again in March; b in January only; c in February, back in
# March twice on one day; d bought once, in November 2022.
ORDERS = pl.DataFrame(
    [("d", D(2022, 11, 20), 70.0), ("a", D(2024, 1, 5), 10.0), ("b", D(2024, 1, 20), 30.0),
     ("c", D(2024, 2, 2), 40.0), ("a", D(2024, 3, 1), 20.0), ("c", D(2024, 3, 9), 5.0), ("c", D(2024, 3, 9), 15.0)],
    schema=["customer_id", "order_date", "amount"], orient="row",
)  # fmt: skip


def test_monthly_figures_split_new_and_returning_customers():
    months = monthly_figures(ORDERS, D(2024, 1, 1), D(2024, 3, 31))
    # January: a and b are new (10 + 30). February: c is new (40). March: a and c return (20 + 5 + 15).
    assert months.select("month", "revenue_new", "revenue_returning", "buyers", "new_buyers", "orders").rows() == [
        (D(2024, 1, 1), 40.0, 0.0, 2, 2, 2),
        (D(2024, 2, 1), 40.0, 0.0, 1, 1, 1),
        (D(2024, 3, 1), 0.0, 40.0, 2, 0, 3),
    ]
    assert months["average_order_value"].to_list() == [20.0, 40.0, pytest.approx(40 / 3)]


def test_a_month_without_orders_shows_as_zero():
    months = monthly_figures(ORDERS, D(2023, 11, 1), D(2023, 12, 31))
    assert months.select("month", "revenue", "orders").rows() == [(D(2023, 11, 1), 0.0, 0), (D(2023, 12, 1), 0.0, 0)]
    assert months["average_order_value"].to_list() == [None, None]


def test_churn_and_repeat_rates_on_two_dates():
    rates = rates_as_of(ORDERS, [D(2024, 1, 31), D(2024, 3, 31)], churned_after_days=365)
    # 31 January 2024: d (last order 437 days before), a, b: d churned; nobody bought on two days yet.
    # 31 March 2024: d, a, b, c; d churned; a (5 Jan, 1 Mar) and c (2 Feb, 9 Mar twice) bought on two days.
    assert rates.rows() == [(D(2024, 1, 31), 3, 0.0, pytest.approx(1 / 3)), (D(2024, 3, 31), 4, 0.5, 0.25)]
    # b's last order, 20 January 2024, is 365 days before 19 January 2025 (2024 is a leap year): not churned
    # yet; the day after, churned
    b = rates_as_of(ORDERS.filter(pl.col("customer_id") == "b"), [D(2025, 1, 19), D(2025, 1, 20)], 365)
    assert b["churn_rate"].to_list() == [0.0, 1.0]


def test_period_totals_and_the_previous_period():
    totals = period_totals(ORDERS, D(2024, 1, 1), D(2024, 3, 31), 365)
    assert totals == {
        "revenue": 120.0, "revenue_new": 80.0, "revenue_returning": 40.0, "buyers": 3, "new_buyers": 3,
        "orders": 6, "average_order_value": 20.0, "repeat_rate": 0.5, "churn_rate": 0.25,
    }  # fmt: skip
    assert previous_period(D(2024, 1, 1), D(2024, 12, 31)) == (D(2023, 1, 1), D(2023, 12, 31))
    assert previous_period(D(2024, 3, 1), D(2024, 3, 31)) == (D(2024, 2, 1), D(2024, 2, 29))
    assert previous_period(D(2024, 1, 1), D(2024, 3, 15)) == (D(2023, 10, 1), D(2023, 12, 15))
    assert previous_period(D(2024, 1, 10), D(2024, 1, 19)) == (D(2023, 12, 31), D(2024, 1, 9))


def test_the_cohort_grid_counts_who_came_back_in_each_later_month():
    grid = cohort_grid(ORDERS, D(2024, 1, 1), D(2024, 3, 31))
    # January's cohort (a, b): a back in March (month 2). February's (c): back in March (month 1).
    # d's cohort (November 2022) is before the period.
    assert grid.select("cohort", "customers", "months_since", "buyers", "share").rows() == [
        (D(2024, 1, 1), 2, 1, 0, 0.0),
        (D(2024, 1, 1), 2, 2, 1, 0.5),
        (D(2024, 2, 1), 1, 1, 1, 1.0),
    ]


def test_one_product_of_each_role():
    # T is in every first order; P in three of the four returning orders; N is new in the last 90 days;
    # M was in one returning order in March, before them.
    orders = [("o1", "c1", D(2024, 1, 10)), ("o2", "c1", D(2024, 2, 10)), ("o3", "c2", D(2024, 1, 15)),
              ("o4", "c2", D(2024, 3, 1)), ("o5", "c3", D(2024, 1, 20)), ("o6", "c3", D(2024, 3, 10)),
              ("o7", "c4", D(2024, 2, 1)), ("o8", "c4", D(2024, 6, 1)), ("o9", "c5", D(2024, 6, 10))]  # fmt: skip
    items = [("o1", "T"), ("o2", "P"), ("o3", "T"), ("o4", "P"), ("o5", "T"), ("o6", "P"), ("o6", "M"),
             ("o7", "T"), ("o8", "N"), ("o9", "T")]  # fmt: skip
    roles = product_roles(
        pl.DataFrame(orders, schema=["order_id", "customer_id", "order_date"], orient="row"),
        pl.DataFrame(items, schema=["order_id", "item"], orient="row"),
        D(2024, 6, 30),
    )
    # first orders: o1 o3 o5 o7 o9 (5, all T); returning: o2 o4 o6 o8 (4). Average shares: first 5/5 / 4 items
    # = 0.25, returning (3 + 1 + 1) / 4 / 4 = 0.3125. Last 90 days: after 2 April; the 90 before: after 3 January.
    assert roles.select("item", "role", "first_order_share", "returning_order_share").rows() == [
        ("T", "traffic", 1.0, 0.0),
        ("P", "profit", 0.0, 0.75),
        ("N", "potential", 0.0, 0.25),
        ("M", "marginal", 0.0, 0.25),
    ]
    t = roles.row(0, named=True)
    # T acquired c1..c5; all but c5 came back. Orders: o9 in the last 90 days, o1 o3 o5 o7 in the 90 before.
    assert (t["acquired_customers"], t["acquired_repeat_rate"], t["growth"]) == (5, 0.8, -0.75)
    assert roles.filter(pl.col("item") == "N")["growth"].to_list() == [None]  # new: no orders before


def test_items_are_products_where_the_export_has_them_else_categories():
    lines = pl.DataFrame(
        {
            "order_id": ["o1", "o2", "o3"],
            "sku": ["S1", "S1", None],
            "product": ["Mug", "Mug ", "Cup"],
            "category": ["home", "home", None],
        }  # fmt: skip
    )
    orders = pl.DataFrame({"order_id": ["o1", "o2", "o3"], "category": ["kitchen", "kitchen", None]})
    kind, items = items_of(lines, orders)
    # S1 is named "Mug" and "Mug " once each: the first in order names it
    assert kind == "sku" and items.rows() == [("o1", "S1", "Mug"), ("o2", "S1", "Mug")]
    kind, items = items_of(lines.with_columns(sku=pl.lit(None, pl.String)), orders)
    assert kind == "category" and items.rows() == [("o1", "home", "home"), ("o2", "home", "home")]
    kind, items = items_of(lines.with_columns(pl.lit(None, pl.String).alias(c) for c in ("sku", "category")), orders)
    assert kind == "category" and items["item"].to_list() == ["kitchen", "kitchen"]


def test_the_overview_counts_orders_not_completed_beside_the_months_figures():
    # ORDERS completed, plus in January one open and one cancelled order, in March one cancelled (a return
    # of -15: not revenue either way); the months' figures stay those of the completed orders.
    others = pl.DataFrame(
        [("e", D(2024, 1, 7), 0.0, "open"), ("b", D(2024, 1, 21), 0.0, "cancelled"),
         ("c", D(2024, 3, 10), -15.0, "cancelled")],
        schema=["customer_id", "order_date", "amount", "status"], orient="row",
    )  # fmt: skip
    orders = pl.concat([ORDERS.with_columns(status=pl.lit("completed")), others])
    completed = orders.filter(pl.col("status") == "completed")
    months = months_with_rates(orders, completed, D(2024, 1, 1), D(2024, 3, 31), 365, history_start=D(2022, 11, 1))
    assert months.select("open_orders", "cancelled_orders").rows() == [(1, 1), (0, 0), (0, 1)]
    assert months["revenue"].to_list() == [40.0, 40.0, 40.0] and months["orders"].to_list() == [2, 1, 3]
    period = totals(completed, months, D(2024, 1, 1), D(2024, 3, 31), 365, history_start=D(2022, 11, 1))
    assert (period["open_orders"], period["cancelled_orders"], period["orders"]) == (1, 2, 6)


def test_months_and_a_period_before_the_history_are_not_known_and_not_zero():
    # The shop's history starts on 1 January 2024 (d's order of 2022 aside): November and December 2023 are
    # before it, so neither zeros nor a churn rate; and the previous period of January to March 2024 (October to
    # December 2023) is wholly before it.
    completed = ORDERS.filter(pl.col("order_date") >= D(2024, 1, 1)).with_columns(status=pl.lit("completed"))
    start = D(2024, 1, 1)
    months = months_with_rates(completed, completed, D(2023, 11, 1), D(2024, 2, 29), 365, history_start=start)
    assert months["known"].to_list() == [False, False, True, True]
    assert months.select("revenue", "orders", "repeat_rate", "open_orders").rows() == [
        (None, None, None, None), (None, None, None, None), (40.0, 2, 0.0, 0), (40.0, 1, 0.0, 0)]  # fmt: skip
    # January and February are known, but nobody can have been away 365 days yet: no churn rate
    assert months["churn_rate"].to_list() == [None] * 4
    before = months_with_rates(completed, completed, D(2023, 10, 1), D(2023, 12, 31), 365, history_start=start)
    assert set(totals(completed, before, D(2023, 10, 1), D(2023, 12, 31), 365, history_start=start).values()) == {
        None}  # fmt: skip


def test_a_churn_rate_is_known_only_once_the_history_is_longer_than_the_churn_window():
    # b's only order is on 20 January 2024, the first day of this history: on 19 January 2025, 365 days on,
    # nobody can have been away more than 365 days (no rate); on 20 January 2025 b has (1 of 1)
    b = ORDERS.filter(pl.col("customer_id") == "b")
    rates = rates_as_of(b, [D(2025, 1, 19), D(2025, 1, 20)], 365, history_start=D(2024, 1, 20))
    assert rates["churn_rate"].to_list() == [None, 1.0] and rates["repeat_rate"].to_list() == [0.0, 0.0]
