"""Member tiers (会员等级) day by day, earned by R, F and M together. Plain Polars and numpy.

Each day, from each customer's R (days since the last order), F and M as core.rfm counts them, and their points
(`tier_points`: per_order * F + per_spend * M - per_idle_day * R):

- a customer goes up at once to the highest tier whose entry rule holds (on the day of the qualifying order);
- a customer stays while their tier's keep rule (or its entry rule) holds; from the first day it does not, a grace
  period runs, and once the tier's `grace_days` have passed with the rule still failing the customer goes down to
  the highest lower tier whose keep rule holds (the first tier, every buyer's, always does). Meeting the rule
  again inside the grace period ends it.

The history keeps stretches like core.segment_history (`valid_from` inclusive, `valid_to` exclusive, null while
current): a new one where the tier changes or a grace period starts or ends (`grace_from`).
"""

from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import polars as pl

from assets.customers.facts import KEY, customer_keys, needed_columns
from assets.customers.history import DayStates, customer_episodes
from assets.customers.snapshot import customer_snapshot
from pipelines.settings import ShopSettings, Tier, TierPoints, TierRule

TIER_HISTORY_SCHEMA = {
    "customer_id": pl.String, "tier": pl.String, "grace_from": pl.Date, "valid_from": pl.Date, "valid_to": pl.Date,
}  # fmt: skip
NONE = -1  # no tier yet (no purchase), or no grace period running
EPOCH = date(1970, 1, 1)


