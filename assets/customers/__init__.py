"""Customers: facts, RFM classes and lifecycle as of a date (`core.*`), their history, and the
shop analysis (`analysis.*`). Unpartitioned: each materialization is the latest snapshot."""

from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
import duckdb
import polars as pl

from assets import CUSTOMERS, column_schemas, markdown_table
from assets.customers import analysis
from assets.customers.bucket_assets import bucket_assets
from assets.customers.facts import KEPT_COLUMNS, ORDER_COLUMNS, needed_columns
from assets.customers.history import empty_history, history_pieces, rebuild
from assets.customers.products import items_of, product_roles
from assets.customers.snapshot import Snapshot, customer_snapshot, next_day_snapshot
from assets.customers.stored import stored_table, write_snapshot
from assets.customers.tiers import tier_history
from assets.customers.value import HIGH_VALUE_AT_RISK, fit_on, latest_fit, with_value_tags
from assets.orders import STAGING_ORDERS
from checks.customers import customer_check_results, customer_check_specs
from checks.tiers import tier_check_results, tier_check_specs
from pipelines.recovery import record_process
from pipelines.settings import ShopSettings
from pipelines.warehouse import COMPLETED, Warehouse, read_table, replace_tables

CUSTOMER_FACTS = dg.AssetKey(["core", "customer_facts"])
RFM = dg.AssetKey(["core", "rfm"])
SEGMENT_HISTORY = dg.AssetKey(["core", "segment_history"])
HISTORY_KEYS = ("customer_id", "valid_from")  # a customer's stretches start on different days
TIER_HISTORY = dg.AssetKey(["core", "tier_history"])
ANALYSIS = {
    "repeat_purchase": "Repeat-purchase rate, from core.customer_facts: one row.",
    "value_tiers": (
        "Revenue share and repeat rate by order-value tier, from core.customer_facts and core.rfm: one row per tier."
    ),
    "top_customers": "Revenue share of the top 20% of customers, from core.customer_facts: one row.",
    "class_mix": "Class sizes and revenue shares, from core.rfm: one row per class.",
    "category_cycles": "Typical purchase cycle by main category, from core.customer_facts: one row per category.",
    "product_roles": (
        "The role each product (or category, where the export has no products) plays: traffic, profit, potential "
        "or marginal, from staging.orders and staging.order_lines: one row per product."
    ),
    "never_completed": (
        "Customers whose every order is cancelled or still open (in no other table), from staging.orders: "
        "one row per customer."
    ),
}  # fmt: skip


class SnapshotConfig(dg.Config):
    as_of: str | None = None  # YYYY-MM-DD; default: the last day with orders in the warehouse
    history_since: str | None = None  # rebuild history from this day; default: after the last snapshot


