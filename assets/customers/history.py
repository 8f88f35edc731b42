"""When each customer entered and left each class and lifecycle stage, kept as stretches
(`valid_from` inclusive, `valid_to` exclusive, null while current) rather than a copy per day.
Plain Polars.

The state of day X is the stretch with valid_from <= X < valid_to; the migration between
two dates is one self-join of the table (see `migration`).
"""

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

import assets.customers.lifecycle as lifecycle
import assets.customers.rfm as rfm
from assets.customers.facts import KEY, customer_keys, named, needed_columns
from assets.customers.lifecycle import STAGES, TypicalCycles
from assets.customers.rfm import CLASS_CODES, frequency_and_monetary
from assets.customers.snapshot import customer_snapshot
from pipelines.settings import RfmSettings, ShopSettings

STATE = ("rfm_class", "stage")
PIECE = 250_000  # customers handled at a time: their episodes, their classification on a day, their stretches
HISTORY_SCHEMA = {
    "customer_id": pl.String, "rfm_class": pl.String, "stage": pl.String,
    "expected_next_date": pl.Date, "valid_from": pl.Date, "valid_to": pl.Date,
}  # fmt: skip


@dataclass(frozen=True)
class DayCuts:
    """What a day's classes and stages need to know of every customer: the centres R, F and M are high against
    (None with fixed thresholds, or before anyone bought) and the typical cycles."""

    centers: tuple[float, float, float] | None
    cycles: TypicalCycles


def mean_centers(today: int, customers: int, last: int, frequency: int, cents: int) -> tuple[float, float, float]:
    """Mean recency, frequency and monetary of `customers` buyers from exact sums of their last purchase days
    (day numbers), frequencies and money in cents, divided once: the same however the sums were added up."""
    return (today * customers - last) / customers, frequency / customers, cents / (customers * 100)


def recorded_days(since: date, until: date, step_days: int) -> list[date]:
    """The days a rebuild records: every `step_days` from `since`, and `until` itself."""
    steps = [since + timedelta(days=n) for n in range(0, (until - since).days + 1, step_days)]
    return sorted({*steps, until})


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


def rebuild_from_orders(
    history: pl.DataFrame,
    orders: pl.LazyFrame | pl.DataFrame,
    since: date,
    until: date,
    settings: ShopSettings,
    step_days: int = 1,
    cuts_on: Callable[[date], DayCuts] | None = None,
) -> pl.DataFrame:
    """`rebuild` with the states of since..until (every `step_days`, and `until` itself) from `staging.orders`
    (or rows of its shape) in one pass: each customer's values change only on their order days (`customer_episodes`),
    so a day costs a few comparisons per customer against that day's shop-wide thresholds, not a snapshot. The
    thresholds are those of the customers of `orders`, or, for a bucket of a shop's customers, `cuts_on(day)` of
    all of them (without a look-back window)."""
    return pl.concat(history_pieces(history, orders, since, until, settings, step_days, cuts_on))


def history_pieces(
    history: pl.DataFrame,
    orders: pl.LazyFrame | pl.DataFrame,
    since: date,
    until: date,
    settings: ShopSettings,
    step_days: int = 1,
    cuts_on: Callable[[date], DayCuts] | None = None,
) -> Iterator[pl.DataFrame]:
    """`rebuild_from_orders` a piece of customers (`PIECE`, in id order) at a time: the pieces, one after another,
    are its rows in its order, so that a caller can write each and let it go (at least one piece, maybe empty).
    Holds `orders` only until they are keyed: a caller done with them can let them go once this has started."""
    if settings.rfm.lookback_days:  # values inside a sliding window change every day: snapshot each step
        if cuts_on is not None:
            raise ValueError("segment history with given cuts: not with rfm.lookback_days (a snapshot per day)")
        yield rebuild(history, _snapshot_states(orders, settings), since, until, step_days)
        return
    kept = history.filter(pl.col("valid_from") < since).with_columns(
        valid_to=pl.when(pl.col("valid_to") > since).then(None).otherwise("valid_to")
    )
    # only what the episodes read, once: the orders (where the caller has let them go too) and the old history are
    # let go before the days are stepped through
    read = needed_columns(orders).select("customer_id", "order_date", "purchase", "amount", "category")
    customers, keyed = customer_keys(read.filter(pl.col("order_date") <= until).collect())
    keyed = keyed.collect()
    del orders, history
    days = DayStates(*_episodes_in_pieces(keyed, settings.rfm), customers.height, settings)
    del keyed
    open_stretches = customers.join(kept.filter(pl.col("valid_to").is_null()), on="customer_id")
    previous = days.code_of(open_stretches[KEY], open_stretches["rfm_class"], open_stretches["stage"])
    changes = [
        days.advance(day, previous, cuts_on(day) if cuts_on else None) for day in recorded_days(since, until, step_days)
    ]
    del days, previous
    # the days' changes come in order of day: kept in it within each customer, they are in order of key and day
    changes = pl.concat(changes, rechunk=False).sort(KEY, maintain_order=True)
    kept = kept.sort("customer_id", "valid_from")
    starts = list(range(0, customers.height, PIECE))
    # a piece's old stretches: those of ids from its first customer's up to the next piece's first customer's
    bounds = [0, *kept["customer_id"].search_sorted(customers["customer_id"].gather(starts[1:])).to_list(), kept.height]
    ends = changes[KEY].search_sorted(pl.Series([*starts[1:], customers.height], dtype=pl.UInt32)).to_list()
    for number, end in enumerate(ends or [0]):
        first = ends[number - 1] if number else 0
        yield _stretches(customers, kept[bounds[number] : bounds[number + 1]], changes[first:end])


