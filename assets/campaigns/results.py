"""What a sales event achieved, set against its goals. Plain Polars.

`campaigns.results` is one long table: a row per event, section, dimension and measure, with
the actual figure, the goal where one was set, and the comparable event's figure:

- `event`: the selling window (warm-up to after-glow), goals and their planning bands from `campaigns.goals`;
- `phase` and `day` (dimension: the phase, or the ISO date): goals split by the comparable
  event's share of each measure in the same phase, and within it by its weekday pattern; the
  comparable figure is the comparable's on the same day counted from the sprint's first day;
  items per order follows from the split items and orders, order value from the split revenue and
  orders in the ratio the event's order-value goal bears to its revenue goal over its orders goal;
- `class` (dimension: class at the baseline, or `first_order_in_build_up` for customers newer than it):
  customers, buyers and response rate, against the rate the goal assumed; the buyers add up to the
  returning buyers;
- `migration` (dimension: class at the baseline, detail: class at the after-glow's end);
- `acquired` (dimension: phase of the first purchase): the customers the event brought in;
- `cohort` (dimension: an event, or `outside_events`): how customers acquired then came back,
  the share with another purchase within 90 and 180 days, counted over those known that long;
- `product` (dimension: SKU, detail: name) and `category`: net revenue and units sold;
- `quality` (dimension: reject reason, or `all`): source rows of the event's days refused;
- `outreach` (dimension: phase, detail: audience; dimension `offer`, detail: offer kind (assets.outreach.offers);
  a phase's total without detail, the event's with dimension
  `all`, both over the lists that hold someone out): contacted against held-out customers in each list's
  response window (`assets.outreach.uplift`), cost and return on spend.
"""

from datetime import date, timedelta

import polars as pl

from assets.campaigns.goals import MEASURES, measures, phase_of, response_rates, selling_orders, selling_window
from assets.outreach.uplift import UPLIFT_SCHEMA, controlled, responses, uplift
from pipelines.calendar import PHASES, Event
from pipelines.warehouse import COMPLETED

RESULT_SCHEMA = {
    "event_id": pl.String, "section": pl.String, "dimension": pl.String, "detail": pl.String, "measure": pl.String,
    "actual": pl.Float64, "goal": pl.Float64, "comparable": pl.Float64, "band_low": pl.Float64, "band_high": pl.Float64,
}  # fmt: skip
SPLIT = ("new_buyers", "returning_buyers", "buyers", "revenue_new", "revenue_returning", "revenue", "orders", "items")
REPEAT_WINDOWS = (90, 180)
OUTSIDE_EVENTS = "outside_events"
BUILD_UP_NEWCOMERS = "first_order_in_build_up"  # the class section's row of customers newer than its baseline
TOP_SELLERS = 10


def event_results(
    event: Event, comparable: Event | None, calendar: list[Event], orders: pl.DataFrame, lines: pl.DataFrame,
    baseline: pl.DataFrame, goals: pl.DataFrame, end_classes: pl.DataFrame, rejects: pl.DataFrame, rows_in: int,
) -> pl.DataFrame:  # fmt: skip
    """Every section for one event. `baseline` and `end_classes` hold customer_id and rfm_class at the
    event's start and at the after-glow's end; `rejects` one row per refused row of the event's days."""
    known_until = orders["order_date"].max() if not orders.is_empty() else event.end
    sections = [
        *performance(event, comparable, orders, goals),
        class_response(event, baseline, orders, goals),
        class_migration(baseline, end_classes),
        *acquisition(event, calendar, orders, known_until),
        *top_sellers(event, lines),
        rejections(rejects, rows_in),
    ]
    frame = pl.concat(sections, how="diagonal_relaxed").with_columns(event_id=pl.lit(event.id))
    if "band_low" in goals.columns:  # the planning band beside the event's goals (assets.campaigns.bands)
        bands = goals.filter(pl.col("rfm_class").is_null() & pl.col("band_low").is_not_null())
        frame = frame.join(
            bands.select("measure", "band_low", "band_high", section=pl.lit("event")), on=["section", "measure"],
            how="left", maintain_order="left",
        )  # fmt: skip
    return frame.select(
        pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c) for c, t in RESULT_SCHEMA.items()
    )


