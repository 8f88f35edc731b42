"""Goals for a sales event, from the previous comparable one. Plain Polars.

An event sells from its warm-up to the end of its after-glow. Its buyers are new (their first
purchase ever falls in that window) or returning. Goals take the comparable event's actuals,
scale buyers, spend per buyer and orders per buyer by the shop's growth (the trailing quarter
before each event's build-up; the order value by its own part of the spend growth, items per
order as they were), and break returning buyers down by class: class size at this event's
baseline x that class's response rate at the comparable event. Every goal row carries its inputs
and formula.

Growth compares equal stretches: when the comparable's trailing quarter would start before the
data do, both windows are cut to the days the data cover before the comparable (a partial window
measured against a whole one overstates growth), and the inputs say so (`window_cut`).
"""

import json
from datetime import date, timedelta

import polars as pl

from pipelines.calendar import Event
from pipelines.warehouse import CANCELLED, COMPLETED, OPEN

TRAILING_DAYS = 90
# Buyers are new (first purchase ever in the selling window) or returning; ratios are per completed order.
MEASURES = ("new_buyers", "returning_buyers", "buyers", "revenue_new", "revenue_returning", "revenue", "orders",
            "items", "average_order_value", "items_per_order", "open_orders", "cancelled_orders")  # fmt: skip
GOAL_SCHEMA = {
    "event_id": pl.String, "measure": pl.String, "rfm_class": pl.String, "goal": pl.Float64,
    "comparable_event": pl.String, "comparable_actual": pl.Float64, "basis": pl.String, "formula": pl.String,
    "inputs": pl.String, "band_low": pl.Float64, "band_high": pl.Float64, "band_quantiles": pl.String,
}  # fmt: skip


def selling_window(event: Event) -> tuple[date, date]:
    return event.phases["warm_up"][0], event.end


def selling_orders(orders: pl.DataFrame, event: Event) -> pl.DataFrame:
    """The orders of an event's selling window, with their phase and whether their customer is
    new (first purchase ever inside the window; null for a customer who never completed one)."""
    first, last = selling_window(event)
    first_buy = (
        orders.filter(pl.col("status") == COMPLETED)
        .group_by("customer_id")
        .agg(first_purchase=pl.col("order_date").min())
    )
    return (
        orders.filter(pl.col("order_date").is_between(first, last))
        .join(first_buy, on="customer_id", how="left")
        .with_columns(new=pl.col("first_purchase") >= first, phase=phase_of(event, pl.col("order_date")))
    )


def counting_lost(orders: pl.DataFrame, after_days: int | None) -> pl.DataFrame:
    """Orders still open more than `after_days` before the last day loaded count as cancelled (lost)."""
    if after_days is None or orders.is_empty():
        return orders
    lost_before = orders["order_date"].max() - timedelta(days=after_days)
    lost = (pl.col("status") == OPEN) & (pl.col("order_date") < lost_before)
    return orders.with_columns(status=pl.when(lost).then(pl.lit(CANCELLED)).otherwise("status"))


def phase_of(event: Event, day: pl.Expr) -> pl.Expr:
    """The name of the event's phase a day falls in; null outside the event."""
    phase = pl.lit(None, pl.String)
    for name, (a, b) in event.phases.items():
        phase = pl.when(day.is_between(a, b)).then(pl.lit(name)).otherwise(phase)
    return phase