def _stretches(customers: pl.DataFrame, kept: pl.DataFrame, changes: pl.DataFrame) -> pl.DataFrame:
    """The history of some customers: their stretches before the rebuild (`kept`) and from its changes (sorted by
    customer_key, then day), each closed by the customer's next one."""
    # keys are numbered in id order: sorted by key, the stretches are in id order without sorting any text; the
    # class and stage are named once sorted, not as texts per day and sorted with them
    opened = changes.select(
        customers["customer_id"].gather(changes[KEY]),
        rfm_class=named(pl.col("code") // len(STAGES), CLASS_CODES),
        stage=named(pl.col("code") % len(STAGES), STAGES),
        expected_next_date="expected_next_date", valid_from="valid_from", valid_to=pl.lit(None, pl.Date),
    )  # fmt: skip
    history = pl.concat([kept, opened]).sort("customer_id", "valid_from") if kept.height else opened
    same_customer = pl.col("customer_id") == pl.col("customer_id").shift(-1)
    return history.with_columns(valid_to=pl.when(same_customer).then(pl.col("valid_from").shift(-1)))


def _episodes_in_pieces(keyed: pl.DataFrame, rules: RfmSettings) -> tuple[pl.DataFrame, list[str]]:
    """`customer_episodes` of every customer, computed a piece of customers at a time (what they hold while being
    computed follows the piece), with the categories of the whole shop."""
    bought = keyed.filter(pl.col("purchase") & pl.col("category").is_not_null())
    categories = bought.select(pl.col("category").unique().sort())["category"].cast(pl.String).to_list()
    customers = int(keyed[KEY].max() or 0) + 1
    within = [pl.col(KEY).is_between(start, start + PIECE - 1) for start in range(0, customers, PIECE)]
    # counts as 32-bit numbers; no purchase yet as day 0 and no cycle as NaN, as `DayStates` reads them (no copy there)
    compact = [
        pl.col("purchase_days", "frequency", "category").cast(pl.Int32),
        pl.col("last_purchase").fill_null(date(1970, 1, 1)),
        pl.col("cycle").fill_null(np.nan),
    ]
    pieces = (customer_episodes(keyed.lazy().filter(piece), rules, categories)[0] for piece in within)
    episodes = pl.concat([piece.with_columns(*compact) for piece in pieces], rechunk=False)
    # in order of day a column at a time: a copy of one column at once, not of all
    order, columns = episodes["order_date"].arg_sort(), []
    for name in episodes.columns:
        columns.append(episodes[name].gather(order))
        episodes = episodes.drop(name)
    return pl.DataFrame(columns), categories


def _snapshot_states(orders: pl.LazyFrame | pl.DataFrame, settings: ShopSettings) -> Callable[[date], pl.DataFrame]:
    orders = needed_columns(orders).collect()
    return lambda day: customer_snapshot(orders, day, settings).rfm.select("customer_id", *STATE, "expected_next_date")


def so_far(value: pl.Expr, group: pl.Expr | None = None) -> pl.Expr:
    """A running total within each group (rows in group order; by default, customer_key): the whole column's,
    less where the group began. Money comes out within far less than a cent of its sum, and is rounded to cents."""
    group = pl.col(KEY) if group is None else group
    running = value.cum_sum()
    return running - pl.when((group != group.shift(1)).fill_null(True)).then(running - value).forward_fill()


def customer_episodes(
    keyed: pl.LazyFrame, rules: RfmSettings, categories: list[str] | None = None
) -> tuple[pl.DataFrame, list[str]]:
    """Each customer's values from each of their order days on (one row per customer and order day, in order
    of day): last purchase, purchase days, F, M, own cycle and main category (as a number into the returned
    categories: `categories` where given, which must hold every category the customers bought in, else theirs),
    computed as a snapshot computes them from the orders up to that day."""
    # one number per customer and day (customer_key, then the day): grouped and sorted as one column
    customer_day = pl.col(KEY).cast(pl.UInt64) * 2**32 + (pl.col("order_date").cast(pl.Int64) + 2**31)
    per_day = (
        keyed.group_by(customer_day.alias("customer_day"))
        .agg(orders=pl.col("purchase").sum(), bought=pl.col("purchase").any(), amount=pl.col("amount").sum())
        .sort("customer_day")
        .with_columns(
            (pl.col("customer_day") // 2**32).cast(pl.UInt32).alias(KEY),
            order_date=((pl.col("customer_day") % 2**32).cast(pl.Int64) - 2**31).cast(pl.Int32).cast(pl.Date),
        )
    )
    purchase_days = pl.col("purchase_days")
    running = per_day.with_columns(
        orders=so_far(pl.col("orders")),
        purchase_days=so_far(pl.col("bought").cast(pl.Int64)),
        net=so_far(pl.col("amount")).round(2),
    ).with_columns(
        last_purchase=pl.when(purchase_days > 0).then(pl.when("bought").then(pl.col("order_date")).forward_fill()),
        first_purchase=pl.when(purchase_days > 0).then(
            pl.when(pl.col("bought") & (purchase_days == 1)).then(pl.col("order_date")).forward_fill()
        ),
    )
    frequency, monetary = frequency_and_monetary(pl.col("orders"), purchase_days, pl.col("net"), rules)
    span = (pl.col("last_purchase") - pl.col("first_purchase")).dt.total_days()
    values = running.select(
        KEY, "order_date", "last_purchase", "purchase_days", frequency=frequency, monetary=monetary,
        cycle=pl.when(purchase_days >= 2).then(span / (purchase_days - 1)),
    ).collect()  # fmt: skip
    spend = (
        keyed.filter(pl.col("purchase") & pl.col("category").is_not_null())
        .group_by(KEY, "category", "order_date")
        .agg(pl.col("amount").sum())
        .collect()
    )
    names = spend.select(pl.col("category").unique().sort())["category"]  # categoricals sort by name
    own, n = names.cast(pl.String).to_list(), len(names)
    # main category as of each order day: the category with the most spend so far (in cents), first by name. A
    # category's spend only grows, so that is the category of the customer's highest spend so far in any row,
    # found by a running maximum of one number: cents, then categories earlier by name higher
    code = pl.col("category").to_physical()
    rank = code.replace_strict(names.to_physical(), range(n), return_dtype=pl.Int64)
    by_category = spend.sort(KEY, code, "order_date").with_columns(
        spent=(so_far(pl.col("amount"), pl.col(KEY).cast(pl.Int64) * n + rank).round(2) * 100).round().cast(pl.Int64)
    )
    score = by_category.select(KEY, "order_date", score=pl.col("spent") * n + n - 1 - rank).sort(KEY, "order_date")
    # the running maximum of each customer at once: the customer's key in front keeps customers apart
    size = int(score["score"].max() or 0) + 1
    if (int(score[KEY].max() or 0) + 1) * size < 2**63:
        front = pl.col(KEY).cast(pl.Int64) * size
        highest = (front + pl.col("score")).cum_max() - front
    else:
        highest = pl.col("score").cum_max().over(KEY)
    day_ends = (pl.col(KEY) != pl.col(KEY).shift(-1)) | (pl.col("order_date") != pl.col("order_date").shift(-1))
    best = score.lazy().select(KEY, "order_date", category=n - 1 - highest % n).filter(day_ends.fill_null(True))
    if categories is not None:  # numbered into the categories given (their own in the same order: by name)
        numbers = pl.Series([categories.index(name) for name in own], dtype=pl.Int64)
        best = best.with_columns(category=pl.lit(numbers).gather("category"))
    else:
        categories = own
    # on days without such spend, the day before's: carried forward with the customer's key, kept where it matches
    n = len(categories)
    tagged = pl.col(KEY).cast(pl.Int64) * n + pl.col("category")
    episodes = (
        values.lazy()
        .join(best, on=[KEY, "order_date"], how="left", maintain_order="left")
        .with_columns(tagged=tagged.forward_fill())
        .with_columns(category=pl.when(pl.col("tagged") // n == pl.col(KEY)).then(pl.col("tagged") % n).fill_null(n))
        .drop("tagged")
        .sort("order_date")
        .collect()
    )
    return episodes, categories


class DayStates:
    """Every customer's class and stage day after day: the episodes of each day update the customers' values,
    then the day's thresholds (means or medians, typical cycles) classify everyone, as a snapshot would."""

    def __init__(self, episodes: pl.DataFrame, categories: list[str], customers: int, settings: ShopSettings):
        self.rfm, self.rules = settings.rfm, settings.lifecycle
        days = episodes["order_date"].cast(pl.Int32).to_numpy()
        self.next_episode, self.episode_days = 0, days
        self.episode = {
            "key": episodes[KEY].to_numpy(),
            "last": episodes["last_purchase"].cast(pl.Int32).fill_null(0).to_numpy(),
            "purchase_days": episodes["purchase_days"].to_numpy(),
            "frequency": episodes["frequency"].to_numpy(),
            "monetary": episodes["monetary"].to_numpy(),
            "cycle": episodes["cycle"].fill_null(np.nan).to_numpy(),
            "category": episodes["category"].to_numpy(),
        }
        self.last = np.zeros(customers, np.int32)
        self.purchase_days = np.zeros(customers, np.int32)
        self.frequency = np.zeros(customers, np.int32)
        self.monetary = np.zeros(customers, np.float64)
        self.cycle = np.full(customers, np.nan)
        self.category = np.full(customers, len(categories), np.int32)  # the number of categories: none
        self.categories = categories
        # repeat buyers' cycles counted by category (the last row: the whole shop), for the typical cycles
        cycles = self.episode["cycle"]
        self.cycle_values = np.unique(cycles[~np.isnan(cycles)])
        self.cycle_counts = np.zeros((len(categories) + 1, len(self.cycle_values)), np.int64)
        windows = [settings.rfm.active_window_days.get(name, settings.rfm.recency_days) for name in categories]
        self.active_window = np.array([*windows, settings.rfm.recency_days])  # by category, the last: none

    def code_of(self, keys: pl.Series, classes: pl.Series, stages: pl.Series) -> np.ndarray:
        """Per customer, the code of a class and stage (-1: none)."""
        class_codes = {code: n for n, code in enumerate(CLASS_CODES)}
        codes = np.full(len(self.last), -1, np.int8)
        codes[keys.to_numpy()] = (
            classes.replace_strict(class_codes).to_numpy() * len(STAGES)
            + stages.replace_strict({name: n for n, name in enumerate(STAGES)}).to_numpy()
        )
        return codes

    def _count_cycles(self, keys: np.ndarray, sign: int) -> None:
        repeat = keys[~np.isnan(self.cycle[keys])]
        ranks = np.searchsorted(self.cycle_values, self.cycle[repeat])
        np.add.at(self.cycle_counts, (self.category[repeat], ranks), sign)  # no category: the shop row
        with_category = self.category[repeat] < len(self.categories)
        np.add.at(self.cycle_counts[-1], ranks[with_category], sign)

    def _typical_cycles(self) -> np.ndarray:
        """Median cycle of repeat buyers by category (NaN where none), the last: of the shop."""
        if not len(self.cycle_values):  # nobody has bought twice yet
            return np.full(len(self.cycle_counts), np.nan)
        counts = self.cycle_counts.sum(axis=1)
        running = self.cycle_counts.cumsum(axis=1)
        below = np.argmax(running > ((counts - 1) // 2)[:, None], axis=1)
        above = np.argmax(running > (counts // 2)[:, None], axis=1)
        return np.where(counts > 0, (self.cycle_values[below] + self.cycle_values[above]) / 2, np.nan)

    def catch_up(self, day: date) -> int:
        """Take in the episodes up to `day` (each customer's values as of it: last purchase, purchase days, F, M,
        cycle, main category); returns the day as a day number (days since 1970-01-01)."""
        today = (day - date(1970, 1, 1)).days
        end = np.searchsorted(self.episode_days, np.int32(today), side="right")  # a Python int would copy the days
        if end > self.next_episode:
            # each customer's latest episode up to today (the first call may cover many days)
            keys = self.episode["key"][self.next_episode : end][::-1]
            keys, latest = np.unique(keys, return_index=True)
            rows = end - 1 - latest
            self._count_cycles(keys, -1)
            for name in ("last", "purchase_days", "frequency", "monetary", "cycle", "category"):
                getattr(self, name)[keys] = self.episode[name][rows]
            self._count_cycles(keys, 1)
            self.next_episode = end
        return today

    def advance(self, day: date, previous: np.ndarray, cuts: DayCuts | None = None) -> pl.DataFrame:
        """The customers whose class or stage on `day` differs from `previous` (updated in place), with the code
        of the new ones (`code_of`), against `cuts` of all customers (by default, of these)."""
        today = self.catch_up(day)
        recency = today - self.last
        known = self.purchase_days > 0
        if cuts is None:
            highs, typical = self._highs(recency, self.centers(today, known)), self._typical_cycles()
        else:
            given = cuts.centers or (None,) * len(rfm.MEASURES)  # the tuple in rfm.MEASURES' order
            highs = self._highs(recency, dict(zip(rfm.MEASURES, given, strict=True)))
            by_category = [*(cuts.cycles.by_category.get(name) for name in self.categories), cuts.cycles.shop]
            typical = np.array([np.nan if cycle is None else cycle for cycle in by_category], np.float64)
        shop = typical[-1] if not np.isnan(typical[-1]) else self.rules.default_cycle_days
        typical = np.where(np.isnan(typical), shop, typical)  # by category, the last: no category
        # the customers in pieces, two at a time: numpy lets go of the GIL over whole arrays, and a piece's arrays
        # stay nearer the processor between one comparison and the next (at 8.9 million customers a day takes
        # about two thirds of the time it took in one piece)
        pieces = [slice(start, start + PIECE) for start in range(0, max(len(self.last), 1), PIECE)]
        with ThreadPoolExecutor(2) as pool:
            parts = list(pool.map(lambda piece: self._changes(piece, recency, highs, typical, previous), pieces))
        changed, code, cycle = (np.concatenate(column) for column in zip(*parts, strict=True))
        previous[changed] = code
        expected = self.last[changed] + np.rint(cycle).astype(np.int64)
        return pl.DataFrame(
            {
                KEY: changed.astype(np.uint32),
                "code": code,
                "expected_next_date": pl.Series(expected, dtype=pl.Int32).cast(pl.Date),
                "valid_from": pl.repeat(day, len(changed), dtype=pl.Date, eager=True),
            }
        )

    def _changes(
        self, piece: slice, recency: np.ndarray, highs: tuple, typical: np.ndarray, previous: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Among a piece of the customers: who has a class or stage other than `previous`, their new code and
        the cycle their stage came from."""
        r_high, f_high, m_high = (high[piece] for high in highs)
        days, rules = recency[piece], self.rules
        cycle = np.where(np.isnan(self.cycle[piece]), typical[self.category[piece]], self.cycle[piece])
        conditions = lifecycle.stage_conditions(days, cycle, self.purchase_days[piece], rules)  # the snapshot's rules
        stage = np.select([c for _, c in conditions], [STAGES.index(s) for s, _ in conditions], STAGES.index("active"))
        stage = stage.astype(np.int8)
        code = (4 * r_high.view(np.int8) + 2 * f_high.view(np.int8) + m_high.view(np.int8)) * len(STAGES) + stage
        changed = np.flatnonzero((self.purchase_days[piece] > 0) & (code != previous[piece]))
        return changed + piece.start, code[changed], cycle[changed]

    def _highs(self, recency: np.ndarray, centers: dict[str, float | None]) -> tuple[np.ndarray, ...]:
        """R, F and M high or low by the snapshot's rules (rfm.highs) against `centers` (none known: all low)."""
        fixed = self.rfm.threshold == "fixed"
        centers = {name: np.nan if value is None else value for name, value in centers.items()}
        window = self.active_window[self.category] if fixed else None
        return rfm.highs(recency, self.frequency, self.monetary, window, centers, self.rfm)

    def centers(self, today: int, known: np.ndarray) -> dict[str, float | None]:
        """The centres of the customers known `today` (rfm.centers_of), the snapshot's way."""
        return {} if self.rfm.threshold == "fixed" else rfm.centers_of(self._counts(today, known), self.rfm)

    def _counts(self, today: int, known: np.ndarray) -> dict[str, pl.DataFrame]:
        """The `known` customers' recency, frequency and monetary values counted (value, count): days of last
        purchase and orders by number (less those yet to buy: day 0, no orders), money a row per customer."""
        unknown = len(known) - np.count_nonzero(known)

        def counted(numbers: np.ndarray) -> pl.DataFrame:
            counts = np.bincount(numbers, minlength=1)
            counts[0] -= unknown
            found = np.flatnonzero(counts)
            return pl.DataFrame({"value": found.astype(np.float64), "count": counts[found]})

        return {
            "recency_days": counted(self.last).with_columns(value=today - pl.col("value")),
            "frequency": counted(self.frequency),
            "monetary": pl.DataFrame({"value": self.monetary[known]}).with_columns(count=pl.lit(1, pl.Int64)),
        }
