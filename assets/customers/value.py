"""Customer value from the purchase and spend models (`assets.customers.models`): who is still a customer, what
each will buy next and is worth over 12 months. Plain Polars and numpy, no Dagster.

A customer's repeat purchases are their purchase days after the first (as facts count them), in the unit of
`value.unit`; spend per purchase is net spend over purchase days, fitted on repeat buyers only and expected for
everyone from their own purchase days and mean spend (a one-time buyer's one purchase weighs little).
The fits read customers counted per distinct tuple (`fit_statistics`), which customer buckets compute apart and
`merge_fit_statistics` sums exactly: a fit costs what the distinct tuples cost, however many customers.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from assets.customers.counts import at_ranks, value_counts
from assets.customers.models import (
    COUNT_MODELS,
    Customers,
    Fit,
    FitError,
    fit_gammagamma,
    gammagamma_spend,
    independence,
)
from pipelines.settings import ValueSettings

UNIT_DAYS = {"days": 1.0, "weeks": 7.0}
HIGH_VALUE_AT_RISK = "high_value_at_risk"  # the tag of a top spender whose churn risk is high
MONTH_DAYS = 365 / 12
# core.customer_value
SCHEMA = {
    "customer_id": pl.String, "as_of_date": pl.Date, "p_alive": pl.Float64, "expected_purchases_30d": pl.Float64,
    "expected_purchases_90d": pl.Float64, "expected_purchases_365d": pl.Float64,
    "expected_spend_per_purchase": pl.Float64, "predicted_value_12m": pl.Float64, "risk_band": pl.String,
    "expected_next_date": pl.Date, "tags": pl.String,
}  # fmt: skip
# what the fits read of a customer in core.customer_facts: the purchase models (x, t_x, T), Gamma-Gamma the
# purchase days and mean spend (net revenue / purchase days)
PURCHASE_KEYS = ("purchase_days", "tenure_days", "recency_days")
SPEND_KEYS = ("purchase_days", "net_revenue")


@dataclass(frozen=True)
class FitStatistics:
    """Customers counted (`customers`) per distinct PURCHASE_KEYS, and repeat buyers with a positive spend per
    distinct SPEND_KEYS (so per distinct purchases and mean spend), each sorted by its keys: all the fits need,
    whatever the order of the rows or the split into buckets."""

    purchases: pl.DataFrame
    spend: pl.DataFrame


@dataclass(frozen=True)
class Fits:
    purchases: Fit
    spend: Fit
    frequency_spend_correlation: float  # Gamma-Gamma assumes none; reported, not enforced


def model_inputs(facts: pl.DataFrame, unit: str) -> tuple[Customers, np.ndarray, np.ndarray]:
    """(x, t_x, T) in the unit, and the purchase count and mean spend per purchase Gamma-Gamma reads."""
    purchases = facts["purchase_days"].cast(pl.Float64).to_numpy()
    return _customers(facts, unit), purchases, facts["net_revenue"].to_numpy() / purchases


def _customers(frame: pl.DataFrame, unit: str) -> Customers:
    """(x, t_x, T) in the unit of each row's PURCHASE_KEYS."""
    days = UNIT_DAYS[unit]
    x = (frame["purchase_days"] - 1).cast(pl.Float64).to_numpy()
    T = frame["tenure_days"].cast(pl.Float64).to_numpy() / days
    t_x = (frame["tenure_days"] - frame["recency_days"]).cast(pl.Float64).to_numpy() / days
    return Customers(x, t_x, T)


def fit_statistics(facts: pl.DataFrame) -> FitStatistics:
    """The fit statistics of the customers of `facts` (core.customer_facts, or one bucket's)."""
    counted = facts.select(*PURCHASE_KEYS, "net_revenue", customers=pl.lit(1, pl.Int64))
    repeat = counted.filter((pl.col("purchase_days") > 1) & (pl.col("net_revenue") > 0))
    return FitStatistics(_tally(counted, PURCHASE_KEYS), _tally(repeat, SPEND_KEYS))


def merge_fit_statistics(parts: Iterable[FitStatistics]) -> FitStatistics:
    """The fit statistics of customers split into parts (buckets) from each part's: every tuple's counts summed,
    which is exactly `fit_statistics` of all the parts' customers."""
    parts = list(parts)
    return FitStatistics(
        _tally(pl.concat([part.purchases for part in parts]), PURCHASE_KEYS),
        _tally(pl.concat([part.spend for part in parts]), SPEND_KEYS),
    )


def _tally(counted: pl.DataFrame, keys: tuple[str, ...]) -> pl.DataFrame:
    return counted.group_by(keys).agg(pl.col("customers").sum()).sort(keys)


def fit(facts: pl.DataFrame, settings: ValueSettings) -> Fits:
    """Both models on a snapshot's facts; FitError with the reason when there are too few repeat buyers."""
    return fit_grouped(fit_statistics(facts), settings)


