"""Segment history of a shop whose customers come in buckets: what each recorded day's classes and stages need to
know of every customer (the RFM centres, the typical cycles by main category) counted per bucket, merged exactly
into each day's cuts, and every bucket's history rebuilt with them (`history.rebuild_from_orders`). Plain Polars
and numpy.

A bucket's counts are two frames. `totals`: on each recorded day, its buyers and their sums of last purchase day
(day number), frequency and money in cents, which the means need. `changes`: on each recorded day, how many of its
customers took and left each value since the recorded day before, as value counts (`counts.SCHEMA` with the day,
minus for a value left): repeat buyers' cycles by main category, and, with median thresholds, last purchase day,
frequency and monetary of buyers. Summed over buckets and run through the days, the changes are the value counts
of all customers on each day, from which the medians are exact."""

from collections.abc import Iterable
from datetime import date

import numpy as np
import polars as pl

from assets.customers.counts import SCHEMA
from assets.customers.facts import KEY, customer_keys, needed_columns
from assets.customers.history import DayCuts, customer_episodes, empty_history, mean_centers, rebuild_from_orders
from assets.customers.lifecycle import TypicalCycles
from pipelines.settings import ShopSettings

TOTALS_SCHEMA = {"day": pl.Date, "customers": pl.Int64, "last": pl.Int64, "frequency": pl.Int64, "cents": pl.Int64}
CHANGES_SCHEMA = {"day": pl.Date, **SCHEMA}
CYCLE = "cycle_days"
CENTRED = ("last", "frequency", "monetary")  # the measures median thresholds count, in R, F, M order
EPOCH = date(1970, 1, 1)


