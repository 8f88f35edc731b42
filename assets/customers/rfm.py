"""RFM: recency, frequency and monetary values, quintile scores, the eight classes and the
score-based named groups. Plain Polars, no Dagster.

R, F and M are each *high* or *low* against a threshold: the mean (default) or median of
all customers, where high means strictly better (recency below, frequency and monetary
above); or fixed values, where high means at least the value (and an order within the
active window, per main category where set). Means, medians and quintile cuts come from exact value counts
(`counts`), so that the customers of a shop counted in buckets get the thresholds of all of them at once.
"""

from dataclasses import dataclass

import polars as pl

from assets.customers.counts import at_ranks, mean, median, merge_counts, of, value_counts
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


def cuts_of(counts: pl.DataFrame, higher_is_better: bool = True) -> list:
    """The values a score 1-5 by rank is cut at, from a measure's value counts (`counts.of`); where lower is
    better, cuts of the negated measure.

    A score is 1 + floor(5 x (rank - 1) / n), where rank - 1 counts the values below: a value scores one more for
    each k = 1..4 where the ceil(k x n / 5)-th smallest value is below it, so four values stand in for a ranking.
    Nulls (not scored) count in n."""
    n = counts["count"].sum()
    known = counts.filter(pl.col("value").is_not_null())["count"].sum()
    ranks = [i for i in ((k * n + 4) // 5 - 1 for k in range(1, 5)) if 0 <= i < known]
    values = at_ranks(counts, ranks, descending=not higher_is_better)
    return values if higher_is_better else [-value for value in values]


def quintile(goodness: pl.Expr, cuts: list) -> pl.Expr:
    """Scores 1-5 by rank, 5 the best, at the cuts of `cuts_of`; equal values always share a score."""
    score = sum(((goodness > cut).cast(pl.Int8) for cut in cuts), pl.lit(1, pl.Int8))
    return pl.when(goodness.is_not_null()).then(score)


# the measures RFM ranks: whether more is better, and the whole units their mean is summed in (money: cents)
MEASURES = {"recency_days": (False, 1), "frequency": (True, 1), "monetary": (True, 100)}
SCORES = {"r_score": "recency_days", "f_score": "frequency", "m_score": "monetary"}


@dataclass(frozen=True)
class RfmCuts:
    """What RFM's rules need to know of all customers: the centre (mean or median) each measure is high or low
    against (none with fixed thresholds), and the values each score is cut at."""

    centers: dict[str, float | None]
    quintiles: dict[str, list]


def rfm_counts(values: pl.LazyFrame) -> list[pl.LazyFrame]:
    """The customers of `values` (recency_days, frequency, monetary: a row each) counted by each measure's value."""
    return [value_counts(values, name, pl.col(name)) for name in MEASURES]


def rfm_cuts(counts: pl.DataFrame, rules: RfmSettings) -> RfmCuts:
    """RFM's thresholds from the value counts of all customers (`rfm_counts`, merged)."""
    return RfmCuts(
        centers=centers_of({name: of(counts, name) for name in MEASURES}, rules),
        quintiles={score: cuts_of(of(counts, name), MEASURES[name][0]) for score, name in SCORES.items()},
    )


def centers_of(counts: dict[str, pl.DataFrame], rules: RfmSettings) -> dict[str, float | None]:
    """The centre each measure is high or low against, once: the mean (money summed in cents) or median of its
    known values, from its counts (value, count: a value may repeat); none with fixed thresholds. A snapshot
    takes it from the counts of all customers (`rfm_cuts`), the history rebuild from each day's
    (history.DayStates)."""
    center = {"mean": mean, "median": lambda c, _: median(c)}.get(rules.threshold)
    return {name: center(counts[name], scale) if center else None for name, (_, scale) in MEASURES.items()}


def highs(recency, frequency, monetary, active_window, centers: dict[str, float | None], rules: RfmSettings) -> tuple:
    """Whether R, F and M are high, once: against fixed values (R within the days of the customer's `active_window`,
    by main category), else strictly better than the `centers` (`centers_of`). Written with operators only, so that
    they are Polars expressions for a snapshot (`classify`) and numpy arrays for the history rebuild
    (history.DayStates)."""
    if rules.threshold == "fixed":
        return recency <= active_window, frequency >= rules.frequency, monetary >= rules.monetary
    return recency < centers["recency_days"], frequency > centers["frequency"], monetary > centers["monetary"]


# a class as a number, 4 x R high + 2 x F high + M high (pipelines/rfm_classes.py: BY_NUMBER)
HIGHS = 4 * pl.col("r_high").cast(pl.Int8) + 2 * pl.col("f_high").cast(pl.Int8) + pl.col("m_high").cast(pl.Int8)


def classify(
    values: pl.DataFrame | pl.LazyFrame, rules: RfmSettings, cuts: RfmCuts | None = None
) -> pl.DataFrame | pl.LazyFrame:
    """Scores, high/low, the eight classes and the named groups for every customer of `values`, row for row (a
    lazy plan stays one), against `cuts` of all customers: by default, of the customers of `values` (computed
    now)."""
    if cuts is None:
        cuts = rfm_cuts(merge_counts(pl.collect_all(rfm_counts(values.lazy()))), rules)
    window = pl.col("main_category").replace_strict(
        rules.active_window_days, default=rules.recency_days, return_dtype=pl.Int64
    ) if rules.active_window_days else pl.lit(rules.recency_days)  # fmt: skip
    centers = {name: pl.lit(value, pl.Float64) for name, value in cuts.centers.items()}
    r_high, f_high, m_high = highs(*(pl.col(name) for name in MEASURES), window, centers, rules)
    goodness = {"r_score": -pl.col("recency_days"), "f_score": pl.col("frequency"), "m_score": pl.col("monetary")}
    scored = values.with_columns(
        *(quintile(value, cuts.quintiles[name]).alias(name) for name, value in goodness.items()),
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