def fit_grouped(statistics: FitStatistics, settings: ValueSettings) -> Fits:
    """Both models on customers' fit statistics, each distinct tuple once weighted by its count: the likelihood
    of every customer summed, at the cost of the distinct tuples."""
    spend = statistics.spend
    purchases = spend["purchase_days"].cast(pl.Float64).to_numpy()
    mean_spend, buyers = spend["net_revenue"].to_numpy() / purchases, spend["customers"].to_numpy()
    return Fits(
        fit_purchases(statistics.purchases, settings),
        fit_gammagamma(purchases, mean_spend, settings.min_repeat_buyers, buyers),
        independence(purchases, mean_spend, buyers),
    )


def fit_purchases(counted: pl.DataFrame, settings: ValueSettings) -> Fit:
    """The purchase-count model on customers counted per distinct PURCHASE_KEYS (`FitStatistics.purchases`);
    FitError when there are too few repeat buyers."""
    customers, counts = _customers(counted, settings.unit), counted["customers"].cast(pl.Float64).to_numpy()
    repeat = int(counts[customers.x > 0].sum())
    if repeat < settings.min_repeat_buyers:
        raise FitError(
            f"{repeat} customers bought on more than one day; the models need at least "
            f"{settings.min_repeat_buyers} (value.min_repeat_buyers)"
        )
    return COUNT_MODELS[settings.model].fit(customers, counts)


def customer_value(
    facts: pl.DataFrame, fits: Fits, settings: ValueSettings, top: pl.Expr | None = None
) -> pl.DataFrame:
    """One row per customer of `facts` (core.customer_facts): P(alive), expected purchases, spend per purchase,
    discounted 12-month value, risk band, the day their expected purchases reach one (within a year) and tags.
    The top spenders are `top` (of a bucket's customers: `spending_at_least` of all customers' cut), by default
    `top_spend` of `facts`."""
    customers, purchases, spend = model_inputs(facts, settings.unit)
    distinct, index = customers.grouped()  # customers alike in (x, t_x, T) are scored once
    model = COUNT_MODELS[fits.purchases.model]
    params = list(fits.purchases.params.values())
    days = UNIT_DAYS[settings.unit]
    alive = model.p_alive(params, distinct)
    xs, Ts, pair = distinct.by_x_T  # purchases while alive depend on (x, T) alone: fewer still

    def ahead(horizon_days, rows=None):
        """Expected purchases in the next days: while alive, times P(alive)."""
        t = np.asarray(horizon_days) / days
        if rows is None:
            return model.while_alive(params, xs, Ts, t)[pair] * alive
        return model.while_alive(params, distinct.x[rows], distinct.T[rows], t) * alive[rows]

    cumulative = [ahead(m * MONTH_DAYS) for m in range(1, 13)]
    monthly = np.diff(np.stack([np.zeros(len(distinct.x)), *cumulative]), axis=0)
    discount = (1 + settings.annual_discount_rate) ** -(np.arange(1, 13) / 12)
    # month after month, not a matrix product: a product's order of additions may differ with the number of
    # customers scored at once (a bucket's or the shop's), and the last bit of a value with it
    discounted = (discount[:, None] * monthly).sum(axis=0)
    per_purchase = gammagamma_spend(list(fits.spend.params.values()), purchases, np.maximum(spend, 0))
    value = pl.DataFrame({
        "p_alive": alive[index],
        "expected_purchases_30d": ahead(30)[index], "expected_purchases_90d": ahead(90)[index],
        "expected_purchases_365d": cumulative[-1][index],
        "expected_spend_per_purchase": per_purchase, "predicted_value_12m": discounted[index] * per_purchase,
        "next_in_days": days_to_one_purchase(ahead, cumulative[-1])[index],
    }, nan_to_null=True)  # fmt: skip
    spenders = facts.select("customer_id", "as_of_date", top_spend=top_spend(facts, settings) if top is None else top)
    return (
        pl.concat([spenders, value], how="horizontal")
        .with_columns(risk_band=risk_band(pl.col("p_alive"), settings))
        .with_columns(
            expected_next_date=pl.col("as_of_date") + pl.duration(days=pl.col("next_in_days").cast(pl.Int64)),
            tags=pl.concat_str(
                pl.lit("risk:") + pl.col("risk_band"),
                pl.when(pl.col("top_spend") & (pl.col("risk_band") == "high")).then(pl.lit(HIGH_VALUE_AT_RISK)),
                separator=";",
                ignore_nulls=True,
            ),
        )  # fmt: skip
        .select(list(SCHEMA))
    )


def risk_band(p_alive: pl.Expr, settings: ValueSettings) -> pl.Expr:
    """Churn risk from P(alive): high below `risk_high_below`, low from `risk_low_from`, medium between."""
    return (
        pl.when(p_alive < settings.risk_high_below).then(pl.lit("high"))
        .when(p_alive < settings.risk_low_from).then(pl.lit("medium"))
        .otherwise(pl.lit("low"))
    )  # fmt: skip