class Ladder:
    """The shop's tiers as arrays: which rule holds for which customer, and the day's step."""

    def __init__(self, tiers: list[Tier], points: TierPoints):
        self.tiers, self.points = tiers, points
        self.grace_days = np.array([tier.grace_days for tier in tiers], np.int32)

    def _holds(self, rule: TierRule, recency: np.ndarray, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
        holds = np.ones(len(recency), bool)
        if rule.max_recency_days is not None:
            holds &= recency <= rule.max_recency_days
        if rule.min_frequency is not None:
            holds &= frequency >= rule.min_frequency
        if rule.min_monetary is not None:
            holds &= monetary >= rule.min_monetary
        if rule.min_points is not None:
            p = self.points
            holds &= p.per_order * frequency + p.per_spend * monetary - p.per_idle_day * recency >= rule.min_points
        return holds

    def step(
        self, today: int, tier: np.ndarray, grace_from: np.ndarray, values: tuple[np.ndarray, np.ndarray, np.ndarray],
        known: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Each customer's tier and grace start (day numbers; NONE) on day `today` from the day before's, given
        the day's R, F and M (`values`) of the customers who have bought (`known`)."""
        qualified = np.full(len(tier), NONE, np.int8)  # the highest tier whose entry rule holds
        kept = np.zeros(len(tier), bool)  # the current tier's keep rule holds
        lower = np.zeros(len(tier), np.int8)  # the highest tier below the current one whose keep rule holds
        for n, rule in enumerate(self.tiers):
            qualified[self._holds(rule.entry, *values)] = n
            keeps = self._holds(rule.keep_rule, *values)
            kept |= keeps & (tier == n)
            lower[keeps & (n < tier)] = n
        qualified[~known] = NONE
        up = qualified > tier
        failing = known & ~up & ~kept & (qualified < tier)
        grace_from = np.where(failing, np.where(grace_from == NONE, today, grace_from), NONE)
        down = failing & (today - grace_from >= self.grace_days[np.maximum(tier, 0)])
        tier = np.where(up, qualified, np.where(down, np.maximum(lower, qualified), tier)).astype(np.int8)
        return tier, np.where(down, NONE, grace_from)


def daily_values(
    orders: pl.DataFrame, days: list[date], settings: ShopSettings
) -> tuple[pl.DataFrame, Iterator[tuple[date, tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]]]:
    """Every customer of `orders` (customer_id, customer_key) and, for each of `days` in order, their R, F and M
    (arrays by customer_key) and who has bought: from the episodes the segment history is rebuilt from
    (`history.customer_episodes`), or, with an RFM look-back window (values slide every day), from a snapshot a day."""
    orders = needed_columns(orders).filter(pl.col("order_date") <= max(days)).collect()
    customers, keyed = customer_keys(orders)

    def from_episodes():
        episodes, categories = customer_episodes(keyed, settings.rfm)
        states = DayStates(episodes, categories, customers.height, settings)
        for day in days:
            today = states.catch_up(day)
            yield day, (today - states.last, states.frequency, states.monetary), states.purchase_days > 0

    def from_snapshots():
        for day in days:
            rfm = customer_snapshot(orders, day, settings).rfm.join(customers, on="customer_id")
            arrays = []
            for name in ("recency_days", "frequency", "monetary"):
                values = np.zeros(customers.height)
                values[rfm[KEY].to_numpy()] = rfm[name].to_numpy()
                arrays.append(values)
            known = np.zeros(customers.height, bool)
            known[rfm[KEY].to_numpy()] = True
            yield day, tuple(arrays), known

    return customers, from_snapshots() if settings.rfm.lookback_days else from_episodes()


def tier_history(orders: pl.DataFrame, until: date, settings: ShopSettings) -> pl.DataFrame:
    """Every customer's tier stretches from their first purchase to `until`, from `staging.orders` (or rows of its
    shape): one row per customer and stretch of time in one tier and grace period."""
    if not settings.tiers or orders.is_empty():
        return pl.DataFrame(schema=TIER_HISTORY_SCHEMA)
    first = orders["order_date"].min()
    days = [first + timedelta(days=n) for n in range((until - first).days + 1)]
    customers, values = daily_values(orders, days, settings)
    ladder = Ladder(settings.tiers, settings.tier_points)
    tier = np.full(customers.height, NONE, np.int8)
    grace_from = np.full(customers.height, NONE, np.int32)
    changes = []
    for day, rfm, known in values:
        today = (day - EPOCH).days
        new_tier, new_grace = ladder.step(today, tier, grace_from, rfm, known)
        changed = np.flatnonzero((new_tier != tier) | (new_grace != grace_from))
        if len(changed):
            changes.append(pl.DataFrame({KEY: changed, "code": new_tier[changed], "grace": new_grace[changed],
                                         "valid_from": np.full(len(changed), today, np.int32)}))  # fmt: skip
        tier, grace_from = new_tier, new_grace
    if not changes:
        return pl.DataFrame(schema=TIER_HISTORY_SCHEMA)
    stretches = pl.concat(changes).sort(KEY, "valid_from")
    same_customer = pl.col(KEY) == pl.col(KEY).shift(-1)
    return stretches.select(
        customers["customer_id"].gather(stretches[KEY]),
        tier=pl.lit(pl.Series([t.id for t in settings.tiers], dtype=pl.String)).gather("code"),
        grace_from=pl.when(pl.col("grace") != NONE).then(pl.col("grace")).cast(pl.Date),
        valid_from=pl.col("valid_from").cast(pl.Date),
        valid_to=pl.when(same_customer).then(pl.col("valid_from").shift(-1)).cast(pl.Date),
    )


def valid_on(day: date | pl.Expr) -> pl.Expr:
    """Whether a stretch holds on `day` (a date, or a column of dates)."""
    day = pl.lit(day) if isinstance(day, date) else day
    return (pl.col("valid_from") <= day) & (pl.col("valid_to").is_null() | (pl.col("valid_to") > day))


def tiers_on(history: pl.DataFrame | None, day: date) -> pl.DataFrame:
    """Each customer's tier on `day` (customers who had bought by then; none without a history)."""
    history = pl.DataFrame(schema=TIER_HISTORY_SCHEMA) if history is None else history
    return history.filter(valid_on(day)).select("customer_id", "tier")


def with_tier_on(rows: pl.DataFrame, history: pl.DataFrame | None, day: str) -> pl.DataFrame:
    """`rows` with each customer's `tier` on the row's `day` (null: none, or no history)."""
    if history is None or history.is_empty():
        return rows.with_columns(tier=pl.lit(None, pl.String))
    stretches = history.select("customer_id", "tier", "valid_from", "valid_to")
    tiered = (
        rows.with_row_index("_row")
        .join(stretches, on="customer_id")
        .filter(
            (pl.col("valid_from") <= pl.col(day)) & (pl.col("valid_to").is_null() | (pl.col("valid_to") > pl.col(day)))
        )
        .select("_row", "tier")
    )
    return rows.with_row_index("_row").join(tiered, on="_row", how="left").sort("_row").drop("_row")


def tier_migration(history: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    """How many customers went from each tier on `start` to each on `end` (`from` null: not a member yet on
    `start`): one row per pair; the counts add up to the members on `end`."""
    before = tiers_on(history, start).rename({"tier": "from"})
    after = tiers_on(history, end).rename({"tier": "to"})
    return after.join(before, on="customer_id", how="left").group_by("from", "to").len("customers").sort("from", "to")


def tier_mix(history: pl.DataFrame, days: list[date]) -> pl.DataFrame:
    """Members per tier on each of `days`: one row per day and tier."""
    frames = [tiers_on(history, day).group_by("tier").len("customers").with_columns(day=pl.lit(day)) for day in days]
    schema = {"day": pl.Date, "tier": pl.String, "customers": pl.UInt32}
    return pl.concat([pl.DataFrame(schema=schema), *(f.select(list(schema)).cast(schema) for f in frames)]).sort(
        "day", "tier"
    )
