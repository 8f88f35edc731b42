"""Checks on the order tables, computed in the ingest step itself (they ride on it as
`check_specs`): the raw and clean order suites and the reconciliation block what comes after;
the rejected share and quiet days only warn."""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from checks import suites
from checks.suites import suite_check
from pipelines.settings import ShopSettings

RAW_SUITE, CLEAN_SUITE = "raw_orders_suite", "clean_orders_suite"
RECONCILED, REJECTED_SHARE, ORDERS_EVERY_DAY = "rows_reconcile", "rejected_share", "orders_every_day"


def order_check_specs(raw: dg.AssetKey, orders: dg.AssetKey, rejects: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(RAW_SUITE, asset=raw, blocking=True,
                          description="raw_orders GX suite: columns and readable times"),
        dg.AssetCheckSpec(CLEAN_SUITE, asset=orders, blocking=True,
                          description="clean_orders GX suite: unique ids, customers, amounts, days, currency"),
        dg.AssetCheckSpec(RECONCILED, asset=rejects, blocking=True,
                          description="per day in the warehouse: rows in = kept + refused"),
        dg.AssetCheckSpec(REJECTED_SHARE, asset=rejects,
                          description="refused rows stay under quality.max_rejected_share"),
        dg.AssetCheckSpec(ORDERS_EVERY_DAY, asset=orders,
                          description="no day without orders when the shop usually has some"),
    ]  # fmt: skip


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
    """Days of first..last without orders, when the 28 days before the window had a median of min_orders or more."""
    daily = conn.sql(
        "SELECT order_date, count(*) n FROM staging.orders WHERE order_date BETWEEN ? AND ? GROUP BY ALL",
        params=[first - timedelta(days=28), last],
    ).pl()
    before = pl.date_range(first - timedelta(days=28), first - timedelta(days=1), eager=True).alias("order_date")
    usual = before.to_frame().join(daily, on="order_date", how="left")["n"].fill_null(0).median() or 0
    if usual < min_orders:
        return []
    days = pl.date_range(first, last, eager=True).alias("order_date").to_frame()
    return days.join(daily, on="order_date", how="anti")["order_date"].to_list()


def order_check_results(
    conn, settings: ShopSettings, clean, first: date, last: date, run_id: str,
    keys: tuple[dg.AssetKey, dg.AssetKey, dg.AssetKey],
) -> list[dg.AssetCheckResult]:  # fmt: skip
    raw_key, orders_key, rejects_key = keys
    output = Path(settings.output) / "quality"
    docs = settings.quality.data_docs
    days = suites.days(first, last)
    raw_result = suites.validate(suites.RAW_ORDERS, clean.raw, output, run_id, days, docs)
    shop = {**days, "max_amount": settings.quality.max_order_amount, "currencies": [settings.currency]}
    clean_result = suites.validate(suites.CLEAN_ORDERS, clean.orders, output, run_id, shop, docs)
    mismatched = reconciliation(conn, first, last)
    rows_in = clean.raw.height
    share = clean.rejects.height / rows_in if rows_in else 0.0
    quiet = quiet_days(conn, first, last, settings.quality.quiet_day_min_orders)
    warn = dg.AssetCheckSeverity.WARN
    return [
        suite_check(RAW_SUITE, raw_key, raw_result),
        suite_check(CLEAN_SUITE, orders_key, clean_result),
        dg.AssetCheckResult(check_name=RECONCILED, asset_key=rejects_key, passed=mismatched.is_empty(),
                            metadata={"days_checked": (last - first).days + 1, "days_off": mismatched.height,
                                      "first_days_off": dg.MetadataValue.json(mismatched.head(5).to_dicts())}),
        dg.AssetCheckResult(check_name=REJECTED_SHARE, asset_key=rejects_key, severity=warn,
                            passed=share <= settings.quality.max_rejected_share,
                            metadata={"rejected_share": round(share, 4), "limit": settings.quality.max_rejected_share}),
        dg.AssetCheckResult(check_name=ORDERS_EVERY_DAY, asset_key=orders_key, severity=warn, passed=not quiet,
                            metadata={"days_without_orders": len(quiet),
                                      "first_days": ", ".join(str(d) for d in quiet[:5])}),
    ]  # fmt: skip
