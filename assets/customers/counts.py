"""Exact statistics of all customers from value counts: how many customers have each value of a measure (per
category, where it matters). Counts of parts of the customers (buckets) add up to the counts of all, so the
means, medians and rank cuts below are the same whether the customers were counted at once or in parts. Plain
Polars, no Dagster.

A frame of counts has the columns of `SCHEMA`: the measure, the category (null where the measure has none), the
value (null: a customer without one) and the number of customers."""

from collections.abc import Iterable

import polars as pl

SCHEMA = {"measure": pl.String, "category": pl.String, "value": pl.Float64, "count": pl.Int64}


def value_counts(frame: pl.LazyFrame, measure: str, value: pl.Expr, category: pl.Expr | None = None) -> pl.LazyFrame:
    """The customers of `frame` (a row each) counted by `value` (and `category`), as rows of `SCHEMA`."""
    keys = {"value": value.cast(pl.Float64)} | ({} if category is None else {"category": category.cast(pl.String)})
    counted = frame.select(**keys).group_by(*keys).agg(count=pl.len().cast(pl.Int64))
    return counted.select(
        measure=pl.lit(measure), category=pl.col("category") if category is not None else pl.lit(None, pl.String),
        value="value", count="count",
    )  # fmt: skip


def merge_counts(parts: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """The counts of all customers from the counts of parts of them, in measure, category, value order."""
    together = pl.concat([pl.DataFrame(schema=SCHEMA), *parts])
    return (
        together.group_by("measure", "category", "value")
        .agg(pl.col("count").sum())
        .sort("measure", "category", "value", nulls_last=True)
        .select(*SCHEMA)
    )


def of(counts: pl.DataFrame, measure: str, category: str | None = None) -> pl.DataFrame:
    """One measure's counts (of one category; of all, when none is named): value, count, values ascending."""
    rows = counts.filter(pl.col("measure") == measure)
    if category is not None:
        rows = rows.filter(pl.col("category") == category)
    return rows.group_by("value").agg(pl.col("count").sum()).sort("value", nulls_last=True)


def mean(counts: pl.DataFrame, scale: int = 1) -> float | None:
    """The mean of the known values (nulls left out), summed exactly as whole numbers of 1/`scale` (cents for
    money, scale 100) and divided once, so that the order the customers were added in does not matter."""
    known = counts.filter(pl.col("value").is_not_null())
    # whole numbers, held exactly by floats (and so summed exactly in any order) up to 2**53, some 9e13 in money
    whole = (pl.col("value") * scale).round(0) * pl.col("count")
    total, n = known.select(whole.sum(), pl.col("count").sum()).row(0)
    return total / (n * scale) if n else None


def at_ranks(counts: pl.DataFrame, ranks: list[int], descending: bool = False) -> list[float]:
    """The values at 0-based `ranks` among the known values, smallest first (largest first if `descending`)."""
    known = counts.filter(pl.col("value").is_not_null()).sort("value", descending=descending)
    running = known["count"].cum_sum()
    return [known["value"][int(running.search_sorted(rank, side="right"))] for rank in ranks]


def median(counts: pl.DataFrame) -> float | None:
    """The median of the known values: the middle one, or the mean of the middle two."""
    n = counts.filter(pl.col("value").is_not_null())["count"].sum()
    if not n:
        return None
    lower, upper = at_ranks(counts, [(n - 1) // 2, n // 2])
    return (lower + upper) / 2
