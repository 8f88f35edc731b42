"""Reports for people who do not read code: rendered HTML files in the output folder."""

from datetime import timedelta

import dagster as dg

from assets import CAMPAIGNS, REPORTS
from assets.campaigns import RESULTS, comparable_of, event_partitions, passed_over_of
from assets.customers import ANALYSIS, CUSTOMER_FACTS, RFM
from assets.customers.value_assets import PREDICTION_QUALITY, PREDICTION_TRACKING
from assets.outreach import REPURCHASE_REMINDERS
from assets.outreach.uplift import reminder_results
from pipelines.settings import ShopSettings
from pipelines.warehouse import WAREHOUSE_POOL, Warehouse, loaded_until, read_table
from reports.overview import overview_html
from reports.prediction import prediction_section
from reports.review import review_html

SHOP_OVERVIEW = dg.AssetKey(["reports", "shop_overview"])
REMINDER_DAYS = 90  # the overview sets reminders of this many days against their control groups
EVENT_REVIEW = dg.AssetKey(["reports", "event_review"])


def report_assets(settings: ShopSettings) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=SHOP_OVERVIEW,
        group_name=REPORTS,
        deps=[
            CUSTOMER_FACTS,
            RFM,
            REPURCHASE_REMINDERS,
            *(dg.AssetKey(["analysis", name]) for name in ANALYSIS),
            PREDICTION_QUALITY,
            PREDICTION_TRACKING,
        ],
        pool=WAREHOUSE_POOL,
    )
    def shop_overview(warehouse: Warehouse) -> dg.MaterializeResult:
        """The shop overview, from core.*, analysis.* and the last 90 days of outreach.repurchase_reminders: one
        HTML file per as-of date, in the output folder."""
        with warehouse.get_connection() as conn:
            tables = {name: conn.sql(f"SELECT * FROM {name}").pl() for name in (
                "core.customer_facts", "core.rfm", "analysis.class_mix", "analysis.value_tiers",
                "analysis.category_cycles")}  # fmt: skip
            quality = read_table(conn, "analysis.prediction_quality")
            weekly = read_table(conn, "analysis.prediction_tracking")
            facts, rfm = tables["core.customer_facts"], tables["core.rfm"]
            as_of = facts["as_of_date"].max()
            since = as_of - timedelta(days=REMINDER_DAYS - 1) if as_of else None
            reminders = conn.sql("SELECT * FROM outreach.repurchase_reminders WHERE contact_date >= ?", params=[since])
            orders = conn.sql("SELECT customer_id, order_date, amount, status FROM staging.orders"
                              " WHERE order_date >= ?", params=[since])  # fmt: skip
            reminded = reminder_results(reminders.pl(), orders.pl(), loaded_until(conn) or as_of, settings.outreach)
        html = overview_html(
            settings.name, settings.currency, settings.reports.language, as_of, facts, rfm,
            tables["analysis.class_mix"], tables["analysis.value_tiers"], tables["analysis.category_cycles"],
            reminded, settings.outreach.response_days,
            prediction_section(settings.reports.language, settings.value.model, settings.value.holdout_days, quality,
                               weekly),
        )  # fmt: skip
        path = settings.output / "reports" / f"overview-{as_of}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
        return dg.MaterializeResult(metadata={"as_of": str(as_of), "path": dg.MetadataValue.path(str(path))})

    calendar = settings.calendar()
    events = {event.id: event for event in calendar}

    @dg.asset(
        key=EVENT_REVIEW, group_name=CAMPAIGNS, deps=[RESULTS], partitions_def=event_partitions(settings),
        pool=WAREHOUSE_POOL,
    )  # fmt: skip
    def event_review(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        """The post-promotion review, from campaigns.results: one HTML file per event, in the output folder."""
        event = events[context.partition_key]
        with warehouse.get_connection() as conn:
            results = read_table(conn, "campaigns.results", event_id=event.id)
            goals = read_table(conn, "campaigns.goals", event_id=event.id)
        html = review_html(
            settings.name, settings.currency, settings.reports.language, event, comparable_of(goals, events), calendar,
            results, passed_over_of(goals, events), settings.outreach.response_days,
        )  # fmt: skip
        path = settings.output / "reports" / f"review-{event.id}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
        return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path))})

    return [shop_overview, event_review]
