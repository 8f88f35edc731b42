"""The one assembly point: assets, resources and jobs for the shop the settings describe.

`workspace.yaml` and `dagster dev` load `defs`, which reads the shop from `REGULARS_CONFIG`
(default: the demo shop). Tests and the CLI call `build_definitions` with their own settings.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from assets import CAMPAIGNS, CUSTOMERS, ORDERS, OUTREACH, REPORTS
from assets.campaigns import RESULTS, campaign_assets, event_partitions
from assets.customers import customer_assets
from assets.customers.value_assets import value_assets
from assets.orders import order_assets
from assets.outreach import outreach_assets
from assets.reports import EVENT_REVIEW, report_assets
from pipelines.operations import daily_job, freshness_checks, operations
from pipelines.settings import ShopSettings, load_settings
from pipelines.sources import order_source
from pipelines.warehouse import Warehouse

INGEST_JOB = "ingest_orders_job"
CUSTOMERS_JOB = "customers_job"
OUTREACH_JOB = "outreach_job"
REPORTS_JOB = "reports_job"
CAMPAIGNS_JOB = "campaigns_job"
REVIEW_JOB = "event_review_job"


def daily_partitions(settings: ShopSettings) -> dg.DailyPartitionsDefinition:
    """One partition per shop-local day of order, from the first day of history to `history_end`
    (without one, to yesterday: Dagster adds each day once it is over)."""
    end = settings.history_end and (settings.history_end + timedelta(days=1)).isoformat()  # end_date is exclusive
    return dg.DailyPartitionsDefinition(
        start_date=settings.history_start.isoformat(), end_date=end, timezone=settings.timezone
    )


def build_definitions(settings: ShopSettings) -> dg.Definitions:
    days, events = daily_partitions(settings), event_partitions(settings)
    freshness = freshness_checks(settings)
    daily = daily_job(days, freshness)
    # An event's whole run (plan, results, review), and the review alone for an event already planned.
    campaigns = dg.define_asset_job(CAMPAIGNS_JOB, selection=dg.AssetSelection.groups(CAMPAIGNS), partitions_def=events)
    review = dg.define_asset_job(
        REVIEW_JOB, selection=dg.AssetSelection.assets(RESULTS, EVENT_REVIEW), partitions_def=events
    )
    ops = operations(settings, daily, campaigns, review, freshness)
    return dg.Definitions(
        assets=[
            *order_assets(settings, days),
            *customer_assets(settings),
            *value_assets(settings),
            *outreach_assets(settings, days),
            *report_assets(settings),
            *campaign_assets(settings),
        ],
        jobs=[
            dg.define_asset_job(
                INGEST_JOB,
                selection=dg.AssetSelection.groups(ORDERS) - dg.AssetSelection.checks(*freshness),
                partitions_def=days,
            ),
            dg.define_asset_job(CUSTOMERS_JOB, selection=dg.AssetSelection.groups(CUSTOMERS)),
            dg.define_asset_job(OUTREACH_JOB, selection=dg.AssetSelection.groups(OUTREACH), partitions_def=days),
            dg.define_asset_job(REPORTS_JOB, selection=dg.AssetSelection.groups(REPORTS)),
            campaigns,
            review,
            daily,
        ],
        asset_checks=freshness,
        # Steps take turns on the warehouse anyway (one writer); in one process a daily run
        # loads the code and Great Expectations once instead of once per step (46 s -> 12 s).
        executor=dg.in_process_executor,
        schedules=ops["schedules"],
        sensors=ops["sensors"],
        resources={
            "source": order_source(settings),
            "warehouse": Warehouse(database=str(settings.warehouse)),
            **ops["resources"],
        },
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings())
