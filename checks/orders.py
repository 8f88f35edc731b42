"""Checks on the order tables, computed in the ingest step itself (they ride on it as
`check_specs`): the raw and clean order suites and the reconciliation block what comes after;
the rejected share and quiet days only warn.

No check holds a whole table: what must be exact (unique order ids, a customer on every order,
amounts in range, days inside the run, the shop's currency, reconciliation, readable times) is SQL
on the rows a run wrote, or counted as it cleans them; the Great Expectations suites validate a
bounded sample and keep its result (JSON, Data Docs) for analysts. The checks run before the run
commits, and a blocking failure rolls it back. A share (refused rows, unreadable times) is judged
over at least `quality.share_min_rows` rows, so that one bad row on a quiet day is refused, not a failure."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import polars as pl

from checks import order_rules, suites
from checks.suites import SuiteResult, suite_check
from pipelines.settings import ShopSettings
from pipelines.warehouse import NO_STATUS, NO_STATUSES

if TYPE_CHECKING:  # at run time, importing assets.orders.cleaning would import assets.orders, which imports this
    from assets.orders.cleaning import CleaningRules

RAW_SUITE, CLEAN_SUITE = "raw_orders_suite", "clean_orders_suite"
RECONCILED, REJECTED_SHARE, ORDERS_EVERY_DAY = "rows_reconcile", "rejected_share", "orders_every_day"
STATUSES_NAMED = "statuses_named"
BLOCKING = (RAW_SUITE, CLEAN_SUITE, RECONCILED)  # a run whose blocking check fails writes nothing
READABLE_TIMES = ("expect_column_values_to_not_be_null", "_ts")  # the raw suite's share, judged exactly


def order_check_specs(orders: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The checks, all on staging/orders: the step's one asset recorded per day (Dagster checks the assets a
    step declares; raw.orders and staging.rejects are written with it and named in the descriptions)."""
    return [
        dg.AssetCheckSpec(RAW_SUITE, asset=orders, blocking=True,
                          description="raw_orders GX suite on raw.orders: columns and readable times"),
        dg.AssetCheckSpec(CLEAN_SUITE, asset=orders, blocking=True,
                          description="clean_orders GX suite: unique ids, customers, amounts, days, currency"),
        dg.AssetCheckSpec(RECONCILED, asset=orders, blocking=True,
                          description="per day in the warehouse: rows in = kept + refused"),
        dg.AssetCheckSpec(REJECTED_SHARE, asset=orders,
                          description="refused rows (staging.rejects) stay under quality.max_rejected_share"),
        dg.AssetCheckSpec(ORDERS_EVERY_DAY, asset=orders,
                          description="no day without orders when the shop usually has some"),
        dg.AssetCheckSpec(STATUSES_NAMED, asset=orders,
                          description="no order status that the settings do not name appears for the first time "
                                      "(raw.statuses_seen): such orders count as completed, as revenue"),
    ]  # fmt: skip


def set_up_order_suites(settings: ShopSettings) -> Future:
    """GX set up for the order suites while the run reads and writes (see `suites.set_up_in_background`)."""
    return suites.set_up_in_background(_quality_folder(settings), suites.RAW_ORDERS, suites.clean_orders())


def _quality_folder(settings: ShopSettings) -> Path:
    return Path(settings.output) / "quality"


def reconciliation(conn, first: date, last: date) -> pl.DataFrame:
    """Days of first..last where raw rows differ from kept plus refused rows, as the warehouse holds them."""
    return conn.sql(
        """
        WITH raw AS (SELECT order_date, count(*) n FROM raw.orders
                     WHERE order_date BETWEEN $1 AND $2 GROUP BY ALL),
             kept AS (SELECT order_date, count(*) n FROM staging.order_lines
                      WHERE order_date BETWEEN $1 AND $2 GROUP BY ALL),
             refused AS (SELECT order_date, count(*) n FROM staging.rejects
                         WHERE order_date BETWEEN $1 AND $2 GROUP BY ALL)
        SELECT order_date, coalesce(raw.n, 0) AS rows_in, coalesce(kept.n, 0) AS kept, coalesce(refused.n, 0) AS refused
        FROM raw FULL JOIN kept USING (order_date) FULL JOIN refused USING (order_date)
        WHERE coalesce(raw.n, 0) != coalesce(kept.n, 0) + coalesce(refused.n, 0) ORDER BY order_date
        """,
        params=[first, last],
    ).pl()


