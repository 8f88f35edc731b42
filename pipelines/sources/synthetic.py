"""A believable Chinese online shop, generated: the same seed gives the same orders.

Vectorised with NumPy (20 million orders in seconds): customers arrive over time, with
peaks on 618, Double 11 and Double 12; most buy once; repeat buyers come back on the
purchase cycle of their main category (consumables about monthly, apparel about
seasonally); customers acquired on a promotion come back less; orders near an event are
pulled into its warm-up and sprint. A small share of rows is dirty on purpose (missing
customer, negative or absurd amount, duplicated row, unreadable timestamp) so that the
rejects path always has work.

With `Responses`, the shop also answers its campaigns: a customer known at an event's baseline and not in
a list's control group (`pipelines.control`, the same draw the lists use) buys once more within the response
window of each phase's contact day, with the chance their class at the baseline gives (the generator's own
reckoning of the class: R, F and M against the mean, as the pipeline's default). The answers come from their
own random stream and follow the orders in the export, so the rest of the shop is the same with or without.

The output looks like a seller-tool export: text timestamps in shop-local time, one row
per order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from pipelines.control import held_out
from pipelines.rfm_classes import CLASSES
from pipelines.settings import ControlSettings

# category: (share of customers, purchase cycle in days, typical unit price, items per order - 1)
CATEGORIES = {
    "consumables": (0.30, 30, 59.0, 0.8),
    "snacks": (0.20, 21, 39.0, 1.2),
    "beauty": (0.18, 45, 169.0, 0.4),
    "apparel": (0.22, 90, 219.0, 0.5),
    "home": (0.10, 150, 299.0, 0.2),
}
CHANNELS = {"app": 0.45, "mini_program": 0.30, "web": 0.15, "livestream": 0.10}
REGIONS = {
    "Guangdong": 0.16,
    "Zhejiang": 0.12,
    "Jiangsu": 0.11,
    "Shanghai": 0.09,
    "Beijing": 0.08,
    "Shandong": 0.08,
    "Sichuan": 0.07,
    "Henan": 0.06,
    "Hubei": 0.06,
    "Fujian": 0.06,
    "Hunan": 0.05,
    "Shaanxi": 0.03,
    "Xinjiang": 0.03,
}
# sprint day (month, day), how strongly it pulls nearby orders in, days it reaches back
EVENT_DAYS = {"618": ((6, 18), 0.30, 18), "double11": ((11, 11), 0.40, 21), "double12": ((12, 12), 0.15, 10)}
REPEAT_SHARE = {"organic": 0.45, "event": 0.20}
DIRTY_KINDS = ("missing_customer", "negative_amount", "outlier", "duplicate", "bad_timestamp")
CANCELLED_STATUSES = ("cancelled", "refunded")
COMPLETED_STATUS = "paid"
SKUS_PER_CATEGORY = 40


@dataclass(frozen=True)
class Responses:
    """How the shop answers its campaign lists."""

    lift: tuple[tuple[str, float], ...]  # class -> chance of one more purchase in the window when contacted
    window_days: int
    lists: tuple[tuple[str, date, date], ...]  # (the lists' draw, as pipelines.control hashes it; baseline; contact)
    control: ControlSettings


def _probabilities(table: dict) -> tuple[list[str], np.ndarray]:
    names = list(table)
    weights = np.array([v[0] if isinstance(v, tuple) else v for v in table.values()], dtype=float)
    return names, weights / weights.sum()


def _sprint_days(start: date, end: date) -> dict[str, np.ndarray]:
    """Day offsets from `start` of each event's sprint day inside [start, end]."""
    out = {}
    for name, ((month, day), _, _) in EVENT_DAYS.items():
        days = [(date(y, month, day) - start).days for y in range(start.year, end.year + 1)]
        out[name] = np.array([d for d in days if 0 <= d <= (end - start).days], dtype=np.int64)
    return out


