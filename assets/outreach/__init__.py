"""Outreach: who to contact, why, on which channel, with which message. Every list is
partitioned by contact day; opt-outs and the frequency cap apply across all of them."""

from datetime import date, timedelta

import dagster as dg
import polars as pl

from assets import OUTREACH, markdown_table
from assets.customers import CUSTOMER_FACTS, RFM
from assets.customers.snapshot import customer_snapshot
from assets.outreach.reminders import reminders_for_days
from pipelines.settings import ShopSettings
from pipelines.warehouse import WAREHOUSE_POOL, Warehouse, replace_days

REPURCHASE_REMINDERS = dg.AssetKey(["outreach", "repurchase_reminders"])
CONTACT_TABLES = ("outreach.repurchase_reminders",)


def opt_outs(settings: ShopSettings) -> set[str]:
    """Customer ids never to contact: the settings' list and the opt-out file."""
    ids = set(settings.outreach.opt_out)
    if settings.outreach.opt_out_file:
        ids |= set(pl.read_csv(settings.outreach.opt_out_file, infer_schema=False)["customer_id"].drop_nulls())
    return ids


def contacts_outside(conn, first: date, last: date, cap_days: int) -> pl.DataFrame:
    """Contacts on record within the cap before `first`, from every outreach list (this window excluded)."""
    union = " UNION ALL ".join(f"SELECT customer_id, contact_date FROM {t}" for t in CONTACT_TABLES)
    return conn.sql(
        f"SELECT * FROM ({union}) WHERE contact_date >= ? AND contact_date < ?",
        params=[first - timedelta(days=cap_days), first],
    ).pl()


def outreach_assets(settings: ShopSettings, partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=REPURCHASE_REMINDERS,
        group_name=OUTREACH,
        deps=[CUSTOMER_FACTS, RFM],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
    )
    def repurchase_reminders(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        """Customers whose due window opened that day, from staging.orders as of each day: one row per
        customer and contact day, with class, channel and a message from the class's template."""
        window = context.partition_time_window
        first, last = window.start.date(), window.end.date() - timedelta(days=1)
        cap = settings.outreach.frequency_cap_days
        with warehouse.get_connection() as conn:
            orders = conn.sql("SELECT * FROM staging.orders WHERE order_date <= ?", params=[last]).pl()

            def snapshot_on(day: date):
                snapshot = customer_snapshot(orders, day, settings)
                return snapshot.facts, snapshot.rfm

            days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
            chosen = reminders_for_days(
                snapshot_on, days, opt_outs(settings), contacts_outside(conn, first, last, cap), cap,
                settings.name, settings.outreach.language,
            )  # fmt: skip
            replace_days(conn, {"outreach.repurchase_reminders": chosen}, first, last, day_column="contact_date")
        return dg.MaterializeResult(metadata={
            "window": f"{first} .. {last}", "rows": chosen.height,
            "by_class": dg.MetadataValue.json(dict(chosen.group_by("rfm_class").len().sort("rfm_class").iter_rows())),
            "preview": dg.MetadataValue.md(markdown_table(chosen.head(5).drop("message"))),
        })  # fmt: skip

    return [repurchase_reminders]
