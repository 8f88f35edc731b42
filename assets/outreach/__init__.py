"""Outreach: who to contact, why, on which channel, with which message. Every list is
partitioned by contact day; opt-outs and the frequency cap apply across all of them."""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from assets import OUTREACH, REPORTS, markdown_table
from assets.customers import CUSTOMER_FACTS, RFM, TIER_HISTORY, current_snapshot_day
from assets.customers.snapshot import daily_snapshots
from assets.customers.value import latest_fit
from assets.customers.value_assets import MODEL_FITS
from assets.orders import ORDER_LINES, STAGING_ORDERS
from assets.outreach.audiences import customer_table, daily_lists, list_rows
from assets.outreach.care import care_moments
from assets.outreach.gate import OptOuts, opt_outs_on_record, rules_on_record
from assets.outreach.offers import roles_with_categories, with_offers
from assets.outreach.outbox import write_list
from assets.outreach.reminders import in_risk_bands, reachable, reminders_for_days
from assets.outreach.uplift import list_results
from pipelines.privacy import mask
from pipelines.recovery import record_process
from pipelines.settings import ShopSettings
from pipelines.warehouse import (
    COMPLETED,
    Warehouse,
    loaded_until,
    read_table,
    replace_days,
    replace_tables,
    transaction,
    write_day_range,
)
from reports.messages import category_name, render_message, spoken_discount

REPURCHASE_REMINDERS = dg.AssetKey(["outreach", "repurchase_reminders"])
CARE_MESSAGES = dg.AssetKey(["outreach", "care_messages"])
LIST_RESULTS = dg.AssetKey(["outreach", "list_results"])
CAMPAIGN_TARGETS = dg.AssetKey(["outreach", "campaign_targets"])
AUDIENCE_LISTS = dg.AssetKey(["outreach", "audience_lists"])


def opted_out(opt_outs: OptOuts) -> pl.Expr:
    """Whether a row's `customer_id` is opted out, in whatever spelling the opt-out names them (see
    `assets.outreach.gate.match_opt_outs`)."""
    return pl.col("customer_id").is_in(list(opt_outs.customers))


def unmatched_opt_outs(context, opt_outs: OptOuts) -> dict:
    """Warn of every opt-out line that names no customer (a typo, or someone not in the data yet), masked as run
    metadata masks ids; the asset's metadata lists them, and `regulars run` shows them in its summary."""
    unmatched = ", ".join(mask(line) for line in opt_outs.unmatched)
    if unmatched:
        context.log.warning(f"{len(opt_outs.unmatched)} opt-out lines name no customer: {unmatched}")
    return {"opt_outs_matching_nobody": dg.MetadataValue.text(unmatched)}