def quiet_days(conn, first: date, last: date, min_orders: float) -> list[date]:
    """Days of first..last without orders, in a run of such days that the 28 days before had a median of
    min_orders or more: a gap is flagged wherever it lies in a loaded range, a backfill's as well."""
    daily = conn.sql(
        "SELECT order_date, count(*) n FROM staging.orders WHERE order_date BETWEEN ? AND ? GROUP BY ALL",
        params=[first - timedelta(days=28), last],
    ).pl()
    days = pl.date_range(first - timedelta(days=28), last, eager=True).alias("order_date").to_frame()
    empty = pl.col("n") == 0
    return (
        days.join(daily, on="order_date", how="left")
        .with_columns(pl.col("n").fill_null(0))
        .with_columns(usual=pl.col("n").rolling_median(28).shift(1), gap=(~empty).cum_sum())
        .filter(empty & (pl.col("order_date") >= first))
        .filter(pl.col("usual").first().over("gap") >= min_orders)["order_date"]
        .to_list()
    )


def broken_order_rules(conn, table: str, days: list[date], settings: ShopSettings) -> dict[tuple, dict]:
    """Exact, in SQL on the clean orders a run wrote (`table`) on `days`: for each clean-order rule
    (`checks.order_rules`) but uniqueness (`repeated_order_ids` checks that on the written days), the rows that break
    it, counted, with a sample."""
    values = rule_values(settings, days)
    broken = {}
    for rule in order_rules.CLEAN_ORDER_RULES:
        if (condition := rule.broken()) is None:
            continue
        used = {name: value for name, value in values.items() if f"${name}" in condition}
        count, sample = conn.execute(
            f"SELECT count(*), list(CAST({rule.column} AS VARCHAR))[1:{suites.SAMPLE_SIZE}] FROM {table} "
            f"WHERE {condition}",
            used,
        ).fetchall()[0]
        if count:
            broken[(rule.expectation, rule.column)] = {"unexpected_count": count, "sample": sample}
    return broken


def rule_values(settings: ShopSettings, days: list[date]) -> dict:
    """The clean-order rules' parameters for a run that wrote `days`, as the SQL takes them (the GX suite takes
    days as timestamps: `suites.days`)."""
    return {"days": days, "max_amount": settings.quality.max_order_amount, "currencies": [settings.currency]}


def repeated_order_ids(conn, first: date, last: date) -> dict[tuple, dict]:
    """Exact, in SQL: orders of days first..last whose id another order in the warehouse has too (every such row
    counts, as in GX's uniqueness expectation), with a sample of the ids. Ids are grouped by their 64-bit hash
    first (grouping text costs twice as much), then the few candidates by their text. A run that wrote most of
    the table groups it in one pass; a smaller one first gathers its own ids and looks only those up."""
    in_run = "order_date BETWEEN $1 AND $2"
    query = f"SELECT count(*) FILTER ({in_run}), count(*) FROM staging.orders"
    mine, total = conn.execute(query, [first, last]).fetchone()
    looked_up = "" if 2 * mine > total else f"WHERE h IN (SELECT hash(order_id) FROM staging.orders WHERE {in_run})"
    count, sample = conn.execute(
        f"""
        WITH candidates AS (SELECT hash(order_id) AS h FROM staging.orders {looked_up}
                            GROUP BY 1 HAVING count(*) > 1 AND bool_or({in_run})),
             repeated AS (SELECT order_id, count(*) n FROM staging.orders
                          WHERE hash(order_id) IN (SELECT h FROM candidates) GROUP BY ALL
                          HAVING count(*) > 1 AND bool_or(order_date BETWEEN $1 AND $2))
        SELECT coalesce(sum(n), 0), list(order_id)[1:{suites.SAMPLE_SIZE}] FROM repeated
        """,
        [first, last],
    ).fetchall()[0]
    return (
        {("expect_column_values_to_be_unique", "order_id"): {"unexpected_count": count, "sample": sample}}
        if count
        else {}
    )


