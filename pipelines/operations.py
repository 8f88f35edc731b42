"""Daily operations of one shop: the daily job and its schedule, retries, freshness, the sensor that plans
and reviews each sales event (pipelines/automation.py says when), and for a shop in customer buckets the stages
of its bucket step and the sensor that runs them; a notifier for failed runs of any shop."""

import json
import os
import urllib.request
import warnings
from dataclasses import dataclass

import dagster as dg

from assets import CUSTOMERS, ORDERS, OUTREACH, REPORTS
from assets.campaigns import GOALS
from assets.customers.bucket_assets import BUCKET_SUMMARIES, BUCKETS_GROUP
from assets.orders import STAGING_ORDERS
from assets.reports import EVENT_REVIEW
from pipelines.automation import days_loaded, due_steps, planned_through, reviews_alone
from pipelines.recovery import clean_up_after_crashes
from pipelines.settings import ShopSettings

SHOP_TAG = "regulars/shop"  # on every run: which shop it works for (the run queue lets one run a shop at a time)
# On a run of a shop's bucket step instead of SHOP_TAG: bucket runs read and write the shop's bucket files, not its
# warehouse, so they do not wait for the shop's runs nor for each other; the run queue bounds them by this tag.
BUCKETS_TAG = "regulars/buckets"
BUCKET_RUN_TAG = "regulars/bucket_run"  # "<stage job>:<partition>:<what it follows>" on a bucket sensor's run
BUCKET_ATTEMPTS = 3  # a bucket run that failed this often is not requested again (each failure was notified)
# How often the buckets sensor looks for the next stage: the daemon's shortest loop, so that a stage starts within
# seconds of the one before (a tick is a few indexed queries of the instance)
BUCKET_SENSOR_SECONDS = 5
EVENT_STEP_TAG = "regulars/event_step"  # on a run the events sensor requested: "<event id>:<step>"
EVENT_ATTEMPTS = 3  # an event step whose runs failed this often is not requested again (each failure was notified)

# Transient failures (a file still being written, a busy disk) get two more tries; a
# malformed export fails at once (it raises with allow_retries=False).
RETRIES = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL)


class Notifier(dg.ConfigurableResource):
    """Tells people a run failed: a JSON POST to the shop's webhook or the deployment's when one is set, else a
    log line."""

    webhook_url: str | None = None  # for every shop (REGULARS_WEBHOOK_URL)
    shop_webhooks: dict[str, str] = {}  # shop id -> its own (operations.webhook_url)

    def send(self, text: str, log, shop: str | None = None) -> None:
        url = self.shop_webhooks.get(shop or "") or self.webhook_url
        if not url:
            log.error(text)
            return
        request = urllib.request.Request(
            url, data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 (the URL is the operator's own setting)
            pass


def freshness_checks(settings: ShopSettings) -> list[dg.AssetChecksDefinition]:
    """Whether yesterday's partition of staging/orders is there by the deadline hour. Their sensor
    runs them; inside a job they would only judge the day it just loaded, or fail a backfill."""
    # Dagster 1.13 prefers FreshnessPolicy, which looks at when an asset last materialized;
    # these checks look at which day's partition is there, which is what a daily load promises.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return list(dg.build_time_partition_freshness_checks(
            assets=[settings.key(STAGING_ORDERS)],
            deadline_cron=f"0 {settings.operations.freshness_deadline_hour} * * *",
            timezone=settings.timezone,
        ))  # fmt: skip


def daily_job(settings: ShopSettings, name: str, partitions, freshness, tags: dict):
    """A day's orders (or a range's) and everything downstream, in one run: a failing blocking check stops the rest."""
    shop = dg.AssetSelection.key_prefixes([settings.id])
    return dg.define_asset_job(
        name,
        selection=shop
        & dg.AssetSelection.groups(ORDERS, CUSTOMERS, OUTREACH, REPORTS) - dg.AssetSelection.checks(*freshness),
        partitions_def=partitions,
        op_retry_policy=RETRIES,
        tags=tags,
    )


