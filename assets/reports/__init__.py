"""Reports for people who do not read code: rendered HTML files in the output folder."""

from datetime import date, timedelta

import dagster as dg
import polars as pl

from assets import CAMPAIGNS, REPORTS
from assets.campaigns import RESULTS, comparable_of, event_partitions, passed_over_of
from assets.campaigns.bands import band_of
from assets.campaigns.goals import growth_of
from assets.customers import ANALYSIS, CUSTOMER_FACTS, RFM, SEGMENT_HISTORY, TIER_HISTORY
from assets.customers.trends import default_period
from assets.customers.value_assets import PREDICTION_QUALITY, PREDICTION_TRACKING
from assets.orders import STAGING_ORDERS
from assets.outreach import AUDIENCE_LISTS, REPURCHASE_REMINDERS
from assets.outreach.gate import rules_on_record
from assets.outreach.outbox import write_list
from assets.outreach.uplift import audience_results, reminder_results
from pipelines.files import write_text_atomically
from pipelines.recovery import record_process
from pipelines.settings import ShopSettings
from pipelines.sources import order_source
from pipelines.warehouse import Warehouse, loaded_until, read_table
from reports.overview import due_next_week, overview_html
from reports.prediction import prediction_section
from reports.render import attachment
from reports.review import review_html
from reports.tiers import tier_migration_section, tier_mix_section
from reports.trends import trends_context

SHOP_OVERVIEW = dg.AssetKey(["reports", "shop_overview"])
REMINDER_DAYS = 90  # the overview sets reminders of this many days against their control groups
EVENT_REVIEW = dg.AssetKey(["reports", "event_review"])
LANGUAGES = ("en", "zh")


class ReportConfig(dg.Config):
    language: str | None = None  # en or zh; default: the settings' reports.language


class OverviewConfig(ReportConfig):
    period_from: str | None = None  # YYYY-MM-DD; default: the 12 calendar months to the as-of date
    period_to: str | None = None  # YYYY-MM-DD; default: the as-of date


def period(config: OverviewConfig, as_of: date) -> tuple[date, date]:
    """The overview's period: the config's, else the 12 calendar months to the as-of date."""
    try:
        given = [date.fromisoformat(d) if d else None for d in (config.period_from, config.period_to)]
    except ValueError as exc:
        raise dg.Failure(f"period: {exc}; dates are YYYY-MM-DD") from None
    last = given[1] or as_of
    first = given[0] or default_period(last)[0]
    if first > last:
        raise dg.Failure(f"period: {first} is after {last}")
    return first, last


def report_language(settings: ShopSettings, config: ReportConfig) -> str:
    language = config.language or settings.reports.language
    if language not in LANGUAGES:
        raise dg.Failure(f"language {language!r}: reports are in {' or '.join(LANGUAGES)}")
    return language