@dataclass
class OrderCheckTally:
    """What the order checks count while a run cleans its chunks."""

    rows_in: int = 0
    refused: int = 0
    unreadable_times: int = 0
    unreadable_sample: list = field(default_factory=list)  # order times as received
    status_parts: list = field(default_factory=list)  # each chunk's `status_counts`

    def add(self, clean) -> None:
        self.rows_in += clean.raw.height
        self.status_parts.append(clean.statuses)
        self.refused += clean.rejects.height
        unreadable = clean.raw.filter(pl.col("_ts").is_null())["order_ts"]
        self.unreadable_times += unreadable.len()
        self.unreadable_sample = (self.unreadable_sample + unreadable.head(suites.SAMPLE_SIZE).to_list())[
            : suites.SAMPLE_SIZE
        ]

    def statuses(self) -> pl.DataFrame:
        """`status, treated, orders` over the run: the orders of each status the source used, and their treatment."""
        return (
            pl.concat([NO_STATUSES, *self.status_parts])
            .group_by("status", "treated")
            .agg(pl.col("orders").sum().cast(pl.Int64))
            .sort("status", "treated")
        )


def status_summary(statuses: pl.DataFrame) -> dict[str, int]:
    """Orders by status and treatment, as `{"paid (completed)": 950, ...}`: counts a run summary lists."""
    return {f"{status} ({treated})": orders for status, treated, orders in statuses.iter_rows()}


def new_statuses(conn, statuses: pl.DataFrame, named: set[str]) -> pl.DataFrame:
    """The statuses of a run that the settings do not name and that raw.statuses_seen does not hold yet."""
    seen = conn.sql("SELECT status FROM raw.statuses_seen").pl()["status"]
    return statuses.filter(~pl.col("status").is_in([*named, *seen, NO_STATUS]))


def record_statuses(conn, statuses: pl.DataFrame, loaded_ts) -> None:
    """Remember the statuses a run saw for the first time, with how most of their orders were treated."""
    first = (
        statuses.sort("orders", descending=True).unique("status", keep="first").filter(pl.col("status") != NO_STATUS)
    )
    conn.register("statuses", first.select("status", "treated", first_loaded_ts=pl.lit(loaded_ts)).to_arrow())
    conn.execute(
        "INSERT INTO raw.statuses_seen BY NAME SELECT * FROM statuses "
        "WHERE status NOT IN (SELECT status FROM raw.statuses_seen)"
    )
    conn.unregister("statuses")


def within_share(count: int, rows: int, share: float, min_rows: int) -> bool:
    """Whether `count` of `rows` stays within `share`, taken over at least `min_rows` rows: on a quiet
    day a bad row or two are refused like any others instead of failing the day."""
    return count <= share * max(rows, min_rows)


def sample(conn, table: str, first: date, last: date, stretch: int = 1_000) -> pl.DataFrame:
    """About `SAMPLE_ROWS` rows of a table's days first..last (all of them when they fill no more stretches):
    stretches of `stretch` rows in table order, drawn at random (the same draw each time). Rows drawn one by one
    would lie in every block of a large table, each of which DuckDB then decompresses, every column of it: at
    20 M orders, seconds a table."""
    return conn.sql(
        f"""SELECT * FROM {table} WHERE order_date BETWEEN $1 AND $2 AND rowid IN (
                SELECT unnest(range(s * {stretch}, (s + 1) * {stretch})) FROM (
                    SELECT DISTINCT rowid // {stretch} AS s FROM {table} WHERE order_date BETWEEN $1 AND $2 ORDER BY s
                ) USING SAMPLE reservoir({suites.SAMPLE_ROWS // stretch} ROWS) REPEATABLE (0))""",
        params=[first, last],
    ).pl()