def customer_assets(settings: ShopSettings) -> list[dg.AssetsDefinition]:
    key, warehouse = settings.key, Warehouse(database=str(settings.warehouse))
    specs = [
        dg.AssetSpec(key(CUSTOMER_FACTS), group_name=CUSTOMERS, deps=[key(STAGING_ORDERS)],
                     description="Customer facts from staging.orders: one row per customer as of the run's date."),
        dg.AssetSpec(key(RFM), group_name=CUSTOMERS, deps=[key(STAGING_ORDERS)],
                     description="RFM scores, class, group, lifecycle stage and tags from staging.orders (the "
                                 "high_value_at_risk tag by the latest fit in core.model_fits): one row per customer "
                                 "as of the run's date."),
        dg.AssetSpec(key(SEGMENT_HISTORY), group_name=CUSTOMERS, deps=[key(STAGING_ORDERS)],
                     description="Class and lifecycle stretches, day by day from staging.orders: one row per customer "
                                 "and stretch of time in one class and stage (valid_to exclusive)."),
    ]  # fmt: skip

    @dg.multi_asset(
        name=f"{settings.id}__customer_snapshot",
        specs=specs,
        check_specs=customer_check_specs(key(CUSTOMER_FACTS), key(RFM)),
        pool=settings.pool,
    )
    def customer_snapshot_asset(context: dg.AssetExecutionContext, config: SnapshotConfig):
        record_process(context)
        with warehouse.get_connection() as conn:
            first_day, last_day = conn.execute(
                "SELECT min(order_date), max(order_date) FROM staging.orders"
            ).fetchall()[0]
            history = read_table(conn, "core.segment_history")
            previous = previous_facts(conn)
            previous_rfm = read_table(conn, "core.rfm", columns=("rfm_class",))  # what the class-shift check reads
            if last_day is None:
                raise dg.Failure("staging.orders is empty: ingest orders before building customers")
            as_of = date.fromisoformat(config.as_of) if config.as_of else last_day
            since = _history_since(config, previous, history, first_day, as_of)
            context.log.info(f"Customers as of {as_of}; history from {since}")
            history = history if history is not None else empty_history()
            reloaded = reloaded_customers(conn, previous)
            if since == as_of and facts_still_hold(conn, previous, as_of, settings, reloaded):
                context.log.info(
                    f"Customers as of {as_of} from the facts of {previous.as_of}"
                    + (f", {reloaded.height} customers of reloaded days computed again" if reloaded.height else "")
                )
                snapshot = snapshot_after(conn, previous.as_of, as_of, settings, reloaded)
            else:
                orders = read_orders(conn, as_of)
                snapshot = customer_snapshot(orders, as_of, settings)
                if since < as_of:  # written a piece of customers at a time, never whole in memory
                    step = settings.lifecycle.history_step_days
                    history = history_pieces(history, orders, since, as_of, settings, step)
                del orders  # the history's pieces hold them only until they are keyed
            # the tag from the models: the latest fit on or before the day (the value step fits after this one),
            # else (a shop's first run) the fit of these facts that the value step is about to record
            fit = latest_fit(read_table(conn, "core.model_fits"), as_of) or fit_on(snapshot.facts, settings.value)
            snapshot = Snapshot(snapshot.facts, with_value_tags(snapshot.facts, snapshot.rfm, fit, settings.value))
            if since == as_of:
                state = snapshot.rfm.select("customer_id", "rfm_class", "stage", "expected_next_date")
                history = rebuild(history, lambda _: state, as_of, as_of)
            written = write_snapshot(conn, snapshot, {"core.segment_history": (history, HISTORY_KEYS)})
            conn.execute("DELETE FROM raw.reloads WHERE order_date <= ?", [as_of])  # taken in
            buyers = conn.execute(
                "SELECT count(DISTINCT customer_id) FROM staging.orders WHERE order_date > ? AND order_date <= ?",
                [previous.as_of if previous is not None else date.min, as_of],
            ).fetchall()[0][0]
            context.log.info(f"Rows written: {written}; customers who ordered since the last snapshot: {buyers}")
            history_rows = conn.sql("SELECT count(*) FROM core.segment_history").fetchall()[0][0]
            schemas = column_schemas(conn, "core.customer_facts", "core.rfm", "core.segment_history")
        rfm = snapshot.rfm
        yield dg.MaterializeResult(
            asset_key=key(CUSTOMER_FACTS),
            metadata={
                "as_of": str(as_of),
                "dagster/row_count": snapshot.facts.height,
                "rows_written": written[stored_table("core.customer_facts")],
                "dagster/column_schema": schemas["core.customer_facts"],
                "buyers_since_last_snapshot": buyers,
                "repeat_rate": round(float((snapshot.facts["purchase_days"] >= 2).mean() or 0), 4),
            },
        )
        yield dg.MaterializeResult(
            asset_key=key(RFM),
            metadata={
                "as_of": str(as_of),
                "dagster/row_count": rfm.height,
                "rows_written": written[stored_table("core.rfm")],
                "dagster/column_schema": schemas["core.rfm"],
                "classes": dg.MetadataValue.json(dict(rfm.group_by("rfm_class").len().sort("rfm_class").iter_rows())),
                "stages": dg.MetadataValue.json(dict(rfm.group_by("stage").len().sort("stage").iter_rows())),
                "high_value_at_risk": int(rfm["tags"].str.contains(HIGH_VALUE_AT_RISK, literal=True).sum()),
                "high_value_at_risk_fit_date": str(fit["fit_date"]) if fit else "no fit yet",
            },
        )
        yield dg.MaterializeResult(asset_key=key(SEGMENT_HISTORY), metadata={
            "rebuilt_from": str(since), "dagster/row_count": history_rows,
            "dagster/column_schema": schemas["core.segment_history"],
            "rows_written": written["core.segment_history"]})  # fmt: skip
        yield from customer_check_results(
            settings, snapshot.facts, rfm, previous_rfm, context.run_id, (key(CUSTOMER_FACTS), key(RFM))
        )

    analysis_specs = [
        dg.AssetSpec(
            key(dg.AssetKey(["analysis", name])),
            group_name=CUSTOMERS,
            description=text,
            deps=[key(STAGING_ORDERS)]
            if name in ("never_completed", "product_roles")
            else [key(CUSTOMER_FACTS), key(RFM)],
        )
        for name, text in ANALYSIS.items()
    ]

    @dg.multi_asset(name=f"{settings.id}__shop_analysis", specs=analysis_specs, pool=settings.pool)
    def shop_analysis(context: dg.AssetExecutionContext):
        record_process(context)
        with warehouse.get_connection() as conn:
            facts = conn.sql("SELECT * FROM core.customer_facts").pl()
            rfm = conn.sql("SELECT * FROM core.rfm").pl()
            by_status = conn.sql(
                "SELECT customer_id, status, count(*) AS orders, min(order_date) AS first_order_date,"
                " max(order_date) AS last_order_date FROM staging.orders GROUP BY ALL"
            ).pl()
            completed = conn.sql(
                "SELECT order_id, customer_id, order_date, category FROM staging.orders WHERE status = ?",
                params=[COMPLETED],
            ).pl()
            lines = conn.sql("SELECT order_id, sku, product, category FROM staging.order_lines").pl()
            kind, items = items_of(lines, completed)
            roles = product_roles(completed, items, facts["as_of_date"].max())
            tables = {
                "never_completed": analysis.never_completed(by_status),
                "product_roles": roles.join(
                    items.select("item", "name").unique("item"), on="item", how="left"
                ).with_columns(kind=pl.lit(kind)),
                "repeat_purchase": analysis.repeat_purchase(facts),
                "value_tiers": analysis.value_tiers(facts, rfm),
                "top_customers": analysis.top_customers(facts),
                "class_mix": analysis.class_mix(facts, rfm),
                "category_cycles": analysis.category_cycles(facts),
            }
            replace_tables(conn, {f"analysis.{name}": frame for name, frame in tables.items()})
        for name, frame in tables.items():
            yield dg.MaterializeResult(
                asset_key=key(dg.AssetKey(["analysis", name])),
                metadata={"dagster/row_count": frame.height, "table": dg.MetadataValue.md(markdown_table(frame))},
            )

    @dg.asset(
        key=key(TIER_HISTORY), group_name=CUSTOMERS, deps=[key(STAGING_ORDERS), key(CUSTOMER_FACTS)],
        check_specs=tier_check_specs(key(TIER_HISTORY)), pool=settings.pool,
        description="Member tiers day by day from staging.orders (the settings' tiers; empty without them), up to "
                    "core.customer_facts' day: one row per customer and stretch of time in one tier and grace "
                    "period (valid_to exclusive).",
    )  # fmt: skip
    def member_tiers(context: dg.AssetExecutionContext):
        record_process(context)
        with warehouse.get_connection() as conn:
            as_of = conn.execute("SELECT max(as_of_date) FROM core.customer_facts").fetchall()[0][0]
            # the whole history every run: a changed ladder or a reloaded day changes every day after it (without
            # tiers, nothing: the orders are not read)
            orders = read_orders(conn, as_of) if settings.tiers else read_orders(conn, as_of, after=as_of)
            history = tier_history(orders, as_of, settings)
            replace_tables(conn, {"core.tier_history": history})
            schema = column_schemas(conn, "core.tier_history")["core.tier_history"]
        current = history.filter(pl.col("valid_to").is_null())
        yield dg.MaterializeResult(metadata={
            "as_of": str(as_of), "dagster/row_count": history.height, "dagster/column_schema": schema,
            "members": dg.MetadataValue.json(dict(current.group_by("tier").len().sort("tier").rows())),
            "in_grace": int(current["grace_from"].is_not_null().sum()),
        })  # fmt: skip
        yield from tier_check_results(history, settings.tiers, key(TIER_HISTORY))

    buckets = bucket_assets(settings) if settings.buckets > 1 else []
    return [customer_snapshot_asset, shop_analysis, member_tiers, *buckets]


