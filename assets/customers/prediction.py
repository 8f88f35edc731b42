"""How well the lifecycle rule and the purchase model tell who buys again, judged on the shop's own hold-out:
the history is split at a calibration date, both look only at the part before it, and the last days say who
did buy. Plain Polars and numpy, no Dagster.

The rule ranks customers churned < at_risk < the rest and expects one purchase per cycle from everyone not
churned; the model ranks and expects by its conditional expected purchases. A purchase is a purchase day, as the
facts count them.
"""

from datetime import date, timedelta

import numpy as np
import polars as pl

from assets.customers.facts import needed_columns
from assets.customers.models import COUNT_MODELS
from assets.customers.snapshot import customer_snapshot
from assets.customers.value import UNIT_DAYS, Fits, fit, model_inputs
from pipelines.settings import ShopSettings

AT_RISK_SHARE = 0.1  # the model's flagged customers: this share with the fewest expected purchases
RULE_RANK = {"churned": 0, "at_risk": 1}  # every other stage ranks 2
# analysis.prediction_quality, analysis.prediction_tracking
QUALITY_SCHEMA = {
    "method": pl.String, "calibration_end_date": pl.Date, "holdout_days": pl.Int64, "customers": pl.Int64,
    "buyers": pl.Int64, "auc_buys_again": pl.Float64, "mae_purchases": pl.Float64, "expected_purchases": pl.Float64,
    "actual_purchases": pl.Float64, "flagged_customers": pl.Int64, "flagged_bought_again_share": pl.Float64,
    "non_returners_flagged_share": pl.Float64, "undetermined_params": pl.String,
}  # fmt: skip
TRACKING_SCHEMA = {
    "week_start_date": pl.Date,
    "actual_purchases": pl.Float64,
    "expected_purchases": pl.Float64,
    "holdout": pl.Boolean,
}


def auc(score: pl.Series, positive: pl.Series) -> float | None:
    """The chance that a random positive outscores a random negative (ties count half): Mann-Whitney from ranks."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return None
    rank_sum = float(score.rank("average").filter(positive).sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def purchase_days(orders: pl.DataFrame) -> pl.DataFrame:
    """One row per customer and day with a completed order (of staging.orders, or `read_orders`' compact rows)."""
    return needed_columns(orders).filter("purchase").select("customer_id", "order_date").unique().collect()


def holdout_scores(orders: pl.DataFrame, as_of: date, settings: ShopSettings) -> tuple[pl.DataFrame, Fits, date]:
    """One row per customer who bought by the calibration date: the rule's rank and forecast, the model's
    expected purchases in the hold-out, and the purchases they made in it; the fit and the calibration date."""
    holdout = settings.value.holdout_days
    calibration_end = as_of - timedelta(days=holdout)
    snapshot = customer_snapshot(orders, calibration_end, settings)
    fits = fit(snapshot.facts, settings.value)
    customers, _, _ = model_inputs(snapshot.facts, settings.value.unit)
    conditional = COUNT_MODELS[fits.purchases.model].conditional
    expected = conditional(list(fits.purchases.params.values()), customers, holdout / UNIT_DAYS[settings.value.unit])
    actual = (
        purchase_days(orders.filter(pl.col("order_date").is_between(calibration_end, as_of, closed="right")))
        .group_by("customer_id")
        .agg(actual=pl.len().cast(pl.Float64))
    )
    scores = (
        snapshot.rfm.select(
            "customer_id",
            rule_rank=pl.col("stage").replace_strict(RULE_RANK, default=2, return_dtype=pl.Int8),
            rule_expected=pl.when(pl.col("stage") == "churned")
            .then(0.0)
            .otherwise(holdout / pl.col("cycle_used_days")),
        )
        .with_columns(model_expected=pl.Series(expected))
        .join(actual, on="customer_id", how="left")
        .with_columns(pl.col("actual").fill_null(0.0))
    )
    return scores, fits, calibration_end


def quality(scores: pl.DataFrame, calibration_end: date, holdout_days: int, fits: Fits) -> pl.DataFrame:
    """One row per method (rule, model): AUC for buying again, mean absolute error of purchases per customer,
    total purchases expected and made, and the customers each flags as lost (the rule: churned; the model: the
    tenth with the fewest expected purchases) with the share of them who bought again and the share of all
    non-returners they hold; for the model, the parameters its fit (`fits`) leaves undetermined, if any."""
    undetermined = ", ".join(fits.purchases.undetermined) or None
    bought = scores["actual"] > 0
    at_risk = pl.col("model_expected").rank("ordinal") <= AT_RISK_SHARE * scores.height
    flags = scores.select(rule=pl.col("rule_rank") == 0, model=at_risk)
    rows = []
    for method, score in (("rule", scores["rule_rank"]), ("model", scores["model_expected"])):
        expected, flagged = scores[f"{method}_expected"], flags[method]
        rows.append({
            "method": method, "calibration_end_date": calibration_end, "holdout_days": holdout_days,
            "customers": scores.height, "buyers": int(bought.sum()),
            "auc_buys_again": auc(score, bought),
            "mae_purchases": float((expected - scores["actual"]).abs().mean()),
            "expected_purchases": float(expected.sum()), "actual_purchases": float(scores["actual"].sum()),
            "flagged_customers": int(flagged.sum()),
            "flagged_bought_again_share": _share(bought.filter(flagged)),
            "non_returners_flagged_share": _share(flagged.filter(~bought)),
            "undetermined_params": undetermined if method == "model" else None,
        })  # fmt: skip
    return pl.DataFrame(rows, schema=QUALITY_SCHEMA)


def _share(flags: pl.Series) -> float | None:
    return float(flags.mean()) if flags.len() else None


def tracking(orders: pl.DataFrame, fits: Fits, calibration_end: date, as_of: date, unit: str) -> pl.DataFrame:
    """One row per week (from the first purchase): repeat purchases made by the customers who bought by the
    calibration date, and the model's expectation for them from their first purchase days alone."""
    days = purchase_days(orders.filter(pl.col("order_date") <= as_of))
    first = (
        days.group_by("customer_id").agg(first=pl.col("order_date").min()).filter(pl.col("first") <= calibration_end)
    )
    start = first["first"].min()
    week = ((pl.col("order_date") - pl.lit(start)).dt.total_days() // 7).alias("week")
    actual = (
        days.join(first, on="customer_id")
        .filter(pl.col("order_date") > pl.col("first"))
        .group_by(week)
        .agg(actual_purchases=pl.len().cast(pl.Float64))
    )
    weeks = (as_of - start).days // 7 + 1
    week_end = np.minimum(np.arange(1, weeks + 1) * 7 - 1, (as_of - start).days)  # days after `start`
    cohorts = first.group_by("first").len()
    since_first = week_end[:, None] - (cohorts["first"] - start).dt.total_days().to_numpy()[None, :]
    expected = COUNT_MODELS[fits.purchases.model][1]
    params = list(fits.purchases.params.values())
    cumulative = expected(params, np.maximum(since_first, 0) / UNIT_DAYS[unit]) @ cohorts["len"].to_numpy()
    return (
        pl.DataFrame({"week": np.arange(weeks), "expected_purchases": np.diff(cumulative, prepend=0.0)})
        .join(actual, on="week", how="left")
        .select(
            week_start_date=pl.lit(start) + pl.duration(days=pl.col("week") * 7),
            actual_purchases=pl.col("actual_purchases").fill_null(0.0),
            expected_purchases="expected_purchases",
        )
        .with_columns(holdout=pl.col("week_start_date") > calibration_end)
    )
