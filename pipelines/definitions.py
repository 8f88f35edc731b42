"""The one assembly point: every shop's assets, jobs, schedule and sensors, in one deployment.

`workspace.yaml` and `dagster dev` load `defs`, which holds the shops `shops_of_deployment` finds (REGULARS_SHOPS,
else the demo shop or REGULARS_CONFIG, and every shop `regulars` has run with this Dagster home). Each shop's
assets sit under its own key prefix (its id), with its own daily partitions (its time zone, its first day), its
own warehouse and output; each of its jobs is named after it and tags its runs `regulars/shop`. Tests and the
CLI call `build_definitions` with the shops they want.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dagster as dg

from assets import CAMPAIGNS, CUSTOMERS, ORDERS, OUTREACH, REPORTS, described
from assets.campaigns import RESULTS, campaign_assets, event_partitions
from assets.customers import customer_assets
from assets.customers.value_assets import value_assets
from assets.orders import order_assets
from assets.outreach import LIST_RESULTS, outreach_assets
from assets.reports import EVENT_REVIEW, report_assets
from pipelines.operations import (
    SHOP_TAG,
    bucket_operations,
    daily_job,
    failure_notices,
    freshness_checks,
    job_name,
    operations,
)  # fmt: skip
from pipelines.settings import DEFAULT_DATA_DIR, SettingsError, ShopSettings, load_settings

INGEST_JOB = "ingest"  # a day's (or a range's) orders alone
CUSTOMERS_JOB = "customers"
OUTREACH_JOB = "outreach"
REPORTS_JOB = "reports"
CAMPAIGNS_JOB = "campaigns"  # an event's whole run: plan, and results and review once it is over
REVIEW_JOB = "event_review"  # results and review of an event planned already
DAILY_JOB = "daily"  # a day's (or a range's) orders and everything downstream
# Dagster's run tags for a run over a range of partitions (a single-run backfill)
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
SHOPS_FILE = "regulars-shops.txt"  # in DAGSTER_HOME: the settings files `regulars` has run, one a line


def daily_partitions(settings: ShopSettings) -> dg.DailyPartitionsDefinition:
    """One partition per shop-local day of order, from the first day of history to `history_end`
    (without one, to yesterday: Dagster adds each day once it is over)."""
    end = settings.history_end and (settings.history_end + timedelta(days=1)).isoformat()  # end_date is exclusive
    return dg.DailyPartitionsDefinition(
        start_date=settings.history_start.isoformat(), end_date=end, timezone=settings.timezone
    )


def shop_definitions(settings: ShopSettings) -> dg.Definitions:
    """One shop's assets, checks, jobs, schedule and sensors."""
    days, events = daily_partitions(settings), event_partitions(settings)
    freshness = freshness_checks(settings)
    tags = {SHOP_TAG: settings.id}
    shop = dg.AssetSelection.key_prefixes([settings.id])
    list_results = dg.AssetSelection.assets(settings.key(LIST_RESULTS))

    def job(kind: str, selection: dg.AssetSelection, partitions=None):
        return dg.define_asset_job(job_name(settings, kind), selection=shop & selection, partitions_def=partitions,
                                   tags=tags)  # fmt: skip

    daily = daily_job(settings, job_name(settings, DAILY_JOB), days, freshness, tags)
    campaigns, review = job_name(settings, CAMPAIGNS_JOB), job_name(settings, REVIEW_JOB)
    ops = operations(settings, daily, campaigns, review, freshness)
    assets = dg.map_asset_specs(
        described(settings.operations.owners),
        [
            *order_assets(settings, days),
            *customer_assets(settings),
            *value_assets(settings),
            *outreach_assets(settings, days),
            *report_assets(settings),
            *campaign_assets(settings),
        ],
    )
    # a shop in customer buckets: its bucket step's jobs and the sensor that runs them after each load
    specs = [spec for asset in assets for spec in (asset.specs if isinstance(asset, dg.AssetsDefinition) else [asset])]
    buckets = bucket_operations(settings, specs) if settings.buckets > 1 else {}
    return dg.Definitions(
        assets=assets,
        jobs=[
            job(INGEST_JOB, dg.AssetSelection.groups(ORDERS) - dg.AssetSelection.checks(*freshness), days),
            job(CUSTOMERS_JOB, dg.AssetSelection.groups(CUSTOMERS)),
            job(OUTREACH_JOB, dg.AssetSelection.groups(OUTREACH), days),
            job(REPORTS_JOB, dg.AssetSelection.groups(REPORTS)),
            # an event's runs measure its lists with the others (outreach/list_results) once they are made
            job(CAMPAIGNS_JOB, dg.AssetSelection.groups(CAMPAIGNS) | list_results, events),
            job(
                REVIEW_JOB,
                dg.AssetSelection.assets(settings.key(RESULTS), settings.key(EVENT_REVIEW)) | list_results,
                events,
            ),
            daily,
            *buckets.get("jobs", []),
        ],
        asset_checks=freshness,
        schedules=ops["schedules"],
        sensors=[*ops["sensors"], *buckets.get("sensors", [])],
    )


def build_definitions(*shops: ShopSettings) -> dg.Definitions:
    ids = [settings.id for settings in shops]
    if len(set(ids)) < len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise SettingsError(f"two shops have the id {twice[0]!r}: give each settings file an `id` of its own")
    notices = failure_notices(list(shops))
    return dg.Definitions.merge(
        *(shop_definitions(settings) for settings in shops),
        dg.Definitions(
            # Steps of a shop take turns on its warehouse anyway (one writer); in one process a daily run
            # loads the code and Great Expectations once instead of once per step (46 s -> 12 s).
            executor=dg.in_process_executor,
            sensors=notices["sensors"],
            resources=notices["resources"],
        ),
    )


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DATA_DIR / "dagster").resolve()


def shops_of_deployment() -> list[ShopSettings]:
    """The deployment's shops: the settings files REGULARS_SHOPS names (files or folders of *.yaml, separated by
    the path separator), else the demo shop (or REGULARS_CONFIG) and every shop `regulars` has run here."""
    listed = os.environ.get("REGULARS_SHOPS")
    if listed:
        paths = [p for part in listed.split(os.pathsep) if part for p in _settings_files(Path(part))]
    else:
        registered = dagster_home() / SHOPS_FILE
        paths = [None, *(registered.read_text(encoding="utf-8").split() if registered.exists() else [])]
    shops = {}
    for path in paths:
        settings = load_settings(path)
        shops.setdefault(settings.id, settings)
    return list(shops.values())


def _settings_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")) if path.is_dir() else [path]


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(*shops_of_deployment())


def shop_job(settings: ShopSettings, job: str) -> dg.JobDefinition:
    """One shop's job, resolved (for running it in process)."""
    return build_definitions(settings).resolve_job_def(job_name(settings, job))
