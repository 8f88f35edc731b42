"""Daily operations of one shop: the daily job and its schedule, retries, freshness, and the sensor that plans
and reviews each sales event (pipelines/automation.py says when); a notifier for failed runs of any shop."""

import json
import os
import urllib.request
import warnings

import dagster as dg

from assets import CUSTOMERS, ORDERS, OUTREACH, REPORTS
from assets.campaigns import GOALS
from assets.orders import STAGING_ORDERS
from assets.reports import EVENT_REVIEW
from pipelines.automation import days_loaded, due_steps, planned_through, reviews_alone
from pipelines.recovery import clean_up_after_crashes
from pipelines.settings import ShopSettings

SHOP_TAG = "regulars/shop"  # on every run: which shop it works for (the run queue lets one run a shop at a time)
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
        failed = instance.get_runs_count(dg.RunsFilter(
            tags={SHOP_TAG: settings.id, EVENT_STEP_TAG: key},
            statuses=[dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED],
        ))  # fmt: skip
        if failed >= EVENT_ATTEMPTS:
            given_up.append(f"{key} (its last {failed} runs failed: re-run it once fixed)")
            continue
        requests.append(dg.RunRequest(
            run_key=f"{key}:retry{failed}" if failed else key, partition_key=event.id, tags={EVENT_STEP_TAG: key},
            job_name=review_job if reviews_alone(settings, step, planned.get(event.id)) else campaigns_job,
        ))  # fmt: skip
    return requests, given_up


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
            context.log, run.tags.get(SHOP_TAG),
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
