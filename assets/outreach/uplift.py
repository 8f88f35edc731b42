"""What a list's messages changed: contacted against held-out customers. Plain Polars; the intervals from
SciPy.

Each member of a list (contacted or held out) is followed over the list's response window, from its contact
day for `response_days` days (or to the last day loaded, if sooner): whether they bought, their net revenue
and orders (completed orders). The difference of the contacted and held-out means, with a 95% interval, is
the uplift; times the contacted customers it is the incremental buyers and revenue. The response rates'
difference takes Newcombe's interval (from SciPy's Wilson intervals of each rate: it holds with no buyer in a
group, where Welch's cannot) and Fisher's exact test, revenue and orders per customer Welch's. A list's uplift is
judged ("distinguishable") only when the exact test rejects no difference at 5% and the interval excludes zero:
with few buyers the interval alone can exclude zero where the exact test cannot tell (0 of 709 contacted against
1 of 70 held out: -7.7 to -0.1 points, p = 0.09). Return on spend is given only for a judged uplift."""

from datetime import date, timedelta

import numpy as np
import polars as pl
from scipy import stats

from pipelines.warehouse import COMPLETED

# per customer, followed in the window: the measure, its uplift's name, and its means in each group
OUTCOMES = {"bought": "uplift", "revenue": "revenue_uplift", "orders": "orders_uplift"}
MEANS = {
    "bought": ("response_contacted", "response_held_out"),
    "revenue": ("revenue_per_contacted", "revenue_per_held_out"),
    "orders": ("orders_per_contacted", "orders_per_held_out"),
}
SIGNIFICANCE = 0.05  # the exact test's level, matching the 95% intervals
UPLIFT_SCHEMA = {
    "contacted": pl.Int64, "held_out": pl.Int64, "window_days": pl.Int64,
    "buyers_contacted": pl.Int64, "buyers_held_out": pl.Int64,
    "response_contacted": pl.Float64, "response_held_out": pl.Float64,
    "uplift": pl.Float64, "uplift_low": pl.Float64, "uplift_high": pl.Float64,
    "revenue_per_contacted": pl.Float64, "revenue_per_held_out": pl.Float64,
    "revenue_uplift": pl.Float64, "revenue_uplift_low": pl.Float64, "revenue_uplift_high": pl.Float64,
    "orders_per_contacted": pl.Float64, "orders_per_held_out": pl.Float64,
    "orders_uplift": pl.Float64, "orders_uplift_low": pl.Float64, "orders_uplift_high": pl.Float64,
    "incremental_buyers": pl.Float64, "incremental_revenue": pl.Float64,
    "incremental_revenue_low": pl.Float64, "incremental_revenue_high": pl.Float64,
    "p_value": pl.Float64, "cost": pl.Float64, "return_on_spend": pl.Float64, "distinguishable": pl.Boolean,
}  # fmt: skip


def responses(members: pl.DataFrame, orders: pl.DataFrame, window_days: int, known_until: date) -> pl.DataFrame:
    """`members` (customer_id, contact_date, held_out, ...: one row per list and customer) with what each did in
    the window: `bought`, `revenue`, `orders`, and `window_days` (fewer when the data end sooner, 0 before it
    begins)."""
    members = members.with_row_index("_member").with_columns(
        _until=pl.min_horizontal(pl.col("contact_date") + timedelta(days=window_days - 1), pl.lit(known_until))
    )
    done = orders.filter(pl.col("status") == COMPLETED).select("customer_id", "order_date", "amount")
    bought = (
        members.select("_member", "customer_id", "contact_date", "_until")
        .join(done, on="customer_id")
        .filter(pl.col("order_date").is_between(pl.col("contact_date"), pl.col("_until")))
        .group_by("_member")
        .agg(revenue=pl.col("amount").sum(), orders=pl.len())
    )
    return (
        members.join(bought, on="_member", how="left")
        .with_columns(
            pl.col("revenue").fill_null(0.0),
            pl.col("orders").fill_null(0).cast(pl.Int64),
            window_days=pl.max_horizontal((pl.col("_until") - pl.col("contact_date")).dt.total_days() + 1, 0),
        )  # fmt: skip
        .with_columns(bought=pl.col("orders") > 0)
        .drop("_member", "_until")
    )