def _rows(section: str, frame: pl.DataFrame, dimension: str, names: list[str], **extra: pl.Expr) -> pl.DataFrame:
    """Wide `frame` (a column per measure) to long result rows."""
    return (
        frame.select(pl.col(dimension).cast(pl.String).alias("dimension"), *names, **extra)
        .with_columns(pl.col(names).cast(pl.Float64))
        .unpivot(index=["dimension", *extra], on=names, variable_name="measure", value_name="actual")
        .with_columns(section=pl.lit(section))
    )


def performance(
    event: Event, comparable: Event | None, orders: pl.DataFrame, goals: pl.DataFrame
) -> list[pl.DataFrame]:
    """Actual against goal (and the comparable event) for the whole window, each phase and each day."""
    event_goals = {
        row["measure"]: row["goal"]
        for row in goals.filter(pl.col("rfm_class").is_null() & pl.col("goal").is_not_null()).iter_rows(named=True)
    }
    for total, parts in (
        ("buyers", ("new_buyers", "returning_buyers")),
        ("revenue", ("revenue_new", "revenue_returning")),
    ):
        if total not in event_goals and all(p in event_goals for p in parts):
            event_goals[total] = sum(event_goals[p] for p in parts)

    this = selling_orders(orders, event).with_columns(day=pl.col("order_date"), all=pl.lit("all"))
    if comparable is None:
        then = this.clear()
    else:  # the comparable event's days line up with this one's by their distance from the sprint
        then = selling_orders(orders, comparable).with_columns(
            day=pl.col("order_date") + (event.sprint[0] - comparable.sprint[0]), all=pl.lit("all")
        )
    whole_then = measures(then, []).row(0, named=True)
    # The order-value goal is the comparable's times its own growth, not the revenue goal over the orders goal
    # (new and returning buyers' spend grow apart): a phase's or day's takes the same ratio to its split goals'.
    pooled = [event_goals.get(m) for m in ("average_order_value", "revenue", "orders")]
    order_value_mix = pooled[0] / (pooled[1] / pooled[2]) if all(pooled) else 1.0

    def section(name: str, keys: pl.DataFrame) -> pl.DataFrame:
        by = keys.columns[0]
        actual = keys.join(measures(this, [by]), on=by, how="left").fill_null(0.0)
        before = keys.join(measures(then, [by]), on=by, how="left").fill_null(0.0)
        if name == "event":  # the goals as set, also those set without a comparable event
            goal = keys.with_columns(**{m: pl.lit(event_goals.get(m), pl.Float64) for m in MEASURES})
        else:
            scale = {m: event_goals[m] / whole_then[m] for m in SPLIT if event_goals.get(m) and whole_then[m]}
            split = (
                before.select(by, **{m: pl.col(m) * scale[m] for m in scale})
                if name == "phase" or not scale
                else day_goals(event, comparable, then, scale)
            )
            goal = split.select(by, **{m: pl.col(m) if m in scale else pl.lit(None, pl.Float64) for m in SPLIT})
            goal = goal.with_columns(
                average_order_value=pl.col("revenue") / pl.col("orders") * order_value_mix,
                items_per_order=pl.col("items") / pl.col("orders"),
                open_orders=pl.lit(None, pl.Float64),  # counts shown beside the goals, without one
                cancelled_orders=pl.lit(None, pl.Float64),
            )
        rows = _rows(name, actual, by, list(MEASURES))
        for column, frame in (("goal", goal), ("comparable", before if comparable else None)):
            if frame is None:
                rows = rows.with_columns(pl.lit(None, pl.Float64).alias(column))
            else:
                values = _rows(name, frame, by, list(MEASURES)).select(
                    "dimension", "measure", pl.col("actual").alias(column)
                )
                rows = rows.join(values, on=["dimension", "measure"], how="left")
        return rows

    first, last = selling_window(event)
    return [
        section("event", pl.DataFrame({"all": ["all"]})),
        section("phase", pl.DataFrame({"phase": [p for p in event.phases if event.phases[p][1] >= first]})),
        section("day", pl.DataFrame({"day": pl.date_range(first, last, eager=True)})),
    ]


