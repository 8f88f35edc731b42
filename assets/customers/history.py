"""When each customer entered and left each class and lifecycle stage, kept as stretches
(`valid_from` inclusive, `valid_to` exclusive, null while current) rather than a copy per day.
Plain Polars.

The state of day X is the stretch with valid_from <= X < valid_to; the migration between
two dates is one self-join of the table (see `migration`).
"""

from collections.abc import Callable
from datetime import date, timedelta

import polars as pl

STATE = ("rfm_class", "stage")
HISTORY_SCHEMA = {
    "customer_id": pl.String, "rfm_class": pl.String, "stage": pl.String,
    "expected_next_date": pl.Date, "valid_from": pl.Date, "valid_to": pl.Date,
}  # fmt: skip


def empty_history() -> pl.DataFrame:
    return pl.DataFrame(schema=HISTORY_SCHEMA)


def record(history: pl.DataFrame, state: pl.DataFrame, day: date) -> pl.DataFrame:
    """Add the state of `day` (customer_id, rfm_class, stage, expected_next_date) to the history."""
    current = history.filter(pl.col("valid_to").is_null())
    changed = state.join(current.select("customer_id", *STATE), on=["customer_id", *STATE], how="anti")
    closed = pl.col("valid_to").is_null() & pl.col("customer_id").is_in(changed["customer_id"].implode())
    opened = changed.select(
        "customer_id", *STATE, "expected_next_date", valid_from=pl.lit(day), valid_to=pl.lit(None, pl.Date)
    )
    return pl.concat([history.with_columns(valid_to=pl.when(closed).then(pl.lit(day)).otherwise("valid_to")), opened])


def rebuild(
    history: pl.DataFrame, state_on: Callable[[date], pl.DataFrame], since: date, until: date, step_days: int = 1
) -> pl.DataFrame:
    """History with everything from `since` on recomputed from the states of since..until
    (every `step_days`, and `until` itself); nothing after `until` is kept."""
    kept = history.filter(pl.col("valid_from") < since).with_columns(
        valid_to=pl.when(pl.col("valid_to") > since).then(None).otherwise("valid_to")
    )
    days = [since + timedelta(days=n) for n in range(0, (until - since).days + 1, step_days)]
    for day in days + ([until] if days and days[-1] != until else []):
        kept = record(kept, state_on(day), day)
    return kept.sort("customer_id", "valid_from")


def state_at(history: pl.DataFrame, day: date) -> pl.DataFrame:
    """Each customer's class and stage on `day`."""
    valid = (pl.col("valid_from") <= day) & (pl.col("valid_to").is_null() | (pl.col("valid_to") > day))
    return history.filter(valid).select("customer_id", *STATE)


def migration(history: pl.DataFrame, start: date, end: date, by: str = "rfm_class") -> pl.DataFrame:
    """How many customers went from each `by` on `start` to each on `end` (customers known on both)."""
    before = state_at(history, start).select("customer_id", pl.col(by).alias("from"))
    after = state_at(history, end).select("customer_id", pl.col(by).alias("to"))
    return before.join(after, on="customer_id").group_by("from", "to").len("customers").sort("from", "to")
