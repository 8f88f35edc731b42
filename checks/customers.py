"""Checks on the customer snapshot, computed in the same step (`check_specs`): the facts and
RFM suites block outreach and reports; a class share moving fast only warns."""

from pathlib import Path

import dagster as dg
import polars as pl

from checks import suites
from checks.suites import suite_check
from pipelines.settings import ShopSettings

FACTS_SUITE, RFM_SUITE, CLASS_SHIFT = "customer_facts_suite", "rfm_suite", "class_shares_steady"


def customer_check_specs(facts: dg.AssetKey, rfm: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(FACTS_SUITE, asset=facts, blocking=True,
                          description="customer_facts GX suite: one row per customer, recency >= 0, orders >= 1"),
        dg.AssetCheckSpec(RFM_SUITE, asset=rfm, blocking=True, description="rfm GX suite: scores 1-5, known classes"),
        dg.AssetCheckSpec(CLASS_SHIFT, asset=rfm,
                          description="no class share moves more than quality.max_class_shift_points "
                                      "since the last snapshot"),
    ]  # fmt: skip


def class_shift(previous: pl.DataFrame | None, current: pl.DataFrame) -> pl.DataFrame:
    """Per class: share of customers before and now, and the move in percentage points."""

    def shares(rfm: pl.DataFrame, name: str) -> pl.DataFrame:
        return (
            rfm.group_by("rfm_class").len().select("rfm_class", (pl.col("len") / pl.col("len").sum() * 100).alias(name))
        )

    if previous is None or previous.is_empty():
        return pl.DataFrame(
            schema={"rfm_class": pl.String, "before": pl.Float64, "now": pl.Float64, "points": pl.Float64}
        )
    joined = shares(previous, "before").join(shares(current, "now"), on="rfm_class", how="full", coalesce=True)
    return joined.fill_null(0.0).with_columns(points=(pl.col("now") - pl.col("before")).round(2)).sort("rfm_class")


def customer_check_results(
    settings: ShopSettings, facts: pl.DataFrame, rfm: pl.DataFrame, previous_rfm: pl.DataFrame | None, run_id: str,
    keys: tuple[dg.AssetKey, dg.AssetKey],
) -> list[dg.AssetCheckResult]:  # fmt: skip
    facts_key, rfm_key = keys
    output, docs = Path(settings.output) / "quality", settings.quality.data_docs
    facts_result = suites.validate(suites.CUSTOMER_FACTS, facts, output, run_id, data_docs=docs)
    rfm_result = suites.validate(suites.RFM, rfm, output, run_id, data_docs=docs)
    moves = class_shift(previous_rfm, rfm)
    biggest = float(moves["points"].abs().max() or 0.0)
    return [
        suite_check(FACTS_SUITE, facts_key, facts_result),
        suite_check(RFM_SUITE, rfm_key, rfm_result),
        dg.AssetCheckResult(
            check_name=CLASS_SHIFT, asset_key=rfm_key, severity=dg.AssetCheckSeverity.WARN,
            passed=biggest <= settings.quality.max_class_shift_points,
            metadata={"largest_move_points": round(biggest, 2), "limit": settings.quality.max_class_shift_points,
                      "moves": dg.MetadataValue.json(moves.to_dicts())},
        ),
    ]  # fmt: skip