def read_orders(
    conn: duckdb.DuckDBPyConnection, until: date, customers: pl.DataFrame | None = None, after: date | None = None
) -> pl.DataFrame:
    """The columns of staging.orders the customer step reads, up to `until` (after `after`; of `customers` only),
    fetched in Arrow batches that are made compact (`facts.needed_columns`) one at a time, so that memory follows
    the compact rows, not the table's text."""
    where, params = ["order_date <= ?"], [until]
    if after is not None:
        where, params = [*where, "order_date > ?"], [*params, after]
    if customers is not None:
        conn.register("customers", customers.to_arrow())
        where.append("customer_id IN (SELECT customer_id FROM customers)")
    query = f"SELECT {', '.join(ORDER_COLUMNS)} FROM staging.orders WHERE {' AND '.join(where)}"
    batches = conn.sql(query, params=params).to_arrow_reader(1_000_000)
    frames = [needed_columns(pl.from_arrow(batch)).collect() for batch in batches]
    if customers is not None:
        conn.unregister("customers")
    return pl.concat(frames) if frames else needed_columns(pl.from_arrow(batches.schema.empty_table())).collect()


def snapshot_after(
    conn: duckdb.DuckDBPyConnection,
    previous_day: date,
    as_of: date,
    settings: ShopSettings,
    reloaded: pl.DataFrame | None = None,
) -> Snapshot:
    """The snapshot as of `as_of` from core.customer_facts (as of `previous_day`) and the orders placed since
    (`next_day_snapshot`): the facts of the customers who ordered since, and of the `reloaded` customers (whose
    earlier orders were replaced), are computed again, left out of the facts as these are read."""
    buyers = read_orders(conn, as_of, after=previous_day).select(pl.col("customer_id").unique())
    if reloaded is not None:
        buyers = pl.concat([buyers, reloaded]).unique()
    conn.register("buyers", buyers.to_arrow())
    kept = ", ".join(KEPT_COLUMNS)  # the rest are derived again: reading them costs more
    others = conn.sql(f"SELECT {kept} FROM core.customer_facts ANTI JOIN buyers USING (customer_id)").pl()
    conn.unregister("buyers")
    return next_day_snapshot(others, read_orders(conn, as_of, buyers), as_of, settings)


