"""Lifecycle stages from purchase cycles, the moment a customer wants to buy again, and tags.
Plain Polars, no Dagster.

With `c` a customer's cycle (their own, or for one-time buyers the typical cycle of repeat
buyers of their main category, else of the shop) and `d` the days since their last order:
churned beyond 2 c or 365 days; at_risk beyond 1.5 c; due from 0.9 c (the moment a reminder
works best); otherwise new (one purchase day) or active. Multipliers are settings. Typical cycles are
medians of exact value counts (`counts`), the same for a shop counted at once or in buckets.
"""

from dataclasses import dataclass

import polars as pl

from assets.customers.counts import median, merge_counts, of, value_counts
from assets.customers.facts import named
from assets.customers.rfm import HIGHS
from pipelines.rfm_classes import CLASS_CODES
from pipelines.settings import LifecycleSettings

STAGES = ("new", "active", "due", "at_risk", "churned")


def stage(days: pl.Expr, cycle: pl.Expr, purchase_days: pl.Expr, rules: LifecycleSettings) -> pl.Expr:
    return named(stage_code(days, cycle, purchase_days, rules), STAGES)


def stage_conditions(days, cycle, purchase_days, rules: LifecycleSettings) -> list[tuple[str, object]]:
    """The stages' rules, once: (stage, condition) from the highest precedence down, a customer in the first stage
    whose condition holds, else active. Written with operators only, so that the conditions are Polars expressions
    for a snapshot (`stage_code`) and numpy arrays for the history rebuild (history.DayStates)."""
    return [
        ("churned", (days > rules.churned_after * cycle) | (days > rules.churned_after_days)),
        ("at_risk", days > rules.at_risk_after * cycle),
        ("due", days >= rules.due_from * cycle),
        ("new", purchase_days <= 1),
    ]


def stage_code(days: pl.Expr, cycle: pl.Expr, purchase_days: pl.Expr, rules: LifecycleSettings) -> pl.Expr:
    """The stage's number in STAGES: a number per stage, named once at the end (a text per branch would be made
    for every customer)."""
    (first, holds), *others = stage_conditions(days, cycle, purchase_days, rules)
    code = pl.when(holds).then(STAGES.index(first))
    for stage_name, condition in others:
        code = code.when(condition).then(STAGES.index(stage_name))
    return code.otherwise(STAGES.index("active"))


@dataclass(frozen=True)
class TypicalCycles:
    """The median cycle of repeat buyers of the shop, and by main category (where it has repeat buyers)."""

    shop: float | None
    by_category: dict[str, float]


def cycle_counts(facts: pl.LazyFrame) -> pl.LazyFrame:
    """The repeat buyers of `facts` (a row per customer) counted by main category and cycle."""
    repeat = facts.filter(pl.col("cycle_days").is_not_null())
    return value_counts(repeat, "cycle_days", pl.col("cycle_days"), pl.col("main_category"))


def typical_cycles(counts: pl.DataFrame) -> TypicalCycles:
    """The typical cycles from the counts of all customers (`cycle_counts`, merged)."""
    categories = counts.filter(pl.col("measure") == "cycle_days")["category"].drop_nulls().unique().sort()
    return TypicalCycles(
        shop=median(of(counts, "cycle_days")),
        by_category={category: median(of(counts, "cycle_days", category)) for category in categories},
    )