def report_assets(settings: ShopSettings) -> list[dg.AssetsDefinition]:
    key, warehouse = settings.key, Warehouse(database=str(settings.warehouse))
    named_statuses = order_source(settings).layout.named_statuses()

    @dg.asset(
        key=key(SHOP_OVERVIEW),
        group_name=REPORTS,
        deps=[
            key(CUSTOMER_FACTS),
            key(RFM),
            key(SEGMENT_HISTORY),
            key(TIER_HISTORY),
            key(STAGING_ORDERS),
            key(REPURCHASE_REMINDERS),
            key(AUDIENCE_LISTS),
            *(key(dg.AssetKey(["analysis", name])) for name in ANALYSIS),
            key(PREDICTION_QUALITY),
            key(PREDICTION_TRACKING),
        ],
        pool=settings.pool,
    )
    def shop_overview(context: dg.AssetExecutionContext, config: OverviewConfig) -> dg.MaterializeResult:
        """The shop overview, from core.*, analysis.*, staging.orders and the last 90 days of
        outreach.repurchase_reminders and outreach.audience_lists: one HTML file per as-of date and language in
        the output folder, and the customers due next week in the outbox."""
        record_process(context)
        language = report_language(settings, config)
        with warehouse.get_connection() as conn:
            tables = {name: conn.sql(f"SELECT * FROM {name}").pl() for name in (
                "core.customer_facts", "core.rfm", "core.segment_history", "analysis.class_mix",
                "analysis.value_tiers", "analysis.category_cycles", "analysis.product_roles")}  # fmt: skip
            orders = conn.sql("SELECT customer_id, order_date, amount, status FROM staging.orders").pl()
            quality = read_table(conn, "analysis.prediction_quality")
            statuses = conn.sql("SELECT status, treated, first_loaded_ts FROM raw.statuses_seen ORDER BY 1").pl()
            weekly = read_table(conn, "analysis.prediction_tracking")
            tiers = read_table(conn, "core.tier_history")
            as_of = tables["core.customer_facts"]["as_of_date"].max()
            since = as_of - timedelta(days=REMINDER_DAYS - 1) if as_of else None
            reminders = conn.sql("SELECT * FROM outreach.repurchase_reminders WHERE contact_date >= ?", params=[since])
            reminded = reminder_results(
                reminders.pl(),
                orders.filter(pl.col("order_date") >= since),
                loaded_until(conn) or as_of,
                settings.outreach,
            )
            lists = conn.sql("SELECT * FROM outreach.audience_lists WHERE contact_date >= ?", params=[since]).pl()
            own_lists = audience_results(lists, orders.filter(pl.col("order_date") >= since),
                                         loaded_until(conn) or as_of, settings.outreach)  # fmt: skip
            facts, rfm = tables["core.customer_facts"], tables["core.rfm"]
            due = due_next_week(facts, rfm, as_of)
            due_path = settings.output / "outbox" / "due" / f"due-{as_of}.csv"
            due = write_list(due, rules_on_record(conn, settings, due["due_date"]), due_path, "due_date",
                             settings.outreach.language)  # fmt: skip
        first, last = period(config, as_of)
        trends = trends_context(
            orders.filter(pl.col("order_date") <= last), tables["core.segment_history"], first, last,
            settings.lifecycle.churned_after_days, language, settings.currency, settings.history_start,
        )  # fmt: skip
        html = overview_html(
            settings.name, settings.currency, language, as_of, facts, rfm, tables["analysis.class_mix"],
            tables["analysis.value_tiers"], tables["analysis.category_cycles"], due,
            attachment(due_path), trends, tables["analysis.product_roles"], reminded,
            settings.outreach.response_days,
            prediction_section(language, settings.value.model, settings.value.holdout_days, quality, weekly),
            statuses.filter(~pl.col("status").is_in(list(named_statuses))),
            member_tiers=tier_mix_section(tiers, settings.tiers, first, last, language),
            own_lists=own_lists if settings.audiences else None, audience_labels=settings.audience_labels,
        )  # fmt: skip
        asked = config.period_from or config.period_to
        name = f"overview-{first}_{last}" if asked else f"overview-{as_of}"  # an asked period keeps its own file
        path = settings.output / "reports" / f"{name}.{language}.html"
        write_text_atomically(path, html)
        return dg.MaterializeResult(metadata={
            "as_of": str(as_of), "period": f"{first} .. {last}", "due_next_week": due.height,
            "path": dg.MetadataValue.path(str(path)), "due_list": dg.MetadataValue.path(str(due_path)),
        })  # fmt: skip

    calendar = settings.calendar()
    events = {event.id: event for event in calendar}

    @dg.asset(
        key=key(EVENT_REVIEW), group_name=CAMPAIGNS, deps=[key(RESULTS), key(TIER_HISTORY)],
        partitions_def=event_partitions(settings),
        pool=settings.pool,
    )  # fmt: skip
    def event_review(context: dg.AssetExecutionContext, config: ReportConfig) -> dg.MaterializeResult:
        """The post-promotion review, from campaigns.results and core.tier_history: one HTML file per event, in the
        output folder."""
        record_process(context)
        event = events[context.partition_key]
        with warehouse.get_connection() as conn:
            results = read_table(conn, "campaigns.results", event_id=event.id)
            goals = read_table(conn, "campaigns.goals", event_id=event.id)
            tiers = read_table(conn, "core.tier_history")
            hold_outs = read_table(conn, "campaigns.hold_outs", event_id=event.id)
        language = report_language(settings, config)
        html = review_html(
            settings.name, settings.currency, language, event, comparable_of(goals, events), calendar,
            results, passed_over_of(goals, events), settings.outreach.response_days, growth_of(goals),
            tier_moves=tier_migration_section(tiers, settings.tiers, event, language),
            audience_labels=settings.audience_labels, band=band_of(goals), hold_outs=hold_outs,
        )  # fmt: skip
        path = settings.output / "reports" / f"review-{event.id}.{language}.html"
        write_text_atomically(path, html)
        return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path))})

    return [shop_overview, event_review]