@dataclass(frozen=True)
class PreviousFacts:
    """What a run needs to know of the last snapshot's facts (core.customer_facts): its day and totals."""

    as_of: date
    orders: int
    items: int


def previous_facts(conn: duckdb.DuckDBPyConnection) -> PreviousFacts | None:
    """The day and totals of core.customer_facts, or None before the first snapshot."""
    totals = read_table(conn, "core.customer_facts", columns=("max(as_of_date)", "sum(orders)", "sum(items)"))
    return None if totals is None or totals.item(0, 0) is None else PreviousFacts(*totals.row(0))


def current_snapshot_day(conn: duckdb.DuckDBPyConnection) -> date | None:
    """The day of core.customer_facts and core.rfm where they were made from staging.orders as it is now (no reload
    waiting to be taken in, completed orders and items adding up to the facts' totals), else None."""
    previous = previous_facts(conn)
    if previous is None:
        return None
    waiting = conn.execute("SELECT count(*) FROM raw.reloads WHERE order_date <= ?", [previous.as_of]).fetchall()
    held = _completed_totals(conn, previous.as_of) == (previous.orders, previous.items)
    return previous.as_of if held and not waiting[0][0] else None


def reloaded_customers(conn: duckdb.DuckDBPyConnection, previous: PreviousFacts | None) -> pl.DataFrame:
    """`customer_id` of the customers with orders, before or after the reload, on a day that an ingest replaced
    since the previous snapshot and that the snapshot's facts were computed from (raw.reloads)."""
    as_of = previous.as_of if previous is not None else date.min
    return conn.sql(
        """WITH days AS (SELECT DISTINCT order_date FROM raw.reloads WHERE order_date <= $as_of)
           SELECT customer_id FROM raw.reloads WHERE order_date <= $as_of AND customer_id IS NOT NULL
           UNION SELECT customer_id FROM staging.orders
           WHERE order_date <= $as_of AND order_date IN (SELECT order_date FROM days)""",
        params={"as_of": as_of},
    ).pl()


def facts_still_hold(
    conn: duckdb.DuckDBPyConnection,
    previous: PreviousFacts | None,
    as_of: date,
    settings,
    reloaded: pl.DataFrame | None = None,
) -> bool:
    """Whether the day's snapshot can start from the previous one's facts: they are from an earlier day, RFM has
    no sliding window, and, the `reloaded` customers aside (computed again), the orders up to their day are still
    the ones they were computed from (completed orders and items add up: what a warehouse made before raw.reloads
    recorded reloads needs)."""
    if previous is None or previous.as_of >= as_of or settings.rfm.lookback_days:
        return False
    if reloaded is None or reloaded.is_empty():
        return _completed_totals(conn, previous.as_of) == (previous.orders, previous.items)
    conn.register("reloaded", reloaded.to_arrow())
    others = "customer_id NOT IN (SELECT customer_id FROM reloaded)"
    facts = conn.execute(f"SELECT sum(orders), sum(items) FROM core.customer_facts WHERE {others}").fetchall()[0]
    held = _completed_totals(conn, previous.as_of, others)
    conn.unregister("reloaded")
    return held == tuple(int(total or 0) for total in facts)


def _completed_totals(conn: duckdb.DuckDBPyConnection, until: date, where: str = "true") -> tuple[int, int]:
    """Completed orders and their items in staging.orders up to a day (of the customers `where` selects)."""
    return conn.execute(
        f"SELECT count(*), coalesce(sum(items), 0) FROM staging.orders WHERE order_date <= ? AND status = ? "
        f"AND {where}",
        [until, COMPLETED],
    ).fetchall()[0]


def _history_since(
    config: SnapshotConfig, previous: PreviousFacts | None, history, first_day: date, as_of: date
) -> date:
    """Where history needs recomputing: as asked, else right after the last snapshot, else from the first order."""
    if config.history_since:
        return date.fromisoformat(config.history_since)
    if history is not None and previous is not None:
        return min(previous.as_of + timedelta(days=1), as_of) if previous.as_of < as_of else as_of
    return first_day