def order_check_results(
    conn, settings: ShopSettings, rules: CleaningRules, tally: OrderCheckTally, broken: dict[tuple, dict],
    first: date, last: date, loaded: tuple[date, date], run_id: str, key: dg.AssetKey,
    rows_read: int,
) -> list[dg.AssetCheckResult]:  # fmt: skip
    """The order checks of a run over first..last that wrote the days loaded[0]..loaded[1] (late days widen it),
    computed in its transaction before it commits; `broken` are the rule breaks `broken_order_rules` found, and
    `rows_read` the source rows of the days written, counted from the files, which every row in must match."""
    output = _quality_folder(settings)
    docs = settings.quality.data_docs
    days = suites.days(*loaded)
    raw = sample(conn, "raw.orders", *loaded).with_columns(_ts=rules.order_time(pl.col("order_ts")))
    sampled = suites.validate(suites.RAW_ORDERS, raw, output, run_id, days, docs)
    mostly = next(e["mostly"] for e in suites.RAW_ORDERS.expectations if (e["type"], e.get("column")) == READABLE_TIMES)
    failures = [f for f in sampled.failures if (f["expectation"], f["column"]) != READABLE_TIMES]
    if not within_share(tally.unreadable_times, tally.rows_in, 1 - mostly, settings.quality.share_min_rows):
        failures.append({"expectation": READABLE_TIMES[0], "column": READABLE_TIMES[1],
                         "unexpected_count": tally.unreadable_times, "sample": tally.unreadable_sample})  # fmt: skip
    raw_result = SuiteResult(sampled.suite, not failures, tally.rows_in, failures, sampled.result_file)
    shop = rule_values(settings, []) | days  # the days as the GX suite takes them: timestamps, each loaded day
    orders = sample(conn, "staging.orders", *loaded)
    sampled = suites.validate(suites.clean_orders(), orders, output, run_id, shop, docs)
    exact = broken | repeated_order_ids(conn, *loaded)
    failures = [{"expectation": e, "column": c, **found} for (e, c), found in exact.items()]
    failures += [f for f in sampled.failures if (f["expectation"], f["column"]) not in exact]
    clean_result = SuiteResult(
        sampled.suite, not failures, tally.rows_in - tally.refused, failures, sampled.result_file
    )
    mismatched = reconciliation(conn, *loaded)
    share = tally.refused / tally.rows_in if tally.rows_in else 0.0
    quiet = quiet_days(conn, first, last, settings.quality.quiet_day_min_orders)
    unnamed = new_statuses(conn, tally.statuses(), rules.layout.named_statuses())
    warn = dg.AssetCheckSeverity.WARN
    limit = settings.quality.max_rejected_share
    return [
        suite_check(RAW_SUITE, key, raw_result),
        suite_check(CLEAN_SUITE, key, clean_result),
        dg.AssetCheckResult(check_name=RECONCILED, asset_key=key,
                            passed=mismatched.is_empty() and tally.rows_in == rows_read,
                            metadata={"rows_read_from_source": rows_read, "rows_in": tally.rows_in,
                                      "days_checked": (loaded[1] - loaded[0]).days + 1, "days_off": mismatched.height,
                                      "first_days_off": dg.MetadataValue.json(mismatched.head(5).to_dicts())}),
        dg.AssetCheckResult(check_name=REJECTED_SHARE, asset_key=key, severity=warn,
                            passed=within_share(tally.refused, tally.rows_in, limit, settings.quality.share_min_rows),
                            metadata={"rejected_share": round(share, 4), "limit": limit,
                                      "judged_over_rows": max(tally.rows_in, settings.quality.share_min_rows)}),
        dg.AssetCheckResult(check_name=ORDERS_EVERY_DAY, asset_key=key, severity=warn, passed=not quiet,
                            metadata={"days_without_orders": len(quiet),
                                      "first_days": ", ".join(str(d) for d in quiet[:5])}),
        dg.AssetCheckResult(check_name=STATUSES_NAMED, asset_key=key, severity=warn, passed=unnamed.is_empty(),
                            metadata={"new_statuses": ", ".join(f"{s} ({n} order{'s' * (n != 1)}, {t})"
                                                                for s, t, n in unnamed.iter_rows()),
                                      "orders": int(unnamed["orders"].sum()),
                                      "fix": "" if unnamed.is_empty() else "name each in source.completed_statuses, "
                                             "source.open_statuses or source.cancellation.status_in"}),
    ]  # fmt: skip