def top_spend(facts: pl.DataFrame, settings: ValueSettings) -> pl.Expr:
    """Whether a customer of `facts` (core.customer_facts) is in the top `high_value_share` by net spend: the
    first floor(share x customers), those spending the same at the cut in customer_id order, so that the order
    of the rows (a daily snapshot's differs from a full one's) does not matter."""
    top = int(settings.high_value_share * facts.height)
    if top == 0:
        return pl.lit(False)
    spend = facts["net_revenue"]
    cut = spend.top_k(top).min()  # the top-th largest
    at_cut = facts.filter(pl.col("net_revenue") == cut)["customer_id"].sort().head(top - int((spend > cut).sum()))
    return spending_at_least(cut, at_cut)


def spending_at_least(cut: float | None, at_cut: pl.Series) -> pl.Expr:
    """Whether a customer is a top spender: spends more than `cut`, or is one of `at_cut` (None: nobody)."""
    if cut is None:
        return pl.lit(False)
    return (pl.col("net_revenue") > cut) | pl.col("customer_id").is_in(at_cut.implode())


def spend_counts(facts: pl.DataFrame) -> pl.DataFrame:
    """The customers of `facts` counted by net revenue (`counts`): merged over buckets, where the top cut is."""
    return value_counts(facts.lazy(), "net_revenue", pl.col("net_revenue")).collect()


def top_spend_cut(counts: pl.DataFrame, settings: ValueSettings) -> tuple[float | None, int]:
    """`top_spend`'s cut from all customers' `spend_counts` (merged): the top-th largest net revenue, and how
    many of the customers spending exactly that are top spenders (the first by customer_id); None: nobody is."""
    top = int(settings.high_value_share * counts["count"].sum())
    if top == 0:
        return None, 0
    (cut,) = at_ranks(counts, [top - 1], descending=True)
    return cut, top - int(counts.filter(pl.col("value") > cut)["count"].sum())


def latest_fit(fits: pl.DataFrame | None, day: date) -> dict | None:
    """The latest purchase-model fit on or before `day` among core.model_fits rows, or None."""
    if fits is None:
        return None
    latest = fits.filter((pl.col("fit_date") <= day) & pl.col("model").is_in(list(COUNT_MODELS))).sort("fit_date")
    return latest.row(-1, named=True) if latest.height else None


def fit_on(facts: pl.DataFrame, settings: ValueSettings) -> dict | None:
    """The purchase model fitted on a snapshot's own facts, as a core.model_fits row (`latest_fit`'s shape), or
    None when too few customers bought twice: what the value step records after the snapshot of a shop's first
    run, which has no earlier fit to tag by."""
    try:
        purchases = fit_purchases(fit_statistics(facts).purchases, settings)
    except FitError:
        return None
    as_of = facts["as_of_date"].max()
    return {"fit_date": as_of, "model": purchases.model, "unit": settings.unit, "params": json.dumps(purchases.params)}


def risk_bands(facts: pl.DataFrame, fit: dict, settings: ValueSettings) -> pl.DataFrame:
    """customer_id and risk band of a snapshot's facts, from a core.model_fits row of a purchase model."""
    customers, _, _ = model_inputs(facts, fit["unit"])
    p_alive = COUNT_MODELS[fit["model"]].p_alive(list(json.loads(fit["params"]).values()), customers)
    with_p = facts.select("customer_id").with_columns(p_alive=pl.Series(p_alive))
    return with_p.select("customer_id", risk_band=risk_band(pl.col("p_alive"), settings))


def with_value_tags(facts: pl.DataFrame, rfm: pl.DataFrame, fit: dict | None, settings: ValueSettings) -> pl.DataFrame:
    """core.rfm with `high_value_at_risk` added to the tags of the top spenders whose churn risk is high, from
    the snapshot's facts and a core.model_fits row (`latest_fit`); as it was without a fit."""
    if fit is None:
        return rfm
    top = facts.filter(top_spend(facts, settings))  # P(alive) is needed for the top spenders only
    flagged = risk_bands(top, fit, settings).filter(pl.col("risk_band") == "high")["customer_id"]
    return rfm.with_columns(
        tags=pl.when(pl.col("customer_id").is_in(flagged.implode()))
        .then(pl.col("tags") + f";{HIGH_VALUE_AT_RISK}")
        .otherwise("tags")
    )


def days_to_one_purchase(ahead, within_year: np.ndarray) -> np.ndarray:
    """The first whole day d (1..365) with at least one expected purchase in the next d days, by bisection, for
    the customers who reach one within the year (`ahead(days, rows)`: expected purchases); NaN for the others."""
    reach = np.flatnonzero(within_year >= 1)
    low, high = np.zeros(len(reach)), np.full(len(reach), 365.0)
    while (high - low > 1).any():
        middle = np.floor((low + high) / 2)
        enough = ahead(middle, reach) >= 1
        high, low = np.where(enough, middle, high), np.where(enough, low, middle)
    result = np.full(len(within_year), np.nan)
    result[reach] = high
    return result
