"""Orders: a source's rows into `raw.orders`, cleaned into `staging.orders`, `staging.order_lines`
and `staging.rejects`, one day of order (shop-local) per partition."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl

from assets import ORDERS, markdown_table
from assets.orders.cleaning import CleaningRules, CleanOrders, as_raw_text, clean_orders, with_order_dates
from checks.orders import order_check_results, order_check_specs
from pipelines.settings import ShopSettings
from pipelines.sources import OrderSource
from pipelines.sources.exports import MalformedExportError
from pipelines.warehouse import WAREHOUSE_POOL, Warehouse, replace_days

RAW_ORDERS = dg.AssetKey(["raw", "orders"])
STAGING_ORDERS = dg.AssetKey(["staging", "orders"])
ORDER_LINES = dg.AssetKey(["staging", "order_lines"])
REJECTS = dg.AssetKey(["staging", "rejects"])


def order_assets(settings: ShopSettings, partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The ingest step: one read of the source, four tables replaced together per day."""
    specs = [
        dg.AssetSpec(RAW_ORDERS, group_name=ORDERS, description=(
            "Source rows as received (text), with `_source`, `_row`, `_loaded_ts`: "
            "one row per source row, by shop-local day of order.")),
        dg.AssetSpec(STAGING_ORDERS, group_name=ORDERS, deps=[RAW_ORDERS], description=(
            "Clean orders from raw.orders: one row per order (cancellations are rows of their "
            "own, netting revenue), shop-local time.")),
        dg.AssetSpec(ORDER_LINES, group_name=ORDERS, deps=[RAW_ORDERS], description=(
            "Kept source rows from raw.orders: one row per order line (an order row is one line).")),
        dg.AssetSpec(REJECTS, group_name=ORDERS, deps=[RAW_ORDERS], description=(
            "Refused source rows from raw.orders: one row per refused row, with reason, detail "
            "and the values as received.")),
    ]  # fmt: skip

    @dg.multi_asset(
        name="ingest_orders",
        specs=specs,
        check_specs=order_check_specs(RAW_ORDERS, STAGING_ORDERS, REJECTS),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
    )
    def ingest_orders(context: dg.AssetExecutionContext, source: OrderSource, warehouse: Warehouse):
        window = context.partition_time_window
        first, last = window.start.date(), window.end.date() - timedelta(days=1)
        rules = CleaningRules(source.layout, settings.timezone, settings.rules.max_amount, settings.currency)
        context.log.info(f"Reading the source for {first} .. {last}")
        with warehouse.get_connection() as conn:
            try:
                rows_in, clean = ingest_days(source, rules, conn, first, last)
            except MalformedExportError as exc:  # not transient: retrying cannot help
                raise dg.Failure(str(exc), allow_retries=False) from exc
            context.log.info(f"{rows_in} rows in: {clean.lines.height} kept, {clean.rejects.height} refused")
            checks = order_check_results(
                conn, settings, clean, first, last, context.run_id, (RAW_ORDERS, STAGING_ORDERS, REJECTS)
            )
        yield from ingest_results(f"{first} .. {last}", rows_in, clean)
        yield from checks

    return ingest_orders


def ingest_days(source: OrderSource, rules: CleaningRules, conn, first: date, last: date) -> tuple[int, CleanOrders]:
    """Read the source, keep its rows for days first..last, clean them, replace those days."""
    clean = clean_orders(with_order_dates(as_raw_text(source.read()), rules), rules, first, last)
    rows_in = clean.raw.height
    if clean.lines.height + clean.rejects.height != rows_in:  # by construction; never silently
        raise RuntimeError(f"{rows_in} rows in, but {clean.lines.height} kept and {clean.rejects.height} refused")
    raw = clean.raw.drop("_ts").with_columns(_loaded_ts=pl.lit(datetime.now(UTC)))
    tables = {"raw.orders": raw, "staging.orders": clean.orders, "staging.order_lines": clean.lines,
              "staging.rejects": clean.rejects}  # fmt: skip
    replace_days(conn, tables, first, last)
    return rows_in, clean


def ingest_results(window: str, rows_in: int, clean: CleanOrders) -> list[dg.MaterializeResult]:
    """Metadata for the run's whole window (a run over many days repeats it on each day)."""
    orders = clean.orders
    by_reason = dict(clean.rejects.group_by("reason").len().sort("reason").iter_rows())
    reconciliation = f"{rows_in} rows in = {clean.lines.height} kept + {clean.rejects.height} refused"
    return [
        dg.MaterializeResult(asset_key=RAW_ORDERS, metadata={"window": window, "rows": rows_in}),
        dg.MaterializeResult(
            asset_key=STAGING_ORDERS,
            metadata={
                "rows": orders.height,
                "customers": orders["customer_id"].n_unique(),
                "net_revenue": round(float(orders["amount"].sum()), 2),
                "cancelled_or_returned": orders.filter(pl.col("status") == "cancelled").height,
                "preview": dg.MetadataValue.md(markdown_table(orders.head(5))),
            },
        ),
        dg.MaterializeResult(
            asset_key=ORDER_LINES,
            metadata={"rows": clean.lines.height, "reconciliation": reconciliation},
        ),
        dg.MaterializeResult(
            asset_key=REJECTS,
            metadata={
                "rows": clean.rejects.height,
                "rejected_share": round(clean.rejects.height / rows_in, 4) if rows_in else 0.0,
                "by_reason": dg.MetadataValue.json(by_reason),
                "reconciliation": reconciliation,
            },
        ),
    ]