def event_requests(
    instance: dg.DagsterInstance, settings: ShopSettings, campaigns_job: str, review_job: str
) -> tuple[list[dg.RunRequest], list[str]]:
    """A run for every event step that is due (see pipelines/automation.py): the review alone for an event
    planned through its last step, else the whole event job (plan, and results and review once it is over);
    and the steps given up after EVENT_ATTEMPTS failed runs.

    A step whose run failed (a worker killed, a bad day) is still due, and is requested again under a new run key:
    Dagster runs a sensor's run key once, whatever became of that run."""
    days = days_loaded(instance, settings, settings.key(STAGING_ORDERS))
    since, until = (days[0], days[-1]) if days else (None, None)
    events = [e for e in settings.calendar() if since and e.end >= since and e.start <= until]
    planned = planned_through(instance, settings.key(GOALS), events)
    reviewed = instance.get_materialized_partitions(settings.key(EVENT_REVIEW))
    requests, given_up = [], []
    for event, step in due_steps(settings, since, until, planned, set(reviewed)):
        key = f"{event.id}:{step}"
        failed = failed_runs(instance, {SHOP_TAG: settings.id, EVENT_STEP_TAG: key})
        if failed >= EVENT_ATTEMPTS:
            given_up.append(f"{key} (its last {failed} runs failed: re-run it once fixed)")
            continue
        requests.append(dg.RunRequest(
            run_key=retry_key(key, failed), partition_key=event.id, tags={EVENT_STEP_TAG: key},
            job_name=review_job if reviews_alone(settings, step, planned.get(event.id)) else campaigns_job,
        ))  # fmt: skip
    return requests, given_up


@dataclass(frozen=True)
class BucketStage:
    """Assets of a shop's customer buckets group that run together: one run per bucket, or one run (the merge)."""

    job: str  # its job, after the shop's prefix: buckets_1, buckets_2, ...
    keys: tuple[dg.AssetKey, ...]
    partitions: dg.PartitionsDefinition | None

    @property
    def partition_keys(self) -> list[str | None]:
        return self.partitions.get_partition_keys() if self.partitions else [None]


@dataclass(frozen=True)
class BucketRun:
    """A run of a stage for one bucket (or the merge's one run), due because it has not run since `follows` (the
    storage id of the latest materialization it must come after)."""

    stage: BucketStage
    partition: str | None
    follows: int

    @property
    def key(self) -> str:
        return f"{self.stage.job}:{self.partition or 'all'}:{self.follows}"


def job_name(settings: ShopSettings, job: str) -> str:
    """A shop's job: `demo__daily`."""
    return f"{settings.id}__{job}"


def bucket_stages(specs) -> list[BucketStage]:
    """The stages of the customer buckets group's assets, in the order they run. An asset runs in its parent's
    stage when both are partitioned alike and partition for partition (or both unpartitioned), else in a later
    one: every bucket's summary, then the merge, then every bucket's finish. Read from the group, so that an
    asset added to it joins the sequence."""
    group = {spec.key: spec for spec in specs if spec.group_name == BUCKETS_GROUP}
    levels: dict[dg.AssetKey, int] = {}

    def level(key: dg.AssetKey) -> int:
        if key not in levels:
            spec = group[key]
            parents = [dep for dep in spec.deps if dep.asset_key in group]
            levels[key] = max((level(dep.asset_key) + (not _in_one_run(group[dep.asset_key], spec, dep))
                               for dep in parents), default=0)  # fmt: skip
        return levels[key]

    stages: dict[tuple[int, bool], list[dg.AssetKey]] = {}
    for key, spec in group.items():
        stages.setdefault((level(key), spec.partitions_def is not None), []).append(key)
    return [
        BucketStage(
            f"buckets_{number}", tuple(sorted(keys, key=dg.AssetKey.to_user_string)), group[keys[0]].partitions_def
        )
        for number, (_, keys) in enumerate(sorted(stages.items()), 1)
    ]


