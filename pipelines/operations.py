"""Daily operations: the daily job and its schedule, retries, freshness, a notifier for failed
runs, a sensor that reviews each sales event once its after-glow's last day is loaded, and one
that cleans up after `regulars` runs whose process died."""

import json
import os
import urllib.request
import warnings

import dagster as dg

from assets import CUSTOMERS, ORDERS, OUTREACH, REPORTS
from assets.campaigns import GOALS
from assets.orders import STAGING_ORDERS
from assets.reports import EVENT_REVIEW
from pipelines.recovery import clean_up_after_crashes
from pipelines.settings import ShopSettings

DAILY_JOB = "daily_job"
# Transient failures (a file still being written, a busy disk) get two more tries; a
# malformed export fails at once (it raises with allow_retries=False).
RETRIES = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL)


class Notifier(dg.ConfigurableResource):
    """Tells people a run failed: a JSON POST to a webhook when one is set, else a log line."""

    webhook_url: str | None = None

    def send(self, text: str, log) -> None:
        if not self.webhook_url:
            log.error(text)
            return
        request = urllib.request.Request(
            self.webhook_url, data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}
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
            assets=[STAGING_ORDERS],
            deadline_cron=f"0 {settings.operations.freshness_deadline_hour} * * *",
            timezone=settings.timezone,
        ))  # fmt: skip


def daily_job(partitions: dg.PartitionsDefinition, freshness: list[dg.AssetChecksDefinition]):
    """Yesterday's orders and everything downstream, in one run: a failing blocking check stops the rest."""
    return dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.groups(ORDERS, CUSTOMERS, OUTREACH, REPORTS) - dg.AssetSelection.checks(*freshness),
        partitions_def=partitions,
        op_retry_policy=RETRIES,
    )


def review_requests(instance: dg.DagsterInstance, settings: ShopSettings, campaigns_job, review_job) -> list:
    """A run for every event whose after-glow's last day is loaded and which has no review yet; the
    whole event (plan, results, review) if it was never planned."""
    loaded = instance.get_materialized_partitions(STAGING_ORDERS)
    planned = instance.get_materialized_partitions(GOALS)
    reviewed = instance.get_materialized_partitions(EVENT_REVIEW)
    return [
        dg.RunRequest(run_key=f"review-{event.id}", partition_key=event.id,
                      job_name=(review_job if event.id in planned else campaigns_job).name)
        for event in settings.calendar() if event.end.isoformat() in loaded and event.id not in reviewed
    ]  # fmt: skip


def operations(settings: ShopSettings, job, campaigns_job, review_job, freshness) -> dict:
    """Schedule, the freshness checks' sensor, the failure sensor and its notifier, the review
    sensor, the clean-up sensor, for Definitions."""
    schedule = dg.build_schedule_from_partitioned_job(
        job, hour_of_day=settings.operations.schedule_hour, default_status=dg.DefaultScheduleStatus.STOPPED
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        freshness_sensor = dg.build_sensor_for_freshness_checks(freshness_checks=freshness)

    @dg.run_failure_sensor(name="notify_on_failure", default_status=dg.DefaultSensorStatus.RUNNING)
    def notify_on_failure(context: dg.RunFailureSensorContext, notifier: Notifier):
        run = context.dagster_run
        notifier.send(
            f"regulars: run {run.run_id[:8]} of {run.job_name} failed: {context.failure_event.message}", context.log
        )

    @dg.sensor(
        name="review_finished_events", jobs=[campaigns_job, review_job], minimum_interval_seconds=3600,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )  # fmt: skip
    def review_finished_events(context: dg.SensorEvaluationContext):
        """Reviews each sales event once the orders of its after-glow's last day are loaded."""
        return review_requests(context.instance, settings, campaigns_job, review_job)

    @dg.sensor(
        name="clean_up_after_crashes", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING
    )
    def clean_up_after_crashed_runs(context: dg.SensorEvaluationContext):
        """Fails `regulars` runs of this machine whose process died and frees their pool slots, so that
        scheduled runs do not wait for them (run monitoring covers the runs Dagster launched)."""
        return dg.SkipReason("; ".join(clean_up_after_crashes(context.instance)) or "no run to clean up")

    return {
        "schedules": [schedule],
        "sensors": [freshness_sensor, notify_on_failure, review_finished_events, clean_up_after_crashed_runs],
        "resources": {
            "notifier": Notifier(webhook_url=os.environ.get("REGULARS_WEBHOOK_URL") or settings.operations.webhook_url)
        },
    }