def welch_interval(contacted: np.ndarray, held_out: np.ndarray) -> tuple[float | None, float | None]:
    """95% interval of the difference of means (Welch's t), or None where it cannot be told: fewer than two in
    a group, or no variation in either."""
    if len(contacted) < 2 or len(held_out) < 2 or (contacted.var() == 0 and held_out.var() == 0):
        return None, None
    low, high = stats.ttest_ind(contacted, held_out, equal_var=False).confidence_interval(0.95)
    return float(low), float(high)


def newcombe_interval(buyers: tuple[int, int], customers: tuple[int, int]) -> tuple[float | None, float | None]:
    """95% interval of the difference of two response rates (contacted less held out): Newcombe's hybrid score
    interval, from the Wilson interval of each rate; None without customers in both groups."""
    if min(customers) == 0:
        return None, None
    wilson = [stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
              for k, n in zip(buyers, customers, strict=True)]  # fmt: skip
    (p1, p2), (l1, l2), (u1, u2) = [k / n for k, n in zip(buyers, customers, strict=True)], *zip(*wilson, strict=True)
    return p1 - p2 - ((p1 - l1) ** 2 + (u2 - p2) ** 2) ** 0.5, p1 - p2 + ((u1 - p1) ** 2 + (p2 - l2) ** 2) ** 0.5


def fisher_p(buyers: tuple[int, int], customers: tuple[int, int]) -> float | None:
    """Two-sided p-value of Fisher's exact test that both groups buy at one rate; None without customers in both."""
    if min(customers) == 0:
        return None
    table = [[k, n - k] for k, n in zip(buyers, customers, strict=True)]
    return float(stats.fisher_exact(table).pvalue)


def uplift(
    outcomes: pl.DataFrame, by: list[str], cost_per_message: dict[str, float], coupon_cost: float
) -> pl.DataFrame:
    """Per group of `by`: contacted and held out, buyers, response, revenue and orders per customer of each,
    the uplifts with 95% intervals, incremental buyers and revenue, cost (a message per contacted customer on
    its channel, a coupon per contacted buyer) and return per unit spent. `outcomes` from `responses`."""
    contacted = ~pl.col("held_out")
    message_cost = pl.col("channel").replace_strict(cost_per_message, default=0.0, return_dtype=pl.Float64)
    groups = outcomes.group_by(by, maintain_order=True).agg(
        contacted=contacted.sum().cast(pl.Int64), held_out=pl.col("held_out").sum().cast(pl.Int64),
        window_days=pl.col("window_days").min().cast(pl.Int64),
        buyers_contacted=(pl.col("bought") & contacted).sum().cast(pl.Int64),
        buyers_held_out=(pl.col("bought") & pl.col("held_out")).sum().cast(pl.Int64),
        cost=(message_cost + pl.col("bought").cast(pl.Float64) * coupon_cost).filter(contacted).sum(),
        **{f"_{name}_{group}": pl.col(name).cast(pl.Float64).filter(pl.col("held_out") == (group == "held_out"))
           for name in OUTCOMES for group in ("contacted", "held_out")},
    )  # fmt: skip
    rows = []
    for row in groups.iter_rows(named=True):
        for name, measure in OUTCOMES.items():
            treated, control = np.array(row.pop(f"_{name}_contacted")), np.array(row.pop(f"_{name}_held_out"))
            means = [float(values.mean()) if len(values) else None for values in (treated, control)]
            if name == "bought":
                counts = (int(treated.sum()), int(control.sum())), (len(treated), len(control))
                (low, high), row["p_value"] = newcombe_interval(*counts), fisher_p(*counts)
            else:
                low, high = welch_interval(treated, control)
            row |= dict(zip(MEANS[name], means, strict=True))
            row |= {measure: means[0] - means[1] if None not in means else None, f"{measure}_low": low,
                    f"{measure}_high": high}  # fmt: skip
        rows.append(row)
    schema = groups.select(by).schema | UPLIFT_SCHEMA
    return (
        pl.DataFrame(rows, schema=schema, strict=False)
        .with_columns(
            incremental_buyers=pl.col("uplift") * pl.col("contacted"),
            incremental_revenue=pl.col("revenue_uplift") * pl.col("contacted"),
            incremental_revenue_low=pl.col("revenue_uplift_low") * pl.col("contacted"),
            incremental_revenue_high=pl.col("revenue_uplift_high") * pl.col("contacted"),
        )
        .with_columns(
            distinguishable=(
                (pl.col("p_value") < SIGNIFICANCE) & ((pl.col("uplift_low") > 0) | (pl.col("uplift_high") < 0))
            ).fill_null(False)
        )
        .with_columns(
            return_on_spend=pl.when(pl.col("distinguishable") & (pl.col("cost") > 0)).then(
                pl.col("incremental_revenue") / pl.col("cost")
            )
        )
        .select(schema.keys())
    )


