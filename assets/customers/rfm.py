"""RFM: recency, frequency and monetary values, quintile scores, the eight classes and the
score-based named groups. Plain Polars, no Dagster.

R, F and M are each *high* or *low* against a threshold: the mean (default) or median of
all customers, where high means strictly better (recency below, frequency and monetary
above); or fixed values, where high means at least the value (and an order within the
active window, per main category where set).
"""

import polars as pl

from assets.customers.facts import named
from pipelines.rfm_classes import BY_NUMBER, CLASS_CODES
from pipelines.settings import RfmSettings

# Named groups by R score (rows, 5 to 1) and the rounded mean of F and M scores (columns, 1 to 5).
GROUP_GRID = {
    5: ("New", "Potential loyalist", "Loyal", "Champions", "Champions"),
    4: ("Promising", "Potential loyalist", "Loyal", "Champions", "Champions"),
    3: ("About to sleep", "Need attention", "Need attention", "Loyal", "Loyal"),
    2: ("Hibernating", "About to sleep", "At risk", "At risk", "Can't lose them"),
    1: ("Lost", "Hibernating", "At risk", "Can't lose them", "Can't lose them"),
}
GROUPS = {f"{r}{fm}": GROUP_GRID[r][fm - 1] for r in GROUP_GRID for fm in range(1, 6)}
_GROUPS_BY_SCORES = [GROUP_GRID[r][fm - 1] for r in range(1, 6) for fm in range(1, 6)]  # 5 x (R - 1) + FM - 1


def frequency_and_monetary(orders: pl.Expr, purchase_days: pl.Expr, spend: pl.Expr, rules: RfmSettings):
    """F and M from a customer's orders, purchase days and net spend (inside the look-back window)."""
    frequency = purchase_days if rules.same_day_orders_once else orders
    monetary = spend.round(2)  # whole cents, whatever order the amounts were added in
    if rules.monetary_measure == "average":
        monetary = pl.when(frequency > 0).then(monetary / frequency).otherwise(0.0)
    return frequency, monetary.round(2)


def quintile_cuts(goodness: pl.DataFrame) -> dict[str, list]:
    """Per column, the values a score 1-5 by rank is cut at (5 the best; `quintile`), the columns sorted at once.

    A score is 1 + floor(5 x (rank - 1) / n), where rank - 1 counts the values below: a value scores one more for
    each k = 1..4 where the ceil(k x n / 5)-th smallest value is below it, so four values stand in for a ranking.
    Nulls (not scored) count in n."""
    n = goodness.height
    ranks = {
        name: [i for i in ((k * n + 4) // 5 - 1 for k in range(1, 5)) if 0 <= i < n - column.null_count()]
        for name, column in goodness.to_dict().items()
    }
    smallest = goodness.lazy().select(
        pl.col(name).drop_nulls().sort().gather(at).implode() for name, at in ranks.items()
    )
    return {name: cuts.item().to_list() for name, cuts in smallest.collect().to_dict().items()}


def quintile(goodness: pl.Expr, cuts: list) -> pl.Expr:
    """Scores 1-5 by rank, 5 the best, at the cuts of `quintile_cuts`; equal values always share a score."""
    score = sum(((goodness > cut).cast(pl.Int8) for cut in cuts), pl.lit(1, pl.Int8))
    return pl.when(goodness.is_not_null()).then(score)


def _highs(rules: RfmSettings) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    r, f, m = pl.col("recency_days"), pl.col("frequency"), pl.col("monetary")
    if rules.threshold == "fixed":
        window = pl.col("main_category").replace_strict(
            rules.active_window_days, default=rules.recency_days, return_dtype=pl.Int64
        ) if rules.active_window_days else pl.lit(rules.recency_days)  # fmt: skip
        return r <= window, f >= rules.frequency, m >= rules.monetary
    center = (lambda c: c.mean()) if rules.threshold == "mean" else (lambda c: c.median())
    return r < center(r), f > center(f), m > center(m)


# a class as a number, 4 x R high + 2 x F high + M high (pipelines/rfm_classes.py: BY_NUMBER)
HIGHS = 4 * pl.col("r_high").cast(pl.Int8) + 2 * pl.col("f_high").cast(pl.Int8) + pl.col("m_high").cast(pl.Int8)


def classify(values: pl.DataFrame | pl.LazyFrame, rules: RfmSettings) -> pl.DataFrame | pl.LazyFrame:
    """Scores, high/low, the eight classes and the named groups for every customer of `values`, row for row (a
    lazy plan stays one, but for the quintile cuts, computed now)."""
    r_high, f_high, m_high = _highs(rules)
    goodness = {"r_score": -pl.col("recency_days"), "f_score": pl.col("frequency"), "m_score": pl.col("monetary")}
    cuts = quintile_cuts(values.lazy().select(**goodness).collect())
    scored = values.with_columns(
        *(quintile(value, cuts[name]).alias(name) for name, value in goodness.items()),
        r_high=r_high.fill_null(False),
        f_high=f_high.fill_null(False),
        m_high=m_high.fill_null(False),
    )
    fm = ((pl.col("f_score") + pl.col("m_score")) / 2).round(0, mode="half_away_from_zero").cast(pl.Int8)
    return scored.with_columns(
        rfm_class=named(HIGHS, CLASS_CODES),
        rfm_class_zh=named(HIGHS, [zh for _, zh in BY_NUMBER]),
        rfm_group=named(5 * (pl.col("r_score") - 1) + fm - 1, _GROUPS_BY_SCORES),
    )