def _in_one_run(parent: dg.AssetSpec, child: dg.AssetSpec, dep: dg.AssetDep) -> bool:
    return parent.partitions_def == child.partitions_def and dep.partition_mapping is None


def failed_runs(instance: dg.DagsterInstance, tags: dict[str, str]) -> int:
    """How many runs with `tags` failed or were cancelled: a sensor asks for such a step again, a few times."""
    statuses = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
    return instance.get_runs_count(dg.RunsFilter(tags=tags, statuses=statuses))


def retry_key(key: str, failed: int) -> str:
    """A step's run key after `failed` failed runs: Dagster runs a run key once, whatever became of its run."""
    return f"{key}:retry{failed}" if failed else key


IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]  # fmt: skip


def due_bucket_runs(instance: dg.DagsterInstance, settings: ShopSettings, stages: list[BucketStage]) -> list[BucketRun]:
    """Every run of the first stage with a partition not materialized since what it follows (the shop's latest
    orders for the first stage, the latest materialization of the stage before for the others): a stage's buckets
    are computed together, of one day, or the merge would find them of different days. None while a run of the
    shop (a load) or a bucket run of the shop is queued or running, or before any orders are loaded."""
    orders = instance.fetch_materializations(settings.key(STAGING_ORDERS), limit=1).records
    busy = (dg.RunsFilter(tags={tag: settings.id}, statuses=IN_FLIGHT) for tag in (SHOP_TAG, BUCKETS_TAG))
    if not orders or any(instance.get_runs_count(runs) for runs in busy):
        return []
    follows = orders[0].storage_id
    for stage in stages:
        latest = _latest_materializations(instance, settings, stage)
        if any(storage_id < follows for storage_id in latest.values()):
            return [BucketRun(stage, partition, follows) for partition in latest]
        follows = max(latest.values())
    return []


def _latest_materializations(
    instance: dg.DagsterInstance, settings: ShopSettings, stage: BucketStage
) -> dict[str | None, int]:
    """Partition -> the storage id of the oldest of its stage's assets' latest materializations (0: missing)."""
    latest = dict.fromkeys(stage.partition_keys, 2**63)
    for key in stage.keys:
        if stage.partitions:
            ids = instance.get_latest_storage_id_by_partition(key, dg.DagsterEventType.ASSET_MATERIALIZATION)
        else:
            records = instance.fetch_materializations(key, limit=1).records
            ids = {None: records[0].storage_id} if records else {}
        latest = {partition: min(oldest, ids.get(partition, 0)) for partition, oldest in latest.items()}
    return latest


def bucket_run_config(instance: dg.DagsterInstance, settings: ShopSettings, stage: BucketStage) -> dict:
    """A stage's run config: the summaries are of the last day loaded (the daily run's day), not of the last day
    with orders, which is earlier after a day without orders."""
    summaries = settings.key(BUCKET_SUMMARIES)
    if summaries not in stage.keys:
        return {}
    as_of = days_loaded(instance, settings, settings.key(STAGING_ORDERS))[-1]
    return {"ops": {summaries.to_python_identifier(): {"config": {"as_of": as_of.isoformat()}}}}