def measures(window: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """MEASURES of a selling window, overall (`by` empty) or per group; revenue is net of cancellations."""
    completed, new = pl.col("status") == COMPLETED, pl.col("new")
    sums = {
        "new_buyers": pl.col("customer_id").filter(completed & new).n_unique(),
        "returning_buyers": pl.col("customer_id").filter(completed & ~new).n_unique(),
        "revenue_new": pl.col("amount").filter(new).sum(),
        "revenue_returning": pl.col("amount").filter(~new).sum(),
        "orders": completed.sum(),
        "items": pl.col("items").filter(completed).sum(),
        "open_orders": (pl.col("status") == OPEN).sum(),  # placed, not completed yet: not revenue
        "cancelled_orders": (pl.col("status") == CANCELLED).sum(),  # cancelled orders and returns
    }
    frame = window.group_by(by).agg(**sums) if by else window.select(**sums)
    per_order = lambda total: pl.when(pl.col("orders") > 0).then(total / pl.col("orders")).otherwise(0.0)  # noqa: E731
    return frame.with_columns(
        pl.col("new_buyers", "returning_buyers", "orders", "items", "open_orders", "cancelled_orders").cast(pl.Float64),
        buyers=(pl.col("new_buyers") + pl.col("returning_buyers")).cast(pl.Float64),
        revenue=pl.col("revenue_new") + pl.col("revenue_returning"),
        average_order_value=per_order(pl.col("revenue_new") + pl.col("revenue_returning")),
        items_per_order=per_order(pl.col("items").cast(pl.Float64)),
    ).select(*by, *MEASURES)


def event_actuals(orders: pl.DataFrame, event: Event) -> dict[str, float]:
    """The event's MEASURES over its selling window."""
    row = measures(selling_orders(orders, event), []).row(0, named=True)
    digits = {"average_order_value": 2, "items_per_order": 3, "revenue_new": 2, "revenue_returning": 2, "revenue": 2}
    return {name: round(float(row[name] or 0.0), digits.get(name, 6)) for name in MEASURES}


def trailing(orders: pl.DataFrame, before: date, days: int) -> tuple[int, float, int]:
    """Buyers, net revenue and completed orders in the `days` days before a day."""
    window = orders.filter(pl.col("order_date").is_between(before - timedelta(days=days), before - timedelta(days=1)))
    completed = window.filter(pl.col("status") == COMPLETED)
    return completed["customer_id"].n_unique(), float(window["amount"].sum()), completed.height


def response_rates(baseline: pl.DataFrame, orders: pl.DataFrame, event: Event) -> pl.DataFrame:
    """Per class at an event's baseline: customers, how many bought in its selling window, the rate."""
    first, last = selling_window(event)
    bought = orders.filter((pl.col("status") == COMPLETED) & pl.col("order_date").is_between(first, last))
    return (
        baseline.select("customer_id", "rfm_class")
        .with_columns(bought=pl.col("customer_id").is_in(bought["customer_id"].implode()))
        .group_by("rfm_class")
        .agg(customers=pl.len(), buyers=pl.col("bought").sum())
        .with_columns(response_rate=pl.col("buyers") / pl.col("customers"))
        .sort("rfm_class")
    )


def plan_goals(
    event: Event, comparable: Event | None, orders: pl.DataFrame, baseline_now: pl.DataFrame,
    baseline_then: pl.DataFrame | None, growth_rate: float | None = None, defaults: dict[str, float] | None = None,
    passed_over: list[Event] = (), data_start: date | None = None,
) -> pl.DataFrame:  # fmt: skip
    """One row per measure (and per class for returning buyers) with the goal and how it was reached;
    `passed_over` are the more recent events of the kind that had too few orders to compare with; `data_start`
    the first day of the shop's history (by default its first order's)."""
    skipped = {"passed_over": [e.id for e in passed_over]} if passed_over else {}
    if comparable is None:
        rows = [
            {"measure": measure, "goal": value, "basis": "settings",
             "formula": "no comparable event: events.default_goals", "inputs": skipped}
            for measure, value in (defaults or {}).items()
        ] or [{"measure": "none", "basis": "none", "inputs": skipped,
               "formula": "no comparable event and no events.default_goals"}]  # fmt: skip
        return _frame(event, None, rows)

    then = event_actuals(orders, comparable)
    if growth_rate is not None:
        buyer_growth = revenue_growth = 1 + growth_rate
        frequency_growth = 1.0
        growth_inputs = {"growth_rate_setting": growth_rate}
    else:
        data_start = data_start or orders["order_date"].min()
        days = max(0, min(TRAILING_DAYS, (comparable.start - data_start).days))
        (buyers_now, revenue_now, orders_now), (buyers_then, revenue_then, orders_then) = (
            trailing(orders, event.start, days),
            trailing(orders, comparable.start, days),
        )
        buyer_growth = buyers_now / buyers_then if buyers_then else 1.0
        revenue_growth = revenue_now / revenue_then if revenue_then else 1.0
        counts = (orders_now, buyers_now, orders_then, buyers_then)
        frequency_growth = (orders_now / buyers_now) / (orders_then / buyers_then) if all(counts) else 1.0
        growth_inputs = {"trailing_days": days, "window_cut": days < TRAILING_DAYS, "data_start": str(data_start),
                         "buyers_now": buyers_now, "buyers_then": buyers_then,
                         "revenue_now": round(revenue_now, 2), "revenue_then": round(revenue_then, 2),
                         "orders_now": orders_now, "orders_then": orders_then}  # fmt: skip
    # Growth in spend per buyer splits into more orders per buyer and more spend per order, so that the
    # order-value goal takes only its own part of it.
    spend_growth = revenue_growth / buyer_growth if buyer_growth else 1.0
    order_value_growth = spend_growth / frequency_growth

    rates = response_rates(baseline_then, orders, comparable) if baseline_then is not None else pl.DataFrame(
        schema={"rfm_class": pl.String, "response_rate": pl.Float64})  # fmt: skip
    sizes = baseline_now.group_by("rfm_class").agg(size_now=pl.len())
    by_class = (
        sizes.join(rates.select("rfm_class", "response_rate"), on="rfm_class", how="left")
        .with_columns(
            pl.col("response_rate").fill_null(0.0), goal=pl.col("size_now") * pl.col("response_rate").fill_null(0.0)
        )
        .sort("rfm_class")
    )

    new_goal = then["new_buyers"] * buyer_growth
    returning_goal = float(by_class["goal"].sum())
    per = lambda total, count: total / count if count else 0.0  # noqa: E731
    revenue_new = new_goal * per(then["revenue_new"], then["new_buyers"]) * spend_growth
    revenue_returning = returning_goal * per(then["revenue_returning"], then["returning_buyers"]) * spend_growth
    buyers_then = then["new_buyers"] + then["returning_buyers"]
    orders_goal = (new_goal + returning_goal) * per(then["orders"], buyers_then) * frequency_growth
    items_goal = orders_goal * then["items_per_order"]
    common = {"buyer_growth": round(buyer_growth, 4), "spend_growth": round(spend_growth, 4),
              "frequency_growth": round(frequency_growth, 4), "order_value_growth": round(order_value_growth, 4),
              **growth_inputs, **skipped}  # fmt: skip
    rows = [
        {"measure": "new_buyers", "goal": new_goal, "comparable_actual": then["new_buyers"],
         "formula": "comparable new buyers x buyer growth", "inputs": common},
        {"measure": "returning_buyers", "goal": returning_goal, "comparable_actual": then["returning_buyers"],
         "formula": "sum over classes of class size now x class response rate at the comparable event",
         "inputs": common},
        {"measure": "revenue_new", "goal": revenue_new, "comparable_actual": then["revenue_new"],
         "formula": "new buyers goal x comparable revenue per new buyer x spend growth", "inputs": common},
        {"measure": "revenue_returning", "goal": revenue_returning, "comparable_actual": then["revenue_returning"],
         "formula": "returning buyers goal x comparable revenue per returning buyer x spend growth", "inputs": common},
        {"measure": "orders", "goal": orders_goal, "comparable_actual": then["orders"],
         "formula": "buyers goal x comparable orders per buyer x frequency growth", "inputs": common},
        {"measure": "items", "goal": items_goal, "comparable_actual": then["items"],
         "formula": "orders goal x comparable items per order", "inputs": common},
        {"measure": "average_order_value", "goal": then["average_order_value"] * order_value_growth,
         "comparable_actual": then["average_order_value"],
         "formula": "comparable average order value x order value growth", "inputs": common},
        {"measure": "items_per_order", "goal": per(items_goal, orders_goal),
         "comparable_actual": then["items_per_order"], "formula": "items goal / orders goal", "inputs": common},
    ] + [
        {"measure": "returning_buyers_by_class", "rfm_class": row["rfm_class"], "goal": row["goal"],
         "formula": "class size now x class response rate at the comparable event",
         "inputs": {"class_size_now": row["size_now"], "response_rate_then": round(row["response_rate"], 4)}}
        for row in by_class.iter_rows(named=True)
    ]  # fmt: skip
    for row in rows:
        row["basis"] = "comparable_event"
    return _frame(event, comparable, rows)


def growth_of(goals: pl.DataFrame) -> dict:
    """How an event's goals were scaled: the inputs of its shop-wide goals set from a comparable event, or {}."""
    inputs = goals.filter((pl.col("basis") == "comparable_event") & pl.col("rfm_class").is_null())["inputs"]
    return json.loads(inputs[0]) if len(inputs) else {}


def _frame(event: Event, comparable: Event | None, rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "event_id": event.id,
                "rfm_class": None,
                "goal": None,
                "comparable_actual": None,
                "comparable_event": comparable.id if comparable else None,
                "band_low": None,  # set beside the goals by assets.campaigns.bands.with_bands
                "band_high": None,
                "band_quantiles": None,
                **row,
                "inputs": row["inputs"] if isinstance(row.get("inputs"), str) else json.dumps(row.get("inputs", {})),
                **({"goal": round(row["goal"], 2)} if row.get("goal") is not None else {}),
            }
            for row in rows
        ],  # fmt: skip
        schema=GOAL_SCHEMA,
    )
