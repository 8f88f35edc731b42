"""Checks on core.tier_history, computed in the same step (`check_specs`): each customer has exactly one tier a
day, and nobody goes down before their tier's grace period has passed."""

import dagster as dg
import polars as pl

from assets import markdown_table
from pipelines.settings import Tier

ONE_TIER_A_DAY, NO_EARLY_DOWNGRADE = "one_tier_a_day", "no_downgrade_before_grace_ends"
SHOWN = 5


def tier_check_specs(history: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(ONE_TIER_A_DAY, asset=history, blocking=True,
                          description="each customer's stretches follow one another without gap or overlap, one "
                                      "of them current: exactly one tier per customer per day"),
        dg.AssetCheckSpec(NO_EARLY_DOWNGRADE, asset=history, blocking=True,
                          description="every downgrade comes at least the tier's grace_days after its grace began"),
    ]  # fmt: skip


def tier_check_results(history: pl.DataFrame, tiers: list[Tier], key: dg.AssetKey) -> list[dg.AssetCheckResult]:
    def result(name: str, found: pl.DataFrame) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            check_name=name, asset_key=key, passed=found.is_empty(),
            metadata={"rows": found.height, **({"first": dg.MetadataValue.md(markdown_table(found.head(SHOWN)))}
                                               if found.height else {})},
        )  # fmt: skip

    return [result(ONE_TIER_A_DAY, stretch_gaps(history)), result(NO_EARLY_DOWNGRADE, early_downgrades(history, tiers))]


def stretch_gaps(history: pl.DataFrame) -> pl.DataFrame:
    """Stretches that break "one tier per customer per day": empty, overlapping or leaving a gap before the
    customer's next one, or a customer with other than one current stretch."""
    ordered = history.sort("customer_id", "valid_from")
    next_from = pl.col("valid_from").shift(-1).over("customer_id")
    return ordered.filter(
        (pl.col("valid_to") <= pl.col("valid_from"))
        | (next_from.is_not_null() & (pl.col("valid_to").is_null() | (pl.col("valid_to") != next_from)))
        | (next_from.is_null() & pl.col("valid_to").is_not_null())
    )


def early_downgrades(history: pl.DataFrame, tiers: list[Tier]) -> pl.DataFrame:
    """Downgrades before the grace period of the tier left had passed: one row per such downgrade, with the tier
    left, its grace start and the day of the downgrade."""
    rank = {tier.id: n for n, tier in enumerate(tiers)}
    grace = {tier.id: tier.grace_days for tier in tiers}
    ordered = history.sort("customer_id", "valid_from").with_columns(
        left=pl.col("tier").shift(1).over("customer_id"),
        left_grace_from=pl.col("grace_from").shift(1).over("customer_id"),
    )
    down = ordered.filter(
        pl.col("left").is_not_null()
        & (pl.col("tier").replace_strict(rank, default=-1) < pl.col("left").replace_strict(rank, default=-1))
    )
    passed = (pl.col("valid_from") - pl.col("left_grace_from")).dt.total_days()
    needed = pl.col("left").replace_strict(grace, default=0)
    early = pl.when(pl.col("left_grace_from").is_null()).then(needed > 0).otherwise(passed < needed)
    return down.filter(early).select("customer_id", "left", "left_grace_from", downgraded_on="valid_from")