def _segment_cumsum(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at every segment (segments laid end to end)."""
    total = np.cumsum(values)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    before = np.concatenate([[0.0], total])[starts]
    return total - before


def generate_orders(
    seed: int, customers: int, start: date, end: date, dirty_share: float = 0.005, responses: Responses | None = None
) -> pl.DataFrame:
    """The shop's order export from `start` to `end` inclusive: one row per order; with `responses`, the
    purchases its campaigns bring follow."""
    rng = np.random.default_rng(seed)
    n_days = (end - start).days + 1
    sprints = _sprint_days(start, end)
    all_sprints = np.concatenate(list(sprints.values()))

    # When customers arrive: a growing shop, quiet Sundays, rushes on event days.
    day = np.arange(n_days)
    weekday = (np.array(start.weekday()) + day) % 7
    arrival = (1.0 + 0.6 * day / n_days) * np.where(weekday == 6, 0.8, 1.0)
    for name, days in sprints.items():
        boost = {"618": 6.0, "double11": 10.0, "double12": 4.0}[name]
        for d in days:
            arrival[d] *= boost
            arrival[max(d - 10, 0) : d] *= 1.5  # warm-up
    acquired = rng.choice(n_days, size=customers, p=arrival / arrival.sum())
    on_event = np.isin(acquired, all_sprints)

    category_names, category_p = _probabilities(CATEGORIES)
    category = rng.choice(len(category_names), size=customers, p=category_p)
    cycle = np.array([CATEGORIES[c][1] for c in category_names], dtype=float)[category]
    channel_names, channel_p = _probabilities(CHANNELS)
    first_channel = rng.choice(len(channel_names), size=customers, p=channel_p)
    region_names, region_p = _probabilities(REGIONS)
    region = rng.choice(len(region_names), size=customers, p=region_p)

    repeat_share = np.where(on_event, REPEAT_SHARE["event"], REPEAT_SHARE["organic"])
    repeats = rng.random(customers) < repeat_share
    extra = np.where(repeats, np.minimum(rng.geometric(0.3, customers), 40), 0)
    per_customer = 1 + extra

    # Orders: the first on arrival, then one purchase cycle apart with noise.
    owner = np.repeat(np.arange(customers), per_customer)
    gaps = cycle[owner] * rng.gamma(3.0, 1 / 3.0, owner.size)
    first = np.concatenate([[0], np.cumsum(per_customer)[:-1]])
    gaps[first] = 0.0
    order_day = acquired[owner] + np.floor(_segment_cumsum(gaps, per_customer)).astype(np.int64)

    # Orders falling shortly before an event wait for it: most to the sprint, some to the warm-up.
    chance, warmup_day = rng.random(owner.size), rng.integers(1, 3, owner.size)
    to_warmup = rng.random(owner.size) < 0.3
    for name, days in sprints.items():
        _, pull, reach = EVENT_DAYS[name]
        for d in days:
            near = (order_day >= d - reach) & (order_day < d - 2) & (chance < pull)
            order_day[near] = np.where(to_warmup[near], d - warmup_day[near], d)
    keep = order_day < n_days
    owner, order_day = owner[keep], order_day[keep]
    n = owner.size
    sprint_order = np.isin(order_day, all_sprints)

    # Evening shoppers; the midnight rush when a sprint opens.
    hour_p = np.array([2, 1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 5, 6, 8, 9, 8, 5], dtype=float)
    hour = rng.choice(24, size=n, p=hour_p / hour_p.sum())
    hour = np.where(sprint_order & (rng.random(n) < 0.3), 0, hour)
    seconds = order_day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, n)
    # The export is in time order; ties broken by customer so that order ids are stable.
    order = np.argsort(seconds * customers + owner)
    owner, seconds, sprint_order = owner[order], seconds[order], sprint_order[order]

    cat = category[owner]
    price = np.array([CATEGORIES[c][2] for c in category_names])[cat]
    items = 1 + rng.poisson(np.array([CATEGORIES[c][3] for c in category_names])[cat])
    discount = np.where(sprint_order, 0.8, 1.0)
    amount = np.round(price * rng.lognormal(0.0, 0.35, n) * items * discount, 2)
    channel = np.where(rng.random(n) < 0.8, first_channel[owner], rng.choice(len(channel_names), size=n, p=channel_p))
    status = rng.choice(3, size=n, p=[0.95, 0.02, 0.03])
    shipped = seconds + rng.integers(4 * 3_600, 48 * 3_600, n)
    delivered = shipped + rng.integers(24 * 3_600, 4 * 86_400, n)
    sku_no = np.floor(SKUS_PER_CATEGORY * rng.random(n) ** 2.5).astype(np.int64)  # a few best sellers

    stamp = _stamper(start, n_days + 10)
    paid = status == 0
    orders = pl.DataFrame(
        {
            "order_id": pl.Series(np.arange(1, n + 1)).cast(pl.String).str.zfill(10),
            "customer_id": pl.Series(owner + 1).cast(pl.String).str.zfill(7),
            "order_ts": stamp(seconds),
            "amount": amount,
            "items": items.astype(np.int32),
            "channel": _labels(channel_names, channel),
            "region": _labels(region_names, region[owner]),
            "category": _labels(category_names, cat),
            "sku": _labels(_sku_names(category_names), cat * SKUS_PER_CATEGORY + sku_no),
            "product": _labels(_product_names(category_names), cat * SKUS_PER_CATEGORY + sku_no),
            "status": _labels([COMPLETED_STATUS, *CANCELLED_STATUSES], status),
            "shipped_ts": stamp(shipped).set(pl.Series(~paid), None),
            "delivered_ts": stamp(delivered).set(pl.Series(~paid | (delivered >= n_days * 86_400)), None),
        }
    ).with_columns(order_id="SO" + pl.col("order_id"), customer_id="C" + pl.col("customer_id"))
    exported = _make_dirty(orders, rng, dirty_share)
    if not responses or not responses.lift:
        return exported
    return pl.concat([exported, response_orders(orders, responses, seed, end).drop("draw")])


def baseline_classes(paid: pl.DataFrame, day: date) -> pl.DataFrame:
    """customer_id and rfm_class of every customer with a purchase before `day` (`paid`: customer_id, day,
    amount), R, F and M high against the mean."""
    values = (
        paid.filter(pl.col("day") < day)
        .group_by("customer_id")
        .agg(recency=(pl.lit(day) - pl.col("day").max()).dt.total_days(), days=pl.col("day").n_unique(),
             spend=pl.col("amount").sum())
    )  # fmt: skip
    r_high, f_high, m_high = (
        pl.col("recency") < pl.col("recency").mean(), pl.col("days") > pl.col("days").mean(),
        pl.col("spend") > pl.col("spend").mean(),
    )  # fmt: skip
    codes = {4 * r + 2 * f + m: code for (r, f, m), (code, _) in CLASSES.items()}
    key = 4 * r_high.cast(pl.Int8) + 2 * f_high.cast(pl.Int8) + m_high.cast(pl.Int8)
    return values.select("customer_id", rfm_class=key.replace_strict(codes, return_dtype=pl.String)).sort("customer_id")


def response_orders(orders: pl.DataFrame, responses: Responses, seed: int, end: date) -> pl.DataFrame:
    """The purchases campaign lists bring, with the `draw` of the list each answers, numbered after `orders`
    (the shop's orders without dirt: `generate_orders` with `dirty_share=0`): for each list, each contacted
    customer known at its baseline buys again, with their class's chance, on a day of the response window
    (their first purchase's product, amount and channel)."""
    rng = np.random.default_rng([seed, 1])
    paid = orders.filter(pl.col("status") == "paid")
    paid = paid.with_columns(day=pl.col("order_ts").str.to_date("%Y-%m-%d %H:%M:%S"))
    first = paid.sort("order_ts").group_by("customer_id").first()
    lift = dict(responses.lift)
    answers = []
    for draw, baseline, contact in responses.lists:
        known = baseline_classes(paid, baseline).with_columns(
            chance=pl.col("rfm_class").replace_strict(lift, default=0.0, return_dtype=pl.Float64),
            contacted=~held_out(pl.col("customer_id"), pl.lit(draw), responses.control),
        )
        hit = rng.random(known.height) < known["chance"].to_numpy()
        offset = rng.integers(0, responses.window_days, known.height)
        seconds = rng.integers(8 * 3_600, 23 * 3_600, known.height)
        answered = known.with_columns(offset=pl.Series(offset), seconds=pl.Series(seconds))
        answers.append(
            answered.filter(pl.Series(hit) & pl.col("contacted")).select(
                "customer_id", "seconds", draw=pl.lit(draw), day=pl.lit(contact) + pl.duration(days=pl.col("offset"))
            )
        )
    bought = pl.concat(answers).filter(pl.col("day") <= end).join(first.drop("order_id", "day"), on="customer_id")
    paid_at = pl.col("day").cast(pl.Datetime) + pl.duration(seconds=pl.col("seconds"))

    def stamp(days: int) -> pl.Expr:  # none after the last day, as for the other orders
        moment = paid_at + pl.duration(days=days)
        return pl.when(moment.dt.date() <= end).then(moment.dt.to_string("%Y-%m-%d %H:%M:%S"))

    first_id = int(orders["order_id"].str.slice(2).cast(pl.Int64).max()) + 1
    return bought.sort("day", "seconds", "customer_id", "draw").select(
        ("SO" + pl.int_range(first_id, first_id + pl.len()).cast(pl.String).str.zfill(10)).alias("order_id"),
        "customer_id", stamp(0).alias("order_ts"), "amount", "items", "channel", "region", "category", "sku",
        "product", "status", stamp(1).alias("shipped_ts"), stamp(3).alias("delivered_ts"), "draw",
    )  # fmt: skip


def _labels(names: list[str], index: np.ndarray) -> pl.Series:
    """Labels by index, as an Enum: a gather of integers, not of strings."""
    return pl.Series(names, dtype=pl.Enum(names)).gather(pl.Series(index))


def _sku_names(category_names: list[str]) -> list[str]:
    return [f"{c[:3].upper()}-{i + 1:03d}" for c in category_names for i in range(SKUS_PER_CATEGORY)]


def _product_names(category_names: list[str]) -> list[str]:
    return [f"{c.capitalize()} no. {i + 1}" for c in category_names for i in range(SKUS_PER_CATEGORY)]


def _stamper(start: date, n_days: int):
    """Seconds since `start` -> 'YYYY-MM-DD HH:MM:SS', by lookup (much faster than strftime)."""
    days = pl.date_range(start, start + timedelta(days=n_days), eager=True).dt.to_string("%Y-%m-%d ")
    clock = pl.select((pl.datetime(2000, 1, 1) + pl.duration(seconds=pl.int_range(0, 86_400))).dt.to_string("%H:%M:%S"))
    clock = clock.to_series()

    def stamp(seconds: np.ndarray) -> pl.Series:
        return days.gather(pl.Series(seconds // 86_400)) + clock.gather(pl.Series(seconds % 86_400))

    return stamp


def _make_dirty(orders: pl.DataFrame, rng: np.random.Generator, share: float) -> pl.DataFrame:
    """Spoil a `share` of rows, evenly across the kinds of dirt a real export has."""
    n = orders.height
    picked = rng.choice(n, size=min(int(n * share), n), replace=False)
    dirt = np.full(n, -1, dtype=np.int8)
    dirt[picked] = rng.integers(0, len(DIRTY_KINDS), picked.size)

    def where(kind: str) -> pl.Series:
        return pl.Series(dirt == DIRTY_KINDS.index(kind))

    spoiled = orders.with_columns(
        customer_id=orders["customer_id"].set(where("missing_customer"), None),
        amount=pl.when(where("negative_amount"))
        .then(-pl.col("amount"))
        .when(where("outlier"))
        .then(pl.col("amount") * 10_000)
        .otherwise(pl.col("amount")),
        order_ts=pl.when(where("bad_timestamp"))
        .then(pl.col("order_ts").str.slice(0, 5) + "13-45 25:61:00")
        .otherwise(pl.col("order_ts")),
    )
    # A duplicated row sits right after its original, as a double export does.
    copies = 1 + (dirt == DIRTY_KINDS.index("duplicate"))
    return spoiled[np.repeat(np.arange(n), copies)]