def day_goals(event: Event, comparable: Event, then: pl.DataFrame, scale: dict[str, float]) -> pl.DataFrame:
    """Each phase's goal (the comparable's daily figures in that phase, scaled) spread over this event's days of
    the phase by the comparable's weekday pattern: the mean on that weekday in the phase, or in the whole
    window when the phase had no such day. A weekday the shop was closed on gets no goal."""
    names = list(scale)
    figures = measures(then, ["order_date"]).select("order_date", *names)
    days_then = pl.DataFrame({"order_date": pl.date_range(*selling_window(comparable), eager=True)})
    daily_then = (
        days_then.join(figures, on="order_date", how="left")
        .fill_null(0.0)
        .with_columns(phase=phase_of(comparable, pl.col("order_date")), weekday=pl.col("order_date").dt.weekday())
    )
    in_phase = daily_then.group_by("phase", "weekday").agg(pl.col(names).mean())
    in_window = daily_then.group_by("weekday").agg(pl.col(names).mean().name.suffix("_window"))
    totals = daily_then.group_by("phase").agg(pl.col(names).sum().name.suffix("_total"))
    days = pl.DataFrame({"day": pl.date_range(*selling_window(event), eager=True)}).with_columns(
        phase=phase_of(event, pl.col("day")), weekday=pl.col("day").dt.weekday()
    )
    weighted = (
        days.join(in_phase, on=["phase", "weekday"], how="left")
        .join(in_window, on="weekday", how="left")
        .join(totals, on="phase", how="left")
        .with_columns(pl.coalesce(m, f"{m}_window", pl.lit(1.0)).alias(m) for m in names)
    )
    weight_sum = {m: pl.col(m).sum().over("phase") for m in names}
    return weighted.select(
        "day",
        *(
            (
                pl.when(weight_sum[m] > 0).then(pl.col(m) / weight_sum[m]).otherwise(1 / pl.len().over("phase"))
                * pl.col(f"{m}_total").fill_null(0.0)
                * scale[m]
            ).alias(m)
            for m in names
        ),
    )


def class_response(event: Event, baseline: pl.DataFrame, orders: pl.DataFrame, goals: pl.DataFrame) -> pl.DataFrame:
    """Per class at the baseline: customers, buyers (goal: returning buyers by class), response rate
    (goal: the rate the goal assumed); and, as `BUILD_UP_NEWCOMERS`, those whose first purchase fell between
    the baseline and the warm-up: returning buyers without a class, so that the buyers add up to them."""
    assumed = goals.filter(pl.col("measure") == "returning_buyers_by_class").select(
        "rfm_class",
        buyers=pl.col("goal"),
        response_rate=pl.col("inputs").str.json_path_match("$.response_rate_then").cast(pl.Float64),
    )
    firsts = orders.filter(pl.col("status") == COMPLETED).group_by("customer_id").agg(first=pl.col("order_date").min())
    newcomers = firsts.filter(
        (pl.col("first") < selling_window(event)[0]) & ~pl.col("customer_id").is_in(baseline["customer_id"].implode())
    ).select("customer_id", rfm_class=pl.lit(BUILD_UP_NEWCOMERS))
    rates = response_rates(pl.concat([baseline.select("customer_id", "rfm_class"), newcomers]), orders, event)
    names = ["customers", "buyers", "response_rate"]
    goal = rates.select("rfm_class").join(assumed, on="rfm_class", how="left").with_columns(customers=None)
    return _rows("class", rates, "rfm_class", names).join(
        _rows("class", goal, "rfm_class", names).select("dimension", "measure", goal="actual"),
        on=["dimension", "measure"], how="left",
    )  # fmt: skip