def due_in_snapshot(conn, day: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """core.customer_facts and core.rfm (as of `day`) of the customers whose due window opens that day
    (`reminders.due_today`)."""
    rfm = conn.sql("SELECT * FROM core.rfm WHERE stage = 'due' AND due_date = ?", params=[day]).pl()
    conn.register("due", rfm.select("customer_id").to_arrow())
    facts = conn.sql("SELECT * FROM core.customer_facts SEMI JOIN due USING (customer_id)").pl()
    conn.unregister("due")
    return facts, rfm


def reminder_contacts(
    conn, first: date, last: date, cap_days: int, replacing: tuple[date, date] | None = None, yields: bool = False
) -> pl.DataFrame:
    """Repurchase reminders on record less than `cap_days` from first..last, less the days being replaced;
    `yields`: they give way to the list asking (see `reachable`)."""
    skip = replacing or (last + timedelta(days=1), last)
    return conn.sql(
        "SELECT customer_id, contact_date, ? AS yields FROM outreach.repurchase_reminders"
        " WHERE contact_date BETWEEN ? AND ? AND contact_date NOT BETWEEN ? AND ?",
        params=[yields, first - timedelta(days=cap_days - 1), last + timedelta(days=cap_days - 1), *skip],
    ).pl()


def campaign_contacts(
    conn, first: date, last: date, cap_days: int, exclude_event: str | None = None, yields: bool = False
) -> pl.DataFrame:
    """Campaign targets on record less than `cap_days` from first..last, less one event's (being replaced);
    `yields`: they give way to the list asking (see `reachable`)."""
    return conn.sql(
        "SELECT customer_id, contact_date, ? AS yields FROM outreach.campaign_targets"
        " WHERE contact_date BETWEEN ? AND ? AND event_id IS DISTINCT FROM ?",
        params=[yields, first - timedelta(days=cap_days - 1), last + timedelta(days=cap_days - 1), exclude_event],
    ).pl()


def audience_contacts(conn, first: date, last: date, cap_days: int, yields: bool = False) -> pl.DataFrame:
    """The shop's own audience lists on record less than `cap_days` from first..last; `yields`: they give way to
    the list asking (see `reachable`)."""
    return conn.sql(
        "SELECT customer_id, contact_date, ? AS yields FROM outreach.audience_lists WHERE contact_date BETWEEN ? AND ?",
        params=[yields, first - timedelta(days=cap_days - 1), last + timedelta(days=cap_days - 1)],
    ).pl()


def contacts_on_record(conn, except_event: str | None = None, except_day: date | None = None) -> pl.DataFrame:
    """customer_id, contact_date of every marketing contact on record (held-out customers too), less one event's
    lists and one day's audience lists (those being made again)."""
    return conn.sql(
        """SELECT customer_id, contact_date FROM outreach.repurchase_reminders
           UNION ALL SELECT customer_id, contact_date FROM outreach.campaign_targets
                     WHERE event_id IS DISTINCT FROM $event
           UNION ALL SELECT customer_id, contact_date FROM outreach.audience_lists
                     WHERE contact_date IS DISTINCT FROM $day""",
        params={"event": except_event, "day": except_day},
    ).pl()


def withdraw(conn, table: str, winners: pl.DataFrame, cap_days: int) -> pl.DataFrame:
    """Delete from `table` (another list) the contacts of a customer on the day of one of `winners`
    (customer_id, contact_date) or less than `cap_days` after it: the list the settings give priority keeps
    the customer. An earlier contact went out already and stands (the winner left that customer out).
    Returns the rows deleted."""
    conn.register("winners", winners.select("customer_id", "contact_date").to_arrow())
    withdrawn = conn.sql(
        f"DELETE FROM {table} AS other WHERE EXISTS (SELECT 1 FROM winners WHERE winners.customer_id = "
        "other.customer_id AND date_diff('day', winners.contact_date, other.contact_date) BETWEEN 0 AND ? - 1)"
        " RETURNING *",
        params=[cap_days],
    ).pl()
    conn.unregister("winners")
    return withdrawn


def write_outbox(
    conn, settings: ShopSettings, event_id: str, targets: pl.DataFrame, opt_outs: OptOuts | None = None
) -> Path:
    """An event's target lists as CSV and Parquet, for whoever sends the messages: held-out customers left out,
    through the gate (`opt_outs`: see `rules_on_record`)."""
    path = settings.output / "outbox" / event_id / "targets.csv"
    contacted = targets.filter(~pl.col("held_out").fill_null(False)).drop("held_out")  # null: before control groups
    rules = rules_on_record(conn, settings, contacted["contact_date"], opt_outs)
    write_list(contacted, rules, path, "contact_date", settings.outreach.language, parquet=True,
               audiences=settings.audience_labels)  # fmt: skip
    return path.parent


def write_reminder_outbox(
    conn, settings: ShopSettings, first: date, last: date, opt_outs: OptOuts | None = None
) -> None:
    """Each day's repurchase reminders of first..last, with their messages, as `outbox/reminders/reminders-<day>.csv`
    (held-out customers left out, through the gate; `opt_outs`: see `rules_on_record`); a day without reminders
    gets a list without rows."""
    reminders = conn.sql(
        "SELECT contact_date, customer_id, rfm_class, stage, expected_next_date, channel, reason, message"
        " FROM outreach.repurchase_reminders WHERE contact_date BETWEEN ? AND ? AND NOT coalesce(held_out, false)",
        params=[first, last],
    ).pl()
    rules = rules_on_record(conn, settings, pl.Series([first, last]), opt_outs)
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        path = settings.output / "outbox" / "reminders" / f"reminders-{day}.csv"
        write_list(reminders.filter(pl.col("contact_date") == day), rules, path, "contact_date",
                   settings.outreach.language)  # fmt: skip


AUDIENCE_TABLE = "outreach.audience_lists"


def audience_message(row: dict, settings: ShopSettings) -> str:
    """A daily audience list's message, from the row's offer (`offer_kind`, `offer_discount`) and `main_category`."""
    language = settings.outreach.language
    return render_message(
        "audience", language, row["offer_kind"], shop=settings.name,
        category=category_name(row["main_category"], language, settings.outreach.category_names),
        discount=spoken_discount(row["offer_discount"], language),
    )  # fmt: skip


def write_audience_outbox(conn, settings: ShopSettings, rows: pl.DataFrame, day: date, opt_outs: OptOuts) -> int:
    """A day's list of each daily audience as `outbox/audiences/<audience>/<audience>-<day>.csv` (held-out customers
    left out, through the gate); an audience without members that day gets a list without rows. Returns the rows
    written."""
    contacted = rows.filter(~pl.col("held_out")).drop("held_out")
    rules = rules_on_record(conn, settings, pl.Series([day]), opt_outs)
    written = 0
    for name, audience in settings.audiences.items():
        if audience.daily:
            path = settings.output / "outbox" / "audiences" / name / f"{name}-{day}.csv"
            written += write_list(contacted.filter(pl.col("audience") == name), rules, path, "contact_date",
                                  settings.outreach.language, audiences=settings.audience_labels).height  # fmt: skip
    return written


def list_days(window: dg.TimeWindow, settings: ShopSettings) -> tuple[date, date]:
    """The days a run makes lists for: its partitions' days, the last `outreach.lists_for_last_days` of them."""
    last = window.end.date() - timedelta(days=1)
    return max(window.start.date(), last - timedelta(days=settings.outreach.lists_for_last_days - 1)), last


def outreach_assets(settings: ShopSettings, partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    key, warehouse = settings.key, Warehouse(database=str(settings.warehouse))

    @dg.asset(
        key=key(REPURCHASE_REMINDERS),
        group_name=OUTREACH,
        deps=[key(STAGING_ORDERS), key(CUSTOMER_FACTS), key(RFM), key(MODEL_FITS), key(TIER_HISTORY)],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=settings.pool,
    )
    def repurchase_reminders(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Customers whose due window opened that day, from staging.orders as of each day (its own snapshot of
        facts and classes, not core.rfm's latest; a run of the one day that core.customer_facts and core.rfm hold,
        made from the orders as they are, reads that day's due customers from them), core.model_fits (risk
        bands) and core.tier_history (the member tier a message names): one row per customer and contact day,
        with class, channel and a message from the class's template. Campaign lists on record count toward the
        frequency cap; that dependency is not drawn, as the lists count reminders the same way."""
        record_process(context)
        first, last = list_days(context.partition_time_window, settings)
        cap, campaign_first = settings.outreach.frequency_cap_days, settings.outreach.cap_priority == "campaign"
        with warehouse.get_connection() as conn:
            fits = read_table(conn, "core.model_fits")
            opt_outs = opt_outs_on_record(conn, settings)
            days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
            scored = []  # the customers each day's list was chosen from
            if days == [current_snapshot_day(conn)]:
                # a daily run: the day's snapshot is in core.*, and only the customers due that day are read
                def snapshot_on(day: date):
                    facts, rfm = due_in_snapshot(conn, day)
                    scored.append(rfm.height)
                    return facts, in_risk_bands(facts, rfm, fits, day, settings.value.remind_risk_bands, settings.value)
            else:
                orders = conn.sql("SELECT * FROM staging.orders WHERE order_date <= ?", params=[last]).pl()
                rolling = zip(days, daily_snapshots(orders, days, settings), strict=True)  # one at a time, in order

                def snapshot_on(day: date):
                    made_for, snapshot = next(rolling)
                    if made_for != day:
                        raise RuntimeError(f"reminders asked for {day} out of order (the next snapshot is {made_for})")
                    scored.append(snapshot.rfm.height)
                    return snapshot.facts, in_risk_bands(
                        snapshot.facts, snapshot.rfm, fits, day, settings.value.remind_risk_bands, settings.value
                    )

            others = pl.concat([reminder_contacts(conn, first, last, cap, replacing=(first, last)),
                                campaign_contacts(conn, first, last, cap, yields=not campaign_first),
                                # a day's audience lists are made after its reminders, from what they left
                                audience_contacts(conn, first, last, cap, yields=True)])  # fmt: skip
            chosen = reminders_for_days(snapshot_on, days, opted_out(opt_outs), others, cap, settings.name,
                                        settings.outreach.language, settings.outreach.control,
                                        settings.outreach.category_names, read_table(conn, "core.tier_history"),
                                        settings.tiers)  # fmt: skip
            withdrawn = pl.DataFrame(schema={"event_id": pl.String})
            with transaction(conn):
                write_day_range(conn, {"outreach.repurchase_reminders": chosen}, first, last, "contact_date")
                if not campaign_first:
                    withdrawn = withdraw(conn, "outreach.campaign_targets", chosen, cap)
            write_reminder_outbox(conn, settings, first, last, opt_outs)
            for event_id in withdrawn["event_id"].unique():  # the outbox follows its table
                targets = conn.sql("SELECT * FROM outreach.campaign_targets WHERE event_id = ?", params=[event_id])
                write_outbox(conn, settings, event_id, targets.pl(), opt_outs)
        return dg.MaterializeResult(metadata={
            **unmatched_opt_outs(context, opt_outs),
            "window": f"{first} .. {last}", "rows": chosen.height, "held_out": int(chosen["held_out"].sum()),
            "customers_read": sum(scored),
            "campaign_targets_withdrawn": withdrawn.height,
            "by_class": dg.MetadataValue.json(dict(chosen.group_by("rfm_class").len().sort("rfm_class").iter_rows())),
            "preview": dg.MetadataValue.md(markdown_table(chosen.head(5).drop("message"))),
        })  # fmt: skip

    @dg.asset(
        key=key(CARE_MESSAGES),
        group_name=OUTREACH,
        deps=[key(STAGING_ORDERS)],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=settings.pool,
    )
    def care_messages(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Care after an order ships and is delivered, from staging.orders shipping times: one row per order,
        moment and contact day. No promotion; opt-outs apply."""
        record_process(context)
        first, last = list_days(context.partition_time_window, settings)
        language = settings.outreach.language
        with warehouse.get_connection() as conn:
            orders = conn.sql(
                "SELECT * FROM staging.orders WHERE order_date BETWEEN ? AND ?",
                params=[first - timedelta(days=30), last],
            ).pl()
            days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
            opt_outs = opt_outs_on_record(conn, settings)
            moments = pl.concat([care_moments(orders, day) for day in days]).filter(~opted_out(opt_outs))
            messages = [render_message("care", language, row["reason"], shop=settings.name, order_id=row["order_id"])
                        for row in moments.iter_rows(named=True)]  # fmt: skip
            care = moments.with_columns(language=pl.lit(language), message=pl.Series(messages, dtype=pl.String))
            replace_days(conn, {"outreach.care_messages": care}, first, last, day_column="contact_date")
        return dg.MaterializeResult(metadata={
            **unmatched_opt_outs(context, opt_outs), "window": f"{first} .. {last}", "rows": care.height,
            "by_moment": dg.MetadataValue.json(dict(care.group_by("reason").len().sort("reason").iter_rows())),
        })  # fmt: skip

    @dg.asset(
        key=key(AUDIENCE_LISTS),
        group_name=OUTREACH,
        deps=[key(CUSTOMER_FACTS), key(RFM), key(MODEL_FITS), key(REPURCHASE_REMINDERS), key(ORDER_LINES)],
        pool=settings.pool,
    )
    def audience_lists(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """The shop's daily audiences (settings: audiences) on the day of core.customer_facts, from core.*,
        core.model_fits, staging.* (product roles) and the marketing contacts on record: one row per contact day
        and customer, with the audience, offer and message; also in the outbox, a file per audience and day."""
        record_process(context)
        if not any(audience.daily for audience in settings.audiences.values()):
            return dg.MaterializeResult(metadata={"rows": 0, "daily_audiences": "none in the settings (audiences)"})
        with warehouse.get_connection() as conn:
            facts = read_table(conn, "core.customer_facts")
            day = facts["as_of_date"].max() if facts is not None else None
            if day is None:
                context.log.warning("No customer snapshot yet (core.customer_facts): no audience lists")
                return dg.MaterializeResult(metadata={"rows": 0, "daily_audiences": "no customer snapshot yet"})
            fit = latest_fit(read_table(conn, "core.model_fits"), day)
            contacts = contacts_on_record(conn, except_day=day)
            table = customer_table(facts, conn.sql("SELECT * FROM core.rfm").pl(), fit, contacts, day, settings.value)
            opt_outs = opt_outs_on_record(conn, settings)
            near, cap = contacts.with_columns(yields=pl.lit(False)), settings.outreach.frequency_cap_days
            lists = daily_lists(settings.audiences, table, day, lambda c: reachable(c, day, opted_out(opt_outs), near,
                                cap), settings.outreach.control)  # fmt: skip
            orders = conn.sql(
                "SELECT order_id, customer_id, order_date, category FROM staging.orders WHERE status = ?"
                " AND order_date <= ?",
                params=[COMPLETED, day],
            ).pl()
            lines = conn.sql(
                "SELECT order_id, sku, product, category FROM staging.order_lines WHERE order_date <= ?", params=[day]
            ).pl()
            offered = with_offers(lists, table, roles_with_categories(orders, lines, day), settings.outreach.offers)
            rows = list_rows(offered, table, lambda row: audience_message(row, settings))
            replace_days(conn, {AUDIENCE_TABLE: rows}, day, day, day_column="contact_date")
            written = write_audience_outbox(conn, settings, rows, day, opt_outs)
        return dg.MaterializeResult(metadata={
            **unmatched_opt_outs(context, opt_outs), "contact_date": str(day), "rows": rows.height,
            "held_out": int(rows["held_out"].sum()), "outbox_rows": written,
            "by_audience": dg.MetadataValue.json(dict(rows.group_by("audience").len().sort("audience").iter_rows())),
            "by_offer": dg.MetadataValue.json(dict(rows.group_by("offer_kind").len().sort("offer_kind").iter_rows())),
        })  # fmt: skip

    @dg.asset(
        key=key(LIST_RESULTS),
        group_name=REPORTS,  # made with the reports, after the day's lists and any event's
        deps=[key(REPURCHASE_REMINDERS), key(CAMPAIGN_TARGETS), key(AUDIENCE_LISTS), key(STAGING_ORDERS)],
        pool=settings.pool,
    )
    def outreach_list_results(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Contacted against held-out customers of every list, from outreach.repurchase_reminders,
        outreach.campaign_targets, outreach.audience_lists and staging.orders: one row per list and grouping
        (reminders per day, per class and in total; each campaign list; the shop's own audiences per audience, per
        offer and in total), as of the last day loaded."""
        record_process(context)
        with warehouse.get_connection() as conn:
            known_until = loaded_until(conn)
            lists = {name: conn.sql(f"SELECT * FROM outreach.{name}").pl()
                     for name in ("repurchase_reminders", "campaign_targets", "audience_lists")}  # fmt: skip
            first = min((f["contact_date"].min() for f in lists.values() if f.height), default=known_until)
            orders = conn.sql(
                "SELECT customer_id, order_date, amount, status FROM staging.orders WHERE order_date >= ?",
                params=[first],
            ).pl()
            results = list_results(lists["repurchase_reminders"], lists["campaign_targets"], orders, known_until,
                                   settings.outreach, lists["audience_lists"])  # fmt: skip
            replace_tables(conn, {"outreach.list_results": results})
        told = results.filter(pl.col("distinguishable"))
        return dg.MaterializeResult(metadata={
            "as_of": str(known_until), "rows": results.height, "distinguishable": told.height,
            "reminders": dg.MetadataValue.md(markdown_table(results.filter(pl.col("dimension") == "all").select(
                "contacted", "held_out", "response_contacted", "response_held_out", "uplift", "uplift_low",
                "uplift_high", "incremental_revenue", "cost"))),
        })  # fmt: skip

    return [repurchase_reminders, care_messages, audience_lists, outreach_list_results]