def controlled(outcomes: pl.DataFrame, list_columns: list[str]) -> pl.DataFrame:
    """The members of lists that hold someone out: what phase, class or total figures are measured over."""
    return outcomes.filter(pl.col("held_out").any().over(list_columns))


LIST_RESULT_SCHEMA = {"list": pl.String, "dimension": pl.String, "value": pl.String, "first_contact_date": pl.Date,
                      "last_contact_date": pl.Date, **UPLIFT_SCHEMA}  # fmt: skip
REMINDERS = "repurchase_reminders"


def _level(outcomes: pl.DataFrame, name: str, dimension: str, value: pl.Expr, settings) -> pl.DataFrame:
    keyed = outcomes.with_columns(list=pl.lit(name), dimension=pl.lit(dimension), value=value)
    by = ["list", "dimension", "value"]
    dates = keyed.group_by(by).agg(
        first_contact_date=pl.col("contact_date").min(), last_contact_date=pl.col("contact_date").max()
    )
    measured = uplift(keyed, by, settings.cost_per_message, settings.coupon_cost).join(dates, on=by)
    return measured.select(LIST_RESULT_SCHEMA.keys()).cast(LIST_RESULT_SCHEMA)


def reminder_results(reminders: pl.DataFrame, orders: pl.DataFrame, known_until: date, settings) -> pl.DataFrame:
    """Reminders' results (`settings`: the shop's outreach) per day of contact, per class and in total (class and
    total over the days that hold someone out)."""
    reminders = reminders.with_columns(pl.col("held_out").fill_null(False))  # rows written before control groups
    reminded = responses(reminders, orders, settings.response_days, known_until)
    measured = controlled(reminded, ["contact_date"])
    return pl.concat([
        _level(reminded, REMINDERS, "day", pl.col("contact_date").cast(pl.String), settings),
        _level(measured, REMINDERS, "class", pl.col("rfm_class"), settings),
        _level(measured, REMINDERS, "all", pl.lit("all"), settings),
    ])  # fmt: skip


AUDIENCES = "audience_lists"


def audience_results(lists: pl.DataFrame, orders: pl.DataFrame, known_until: date, settings) -> pl.DataFrame:
    """The shop's own audience lists' results (outreach.audience_lists; `settings`: the shop's outreach) per
    audience, per offer kind and in total, over the lists (an audience's day) that hold someone out."""
    reached = responses(lists, orders, settings.response_days, known_until)
    measured = controlled(reached, ["audience", "contact_date"])
    return pl.concat([
        _level(measured, AUDIENCES, "audience", pl.col("audience"), settings),
        _level(measured, AUDIENCES, "offer", pl.col("offer_kind"), settings),
        _level(measured, AUDIENCES, "all", pl.lit("all"), settings),
    ])  # fmt: skip


def list_results(
    reminders: pl.DataFrame, targets: pl.DataFrame, orders: pl.DataFrame, known_until: date, settings,
    audiences: pl.DataFrame | None = None,
) -> pl.DataFrame:  # fmt: skip
    """Every list's results (`settings`: the shop's outreach): reminders (see `reminder_results`), each
    campaign list (event, phase and audience) and the shop's own `audiences` (see `audience_results`)."""
    targets = targets.with_columns(pl.col("held_out").fill_null(False))
    campaigns = responses(targets, orders, settings.response_days, known_until)
    name = pl.concat_str(["event_id", "phase", "audience"], separator="/")
    return pl.concat([
        reminder_results(reminders, orders, known_until, settings),
        _level(campaigns, "campaign", "list", name, settings),
        *([audience_results(audiences, orders, known_until, settings)] if audiences is not None else []),
    ])  # fmt: skip