def class_migration(baseline: pl.DataFrame, end_classes: pl.DataFrame) -> pl.DataFrame:
    """How many of the baseline's customers ended the after-glow in each class."""
    moves = (
        baseline.select("customer_id", "rfm_class")
        .join(end_classes.select("customer_id", to="rfm_class"), on="customer_id")
        .group_by("rfm_class", "to")
        .agg(customers=pl.len())
        .sort("rfm_class", "to")
    )
    return _rows("migration", moves, "rfm_class", ["customers"], detail=pl.col("to"))


def acquisition(event: Event, calendar: list[Event], orders: pl.DataFrame, known_until: date) -> list[pl.DataFrame]:
    """The customers this event acquired, by phase of their first purchase; and, for every event up
    to this one and for customers acquired outside events before it, the repeat rates."""
    purchases = orders.filter(pl.col("status") == COMPLETED).select("customer_id", "order_date").unique()
    firsts = purchases.group_by("customer_id").agg(first=pl.col("order_date").min())
    acquired_by = pl.lit(OUTSIDE_EVENTS)
    for other in calendar:
        acquired_by = (
            pl.when(pl.col("first").is_between(*selling_window(other))).then(pl.lit(other.id)).otherwise(acquired_by)
        )
    firsts = firsts.with_columns(cohort=acquired_by)

    ours = firsts.filter(pl.col("cohort") == event.id).with_columns(phase=phase_of(event, pl.col("first")))
    by_phase = ours.group_by("phase").agg(customers=pl.len()).sort(pl.col("phase").replace_strict(PHASES, range(4)))
    acquired = pl.concat(
        [by_phase, pl.DataFrame({"phase": ["all"], "customers": [ours.height]})], how="vertical_relaxed"
    )

    earlier = {other.id for other in calendar if selling_window(other)[0] <= selling_window(event)[0]}
    cohorts = firsts.filter(
        pl.col("cohort").is_in(list(earlier)) | ((pl.col("cohort") == OUTSIDE_EVENTS) & (pl.col("first") < event.start))
    )
    later = purchases.join(cohorts.select("customer_id", "first"), on="customer_id").filter(
        pl.col("order_date") > pl.col("first")
    )
    returned = later.group_by("customer_id").agg(
        back_after=(pl.col("order_date") - pl.col("first")).dt.total_days().min()
    )
    cohorts = cohorts.join(returned, on="customer_id", how="left")
    repeat = {}
    for days in REPEAT_WINDOWS:
        known = pl.col("first") <= known_until - timedelta(days=days)
        repeat[f"known_{days}_days"] = known.sum()
        repeat[f"repeat_rate_{days}_days"] = (known & (pl.col("back_after") <= days)).sum() / known.sum()
    rates = (
        cohorts.group_by("cohort")
        .agg(acquired=pl.len(), **repeat)
        .with_columns(pl.col(f"repeat_rate_{d}_days").fill_nan(None) for d in REPEAT_WINDOWS)
    )
    order = {other.id: i for i, other in enumerate(calendar)} | {OUTSIDE_EVENTS: len(calendar)}
    rates = rates.sort(pl.col("cohort").replace_strict(order, return_dtype=pl.Int64))
    names = ["acquired", *(f"{kind}_{d}_days" for d in REPEAT_WINDOWS for kind in ("known", "repeat_rate"))]
    return [_rows("acquired", acquired, "phase", ["customers"]), _rows("cohort", rates, "cohort", names)]