def history_counts(
    orders: pl.LazyFrame | pl.DataFrame, days: list[date], settings: ShopSettings
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The `totals` and `changes` of the customers of `orders` (a bucket's) on each of `days` (ascending)."""
    if settings.rfm.lookback_days:
        raise ValueError("segment history in buckets: not with rfm.lookback_days (a snapshot per recorded day)")
    orders = needed_columns(orders).filter(pl.col("order_date") <= days[-1]).collect()
    if orders.is_empty():
        nothing = pl.DataFrame(schema={"index": pl.Int64} | {name: pl.Int64 for name in list(TOTALS_SCHEMA)[1:]})
        return _totals(nothing, days), pl.DataFrame(schema=CHANGES_SCHEMA)
    _, keyed = customer_keys(orders)
    episodes, categories = customer_episodes(keyed, settings.rfm)
    recorded = pl.Series(days, dtype=pl.Date)
    # an episode (a customer's values from an order day on) holds from the first recorded day on or after its day
    # until the first on or after the customer's next episode: none, if both are the same
    held = (
        episodes.with_columns(
            start=recorded.search_sorted(episodes["order_date"], side="left").cast(pl.Int64),
            category=pl.Series([*categories, None], dtype=pl.String).gather(episodes["category"]),
        )
        .sort(KEY, "order_date", maintain_order=True)
        .with_columns(
            end=pl.when(pl.col(KEY) == pl.col(KEY).shift(-1)).then(pl.col("start").shift(-1)).otherwise(len(days))
        )
        .filter(pl.col("start") < pl.col("end"))
        .with_columns(known=pl.col("purchase_days") > 0)
        .lazy()
    )
    # each episode counts from its start and is taken away at its end (past the last day: never)
    ways = [(pl.col("start"), 1), (pl.col("end"), -1)]
    known = pl.col("known").cast(pl.Int64)
    sums = {
        "customers": known,
        "last": pl.col("last_purchase").cast(pl.Int32).cast(pl.Int64).fill_null(0) * known,
        "frequency": pl.col("frequency").cast(pl.Int64) * known,
        "cents": (pl.col("monetary") * 100).round(0).cast(pl.Int64) * known,
    }
    changed = pl.concat([held.select(index=at, **{n: v * sign for n, v in sums.items()}) for at, sign in ways])
    totals = _totals(changed.group_by("index").agg(pl.all().sum()).collect(), days)
    measures = {CYCLE: (pl.col("cycle"), pl.col("cycle").is_not_null())}
    if settings.rfm.threshold == "median":
        centred = (pl.col("last_purchase").cast(pl.Int32), pl.col("frequency"), pl.col("monetary"))
        measures |= {name: (value, pl.col("known")) for name, value in zip(CENTRED, centred, strict=True)}
    changes = pl.concat(
        held.filter(counted).select(
            index=at,
            measure=pl.lit(name),
            category=pl.col("category") if name == CYCLE else pl.lit(None, pl.String),
            value=value.cast(pl.Float64),
            count=pl.lit(sign, pl.Int64),
        )
        for name, (value, counted) in measures.items()
        for at, sign in ways
    )
    changes = (
        changes.filter(pl.col("index") < len(days))
        .group_by("index", "measure", "category", "value")
        .agg(pl.col("count").sum())
        .filter(pl.col("count") != 0)
        .sort("index", "measure", "category", "value", nulls_last=True)
        .collect()
    )
    return totals, changes.select(recorded.gather(changes["index"]).alias("day"), *SCHEMA)


def _totals(changed: pl.DataFrame, days: list[date]) -> pl.DataFrame:
    """Each day's totals from what changed on it (`index`: the day's number in `days`), summed day after day."""
    every_day = pl.DataFrame({"index": range(len(days)), "day": days}, schema={"index": pl.Int64, "day": pl.Date})
    running = every_day.join(changed, on="index", how="left").sort("index").fill_null(0)
    return running.select("day", *(pl.col(name).cum_sum().cast(pl.Int64) for name in list(TOTALS_SCHEMA)[1:]))


def merge_history_counts(
    parts: Iterable[tuple[pl.DataFrame, pl.DataFrame]], settings: ShopSettings
) -> dict[date, DayCuts]:
    """Every recorded day's cuts of all customers from the buckets' `history_counts` (of the same days)."""
    parts = list(parts)
    totals = pl.concat([totals for totals, _ in parts]).group_by("day").agg(pl.all().sum()).sort("day")
    changes = (
        pl.concat([pl.DataFrame(schema=CHANGES_SCHEMA), *(changes for _, changes in parts)])
        .group_by("day", "measure", "category", "value")
        .agg(pl.col("count").sum())
        .sort("day")
    )
    running = {name: RunningCounts(changes.filter(pl.col("measure") == name)) for name in (CYCLE, *CENTRED)}
    cuts = {}
    for day, customers, last, frequency, cents in totals.iter_rows():
        for counts in running.values():
            counts.take_in(day)
        today = (day - EPOCH).days
        centers = None
        if customers and settings.rfm.threshold == "mean":
            centers = mean_centers(today, customers, last, frequency, cents)
        elif customers and settings.rfm.threshold == "median":
            last_day, frequency_median, monetary_median = (running[name].medians()[None] for name in CENTRED)
            centers = (today - last_day, frequency_median, monetary_median)
        typical = running[CYCLE].medians()
        by_category = {name: cycle for name, cycle in typical.items() if name is not None and cycle is not None}
        cuts[day] = DayCuts(centers, TypicalCycles(typical[None], by_category))
    return cuts


class RunningCounts:
    """One measure's value counts of all customers (by category, and of them all), day after day, from the days'
    changes (rows of CHANGES_SCHEMA, by day)."""

    def __init__(self, changes: pl.DataFrame):
        self.values = np.unique(changes["value"].to_numpy())
        self.categories = changes["category"].drop_nulls().unique().sort().to_list()
        row = {name: n for n, name in enumerate(self.categories)}
        self.rows = changes["category"].replace_strict(row, default=len(self.categories), return_dtype=pl.Int64)
        self.rows = self.rows.to_numpy()
        self.columns = np.searchsorted(self.values, changes["value"].to_numpy())
        self.amounts = changes["count"].to_numpy()
        self.days = changes["day"].cast(pl.Int32).to_numpy()
        self.counts = np.zeros((len(self.categories) + 1, len(self.values)), np.int64)  # the last: no category
        self.next = 0

    def take_in(self, day: date) -> None:
        """Add the changes up to `day`."""
        end = int(np.searchsorted(self.days, (day - EPOCH).days, side="right"))
        changed = slice(self.next, end)
        np.add.at(self.counts, (self.rows[changed], self.columns[changed]), self.amounts[changed])
        self.next = end

    def medians(self) -> dict[str | None, float | None]:
        """The median by category (None where it has no customers) and, under None, of all customers."""
        rows = [*self.counts[: len(self.categories)], self.counts.sum(axis=0)]
        return dict(zip([*self.categories, None], (self._median(row) for row in rows), strict=True))

    def _median(self, counts: np.ndarray) -> float | None:
        n = int(counts.sum())
        if not n:
            return None
        running = np.cumsum(counts)
        lower, upper = (self.values[np.argmax(running > rank)] for rank in ((n - 1) // 2, n // 2))
        return float((lower + upper) / 2)


def bucket_history(orders: pl.LazyFrame | pl.DataFrame, cuts: dict[date, DayCuts], settings: ShopSettings):
    """The segment history of a bucket's customers from their orders and the merged cuts of every recorded day
    (`merge_history_counts`): the rows the history of all customers has for them."""
    days = sorted(cuts)
    if needed_columns(orders).select(pl.len()).collect().item() == 0:
        return empty_history()
    step = settings.lifecycle.history_step_days
    return rebuild_from_orders(empty_history(), orders, days[0], days[-1], settings, step, cuts.__getitem__)
