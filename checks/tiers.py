"""Checks on core.tier_history, computed in the same step (`check_specs`): each customer has exactly one tier a
day, and nobody goes down before their tier's grace period has passed."""

import dagster as dg
import polars as pl

from assets import markdown_table
from assets.customers.tiers import early_downgrades, stretch_gaps
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
