"""Outreach: who to contact, why, on which channel, with which message. Every list is
partitioned by contact day; opt-outs and the frequency cap apply across all of them."""

from datetime import date, timedelta

import dagster as dg
import polars as pl

from assets import OUTREACH, markdown_table
from assets.customers import CUSTOMER_FACTS, RFM
from assets.customers.snapshot import customer_snapshot
from assets.orders import STAGING_ORDERS
from assets.outreach.care import care_moments
from assets.outreach.reminders import reminders_for_days
from pipelines.settings import ShopSettings
from pipelines.warehouse import WAREHOUSE_POOL, Warehouse, replace_days
from reports.messages import render_message

REPURCHASE_REMINDERS = dg.AssetKey(["outreach", "repurchase_reminders"])
CARE_MESSAGES = dg.AssetKey(["outreach", "care_messages"])


def opt_outs(settings: ShopSettings) -> set[str]:
    """Customer ids never to contact: the settings' list and the opt-out file."""
    ids = set(settings.outreach.opt_out)
    if settings.outreach.opt_out_file:
        ids |= set(pl.read_csv(settings.outreach.opt_out_file, infer_schema=False)["customer_id"].drop_nulls())
    return ids


def contacts_outside(
    conn, first: date, last: date, cap_days: int, exclude_event: str | None = None, reminders_before: date | None = None
) -> pl.DataFrame:
    """Marketing contacts on record from `cap_days` before `first` to `last`, across every list, less
    the rows a step is about to replace (one event's targets, or reminders from a day on). Care
    messages are service, not marketing: they neither count nor are capped."""
    since = first - timedelta(days=cap_days)
    reminders = conn.sql(
        "SELECT customer_id, contact_date FROM outreach.repurchase_reminders WHERE contact_date BETWEEN ? AND ?"
        " AND contact_date < ?", params=[since, last, reminders_before or last + timedelta(days=1)],
    ).pl()  # fmt: skip
    targets = conn.sql(
        "SELECT customer_id, contact_date FROM outreach.campaign_targets WHERE contact_date BETWEEN ? AND ?"
        " AND event_id IS DISTINCT FROM ?", params=[since, last, exclude_event],
    ).pl()  # fmt: skip
    return pl.concat([reminders, targets])


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
                snapshot_on,
                days,
                opt_outs(settings),
                contacts_outside(conn, first, last, cap, reminders_before=first),
                cap,
                settings.name,
                settings.outreach.language,
            )
            replace_days(conn, {"outreach.repurchase_reminders": chosen}, first, last, day_column="contact_date")
        return dg.MaterializeResult(metadata={
            "window": f"{first} .. {last}", "rows": chosen.height,
            "by_class": dg.MetadataValue.json(dict(chosen.group_by("rfm_class").len().sort("rfm_class").iter_rows())),
            "preview": dg.MetadataValue.md(markdown_table(chosen.head(5).drop("message"))),
        })  # fmt: skip

    @dg.asset(
        key=CARE_MESSAGES,
        group_name=OUTREACH,
        deps=[STAGING_ORDERS],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
    )
    def care_messages(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        """Care after an order ships and is delivered, from staging.orders shipping times: one row per order,
        moment and contact day. No promotion; opt-outs apply."""
        window = context.partition_time_window
        first, last = window.start.date(), window.end.date() - timedelta(days=1)
        blocked, language = opt_outs(settings), settings.outreach.language
        with warehouse.get_connection() as conn:
            orders = conn.sql(
                "SELECT * FROM staging.orders WHERE order_date BETWEEN ? AND ?",
                params=[first - timedelta(days=30), last],
            ).pl()
            days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
            moments = pl.concat([care_moments(orders, day) for day in days]).filter(
                ~pl.col("customer_id").is_in(list(blocked))
            )
            messages = [render_message("care", language, row["reason"], shop=settings.name, order_id=row["order_id"])
                        for row in moments.iter_rows(named=True)]  # fmt: skip
            care = moments.with_columns(language=pl.lit(language), message=pl.Series(messages, dtype=pl.String))
            replace_days(conn, {"outreach.care_messages": care}, first, last, day_column="contact_date")
        return dg.MaterializeResult(metadata={
            "window": f"{first} .. {last}", "rows": care.height,
            "by_moment": dg.MetadataValue.json(dict(care.group_by("reason").len().sort("reason").iter_rows())),
        })  # fmt: skip

    return [repurchase_reminders, care_messages]