def lifecycle(
    facts: pl.DataFrame | pl.LazyFrame, rules: LifecycleSettings, typical: TypicalCycles | None = None
) -> pl.DataFrame | pl.LazyFrame:
    """facts + the cycle used (and where it came from), stage, due date and expected next purchase (a lazy plan
    stays one), with the `typical` cycles of all customers: by default, of the customers of `facts`."""
    if typical is None:
        typical = typical_cycles(merge_counts([cycle_counts(facts.lazy()).collect()]))
    # the typical cycle: the median cycle of repeat buyers of the customer's main category, else of the shop
    category_cycle = (
        pl.col("main_category").replace_strict(typical.by_category, default=None, return_dtype=pl.Float64)
        if typical.by_category
        else pl.lit(None, pl.Float64)
    )
    shop = pl.lit(typical.shop, pl.Float64)
    cycle_or_typical = pl.coalesce(
        pl.col("cycle_days"), pl.col("category_cycle"), shop, pl.lit(rules.default_cycle_days, pl.Float64)
    )
    source = named(
        pl.when(pl.col("cycle_days").is_not_null()).then(0)
        .when(pl.col("category_cycle").is_not_null()).then(1)
        .when(shop.is_not_null()).then(2)
        .otherwise(3),
        ("own", "category", "shop", "default"),
    )  # fmt: skip
    # Thresholds compare the cycle as computed; only the column shown to people is rounded.
    cycle = pl.col("cycle")
    last_day = pl.col("last_order_date").cast(pl.Int32)  # dates as day numbers: whole days added as integers
    return (
        facts.with_columns(category_cycle=category_cycle)
        .with_columns(cycle=cycle_or_typical, cycle_source=source)
        .with_columns(
            cycle_used_days=cycle.round(1),
            stage_code=stage_code(pl.col("recency_days"), cycle, pl.col("purchase_days"), rules),
            due_date=(last_day + (rules.due_from * cycle).ceil().cast(pl.Int32)).cast(pl.Date),
            expected_next_date=(last_day + cycle.round(0).cast(pl.Int32)).cast(pl.Date),
        )
        .with_columns(stage=named(pl.col("stage_code"), STAGES))
        .drop("category_cycle", "cycle")
    )


def tier_labels(bounds: list[float]) -> list[str]:
    """'<100', '100-300', ..., '1000+' for upper bounds [100, 300, 1000]."""
    middle = [f"{a:g}-{b:g}" for a, b in zip(bounds, bounds[1:], strict=False)]
    return [f"<{bounds[0]:g}", *middle, f"{bounds[-1]:g}+"]


def tier_code(amount: pl.Expr, bounds: list[float]) -> pl.Expr:
    """The tier's number in `tier_labels`: the number of bounds at or below the amount."""
    return pl.lit(pl.Series(bounds, dtype=pl.Float64)).search_sorted(amount, side="right")


def value_tier(amount: pl.Expr, bounds: list[float]) -> pl.Expr:
    """The amount's tier, named (cheaper than `cut`'s categories cast to text)."""
    return pl.when(amount.is_not_null()).then(named(tier_code(amount, bounds), tier_labels(bounds)))


def tags(bounds: list[float]) -> pl.Expr:
    """Targeting tags, ';'-separated: class, stage, order-value tier (by `bounds`), promotion-sensitive, main
    category, channel."""
    promotion_sensitive = pl.col("acquired_on_event") | (pl.col("event_orders") * 2 >= pl.col("orders"))
    # Class and stage, then tier and promotion, each pair one text looked up by the numbers of its parts (never
    # missing: a customer without an amount has no tier, ""), not pieced together for every customer.
    heads = [f"{code};{stage}" for code in CLASS_CODES for stage in STAGES]
    tiers = [*(f";tier:{label}" for label in tier_labels(bounds)), ""]
    amount = pl.col("avg_order_value")
    tier = pl.when(amount.is_not_null()).then(tier_code(amount, bounds)).otherwise(len(tiers) - 1)
    middles = [f"{tier}{promotion}" for tier in tiers for promotion in ("", ";promotion_sensitive")]

    def labelled(prefix: str, name: str) -> list[pl.Expr]:
        """The prefix and the column's value, or nothing where it has none (no text made for the pair first)."""
        return [pl.when(pl.col(name).is_not_null()).then(pl.lit(prefix)), pl.col(name)]

    return pl.concat_str(
        named(len(STAGES) * HIGHS + pl.col("stage_code"), heads),
        named(2 * tier + promotion_sensitive, middles),
        *labelled(";category:", "main_category"),
        *labelled(";channel:", "first_channel"),
        ignore_nulls=True,
    )