def bucket_operations(settings: ShopSettings, specs) -> dict:
    """For a shop in customer buckets: a job per stage of its bucket step (tagged BUCKETS_TAG, not SHOP_TAG), and
    the sensor that runs the step after each load of the shop's orders, a stage once the one before is done."""
    stages = bucket_stages(specs)
    jobs = [
        dg.define_asset_job(
            job_name(settings, stage.job), selection=dg.AssetSelection.assets(*stage.keys),
            partitions_def=stage.partitions, op_retry_policy=RETRIES, tags={BUCKETS_TAG: settings.id},
            description=f"Customer buckets, stage {number} of {len(stages)}: "
            + ", ".join(key.to_user_string() for key in stage.keys),
        )
        for number, stage in enumerate(stages, 1)
    ]  # fmt: skip

    @dg.sensor(
        name=f"{settings.id}__customer_buckets", minimum_interval_seconds=BUCKET_SENSOR_SECONDS, jobs=jobs,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )  # fmt: skip
    def customer_buckets(context: dg.SensorEvaluationContext):
        """Runs the shop's bucket step after each load of its orders: a run per bucket, then the merge, then a run
        per bucket, each stage once the one before is done (pipelines/operations.py, `due_bucket_runs`)."""
        requests, given_up = [], []
        for run in due_bucket_runs(context.instance, settings, stages):
            failed = failed_runs(context.instance, {BUCKETS_TAG: settings.id, BUCKET_RUN_TAG: run.key})
            if failed >= BUCKET_ATTEMPTS:
                given_up.append(f"{run.key} (its last {failed} runs failed: run it again once fixed)")
                continue
            requests.append(dg.RunRequest(
                run_key=retry_key(run.key, failed), job_name=job_name(settings, run.stage.job),
                partition_key=run.partition, run_config=bucket_run_config(context.instance, settings, run.stage),
                tags={BUCKET_RUN_TAG: run.key},
            ))  # fmt: skip
        for run in given_up:
            context.log.warning(f"{settings.id}: bucket run {run}")
        return requests or dg.SkipReason("; ".join(given_up) or "no bucket run due")

    return {"jobs": jobs, "sensors": [customer_buckets]}


def operations(settings: ShopSettings, daily, campaigns_job: str, review_job: str, freshness) -> dict:
    """The shop's daily schedule, its freshness checks' sensor and its events sensor, for Definitions."""
    schedule = dg.build_schedule_from_partitioned_job(
        daily,
        hour_of_day=settings.operations.schedule_hour,
        minute_of_hour=settings.operations.schedule_minute,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        freshness_sensor = dg.build_sensor_for_freshness_checks(
            freshness_checks=freshness, name=f"{settings.id}__freshness_checks_sensor"
        )

    @dg.sensor(
        name=f"{settings.id}__plan_and_review_events", minimum_interval_seconds=60,
        job_name=campaigns_job, default_status=dg.DefaultSensorStatus.RUNNING,
    )  # fmt: skip
    def plan_and_review_events(context: dg.SensorEvaluationContext):
        """Plans each sales event step by step as its orders are loaded, and reviews it once it is over."""
        requests, given_up = event_requests(context.instance, settings, campaigns_job, review_job)
        for step in given_up:
            context.log.warning(f"{settings.id}: event step {step}")
        return requests or dg.SkipReason("; ".join(given_up) or "nothing due")

    return {"schedules": [schedule], "sensors": [freshness_sensor, plan_and_review_events]}


def failure_notices(shops: list[ShopSettings]) -> dict:
    """The sensor that tells people about failed runs of any shop, and its notifier."""

    @dg.run_failure_sensor(name="notify_on_failure", default_status=dg.DefaultSensorStatus.RUNNING)
    def notify_on_failure(context: dg.RunFailureSensorContext, notifier: Notifier):
        run = context.dagster_run
        notifier.send(
            f"regulars: run {run.run_id[:8]} of {run.job_name} failed: {context.failure_event.message}",
            context.log, run.tags.get(SHOP_TAG) or run.tags.get(BUCKETS_TAG),
        )  # fmt: skip

    @dg.sensor(
        name="clean_up_after_crashes", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
    )
    def clean_up_after_crashed_runs(context: dg.SensorEvaluationContext):
        """Fails `regulars` runs of this machine whose process died and frees their pool slots, so that
        scheduled runs do not wait for them (run monitoring covers the runs Dagster launched)."""
        return dg.SkipReason("; ".join(clean_up_after_crashes(context.instance)) or "no run to clean up")

    return {
        "sensors": [notify_on_failure, clean_up_after_crashed_runs],
        "resources": {
            "notifier": Notifier(
                webhook_url=os.environ.get("REGULARS_WEBHOOK_URL"),
                shop_webhooks={s.id: s.operations.webhook_url for s in shops if s.operations.webhook_url},
            )
        },  # fmt: skip
    }