def top_sellers(event: Event, lines: pl.DataFrame) -> list[pl.DataFrame]:
    """The best-selling products and categories of the selling window, by net revenue."""
    window = lines.filter(pl.col("order_date").is_between(*selling_window(event)))
    products = (
        window.filter(pl.col("sku").is_not_null())
        .group_by("sku")
        .agg(
            name=pl.col("product").drop_nulls().mode().first(),
            revenue=pl.col("amount").sum(),
            units=pl.col("quantity").sum(),
        )
        .sort("revenue", "sku", descending=[True, False])
        .head(TOP_SELLERS)
    )  # fmt: skip
    categories = (
        window.filter(pl.col("category").is_not_null())
        .group_by("category")
        .agg(revenue=pl.col("amount").sum(), units=pl.col("quantity").sum())
        .sort("revenue", "category", descending=[True, False])
    )
    return [
        _rows("product", products, "sku", ["revenue", "units"], detail=pl.col("name")),
        _rows("category", categories, "category", ["revenue", "units"]),
    ]


def rejections(rejects: pl.DataFrame, rows_in: int) -> pl.DataFrame:
    """Source rows of the event's days refused, by reason, and in all against the rows received."""
    by_reason = rejects.group_by("reason").agg(rows=pl.len()).sort("rows", "reason", descending=[True, False])
    refused = rejects.height
    overall = pl.DataFrame({"all": ["all"], "rows_in": [rows_in], "rejected": [refused],
                            "rejected_share": [refused / rows_in if rows_in else 0.0]})  # fmt: skip
    return pl.concat([
        _rows("quality", by_reason, "reason", ["rows"]),
        _rows("quality", overall, "all", ["rows_in", "rejected", "rejected_share"]),
    ])  # fmt: skip


def by_offer(measured: pl.DataFrame, costs: tuple) -> list[pl.DataFrame]:
    """Uplift by offer kind (dimension `offer`, detail: the kind) over the lists of the event's total, whose
    members it splits: the kinds' contacted and buyers add up to the total's. Rows written before offers have none."""
    offered = measured.filter(pl.col("offer_kind").is_not_null()) if "offer_kind" in measured.columns else None
    if offered is None or offered.is_empty():
        return []
    levels = uplift(offered.with_columns(dimension=pl.lit("offer")), ["dimension", "offer_kind"], *costs)
    return [levels.rename({"offer_kind": "detail"})]


def outreach_results(
    event_id: str, targets: pl.DataFrame, orders: pl.DataFrame, known_until: date, settings
) -> pl.DataFrame:
    """The `outreach` section from an event's `outreach.campaign_targets` (`settings`: the shop's outreach)."""
    targets = targets.with_columns(pl.col("held_out").fill_null(False))  # rows written before control groups
    outcomes = responses(targets, orders, settings.response_days, known_until)
    measured = controlled(outcomes, ["phase", "audience"])
    costs = (settings.cost_per_message, settings.coupon_cost)
    levels = pl.concat([
        uplift(outcomes, ["phase", "audience"], *costs).rename({"phase": "dimension", "audience": "detail"}),
        uplift(measured, ["phase"], *costs).rename({"phase": "dimension"}),
        uplift(measured.with_columns(dimension=pl.lit("all")), ["dimension"], *costs),
        *by_offer(measured, costs),
    ], how="diagonal_relaxed")  # fmt: skip
    return (
        levels.with_columns(pl.col(UPLIFT_SCHEMA).cast(pl.Float64))
        .unpivot(index=["dimension", "detail"], on=list(UPLIFT_SCHEMA), variable_name="measure", value_name="actual")
        .with_columns(event_id=pl.lit(event_id), section=pl.lit("outreach"))
        .select(
            pl.col(c).cast(t)
            if c in ("event_id", "section", "dimension", "detail", "measure", "actual")
            else pl.lit(None, t).alias(c)
            for c, t in RESULT_SCHEMA.items()
        )
    )
