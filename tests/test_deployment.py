"""The production deployment of examples/deployment on loopback: Postgres instance storage, the queued run
coordinator, runs launched onto two Celery workers (Redis), the daemon. Runs are submitted as an operator
would (`dagster job backfill` / `dagster job launch`), then the deployment's warehouse is set against the
same runs executed in process; a run whose worker process is killed with kill -9 ends failed, its pool
slot free, without a trace in the warehouse; and a shop in customer buckets gets its bucket step from the
daemon's sensor after its orders are loaded, a run per bucket on both workers, as one process computes it.

The services are Debian's `postgresql` and `redis-server` (the README's test command installs them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import duckdb
import pytest
import yaml
from polars.testing import assert_frame_equal

from assets.customers import read_orders
from assets.customers.buckets import read_customers
from assets.customers.snapshot import customer_snapshot
from pipelines.definitions import INGEST_JOB, RANGE_END, RANGE_START, build_definitions, job_name
from pipelines.operations import BUCKETS_TAG, bucket_stages, due_bucket_runs
from pipelines.settings import load_settings
from tests import services
from tests.conftest import ROOT, ingest, shop, shop_file, table
from tests.services import wait_for
from tests.test_buckets import assert_same_snapshot

EXAMPLE = ROOT / "examples" / "deployment"
SHOP_TAG = "regulars/shop"
# a killed run is failed and its pool slot freed within this (run monitoring polls every second here)
BOUND_SECONDS = 30
CELERY_TASK_TAG = "dagster-celery/task_id"  # set by CeleryRunLauncher on each run it hands to a worker
# The deployment's shops: id -> settings (tests/conftest.py `shop`), each in its own folder and warehouse, in
# zones of their own and with first days of their own; the deployment reads them all (REGULARS_SHOPS). No sales
# events: north's history would have the daemon's sensor plan 2023's, whose runs this test does not replay in
# process (test_automation.py drives events with the daemon's logic).
NO_EVENTS = {"presets": []}
SHOPS = {
    "north": {"id": "north", "name": "north shop", "history_start": "2023-01-01", "timezone": "Asia/Shanghai",
              "source": {"kind": "synthetic", "seed": 7, "customers": 3000}, "events": NO_EVENTS},
    "west": {"id": "west", "name": "west shop", "history_start": "2024-02-01", "timezone": "America/New_York",
             "source": {"kind": "synthetic", "seed": 9, "customers": 800}, "events": NO_EVENTS},
    "south": {"id": "south", "name": "south shop", "history_start": "2023-11-15", "timezone": "Australia/Sydney",
              "source": {"kind": "synthetic", "seed": 11, "customers": 800}, "events": NO_EVENTS},
    # a shop in customer buckets (its bucket step's runs carry regulars/buckets, not regulars/shop)
    "east": {"id": "east", "name": "east shop", "history_start": "2024-01-01", "timezone": "Europe/Berlin",
             "buckets": 4, "source": {"kind": "synthetic", "seed": 13, "customers": 3000}, "events": NO_EVENTS},
}  # fmt: skip


def instance_config() -> dict:
    """The example's instance settings, on the test's clock: the queue served every second instead of 5 s,
    running runs' workers asked after every second instead of 30 s."""
    config = yaml.safe_load((EXAMPLE / "dagster.yaml").read_text())
    config["run_coordinator"]["config"]["dequeue_interval_seconds"] = 1
    config["run_monitoring"] |= {"poll_interval_seconds": 1, "free_slots_after_run_end_seconds": 1}
    return config


class Deployment:
    """The running deployment: its instance, environment, workers and workspace, and the shops it serves."""

    def __init__(self, instance: dg.DagsterInstance, env: dict, workers: list, workspace: Path, shops: dict):
        self.instance, self.env, self.workers, self.workspace, self.shops = instance, env, workers, workspace, shops

    def dagster(self, *args: str, tags: dict) -> None:
        """The `dagster` CLI on the deployment's workspace, as an operator submits runs."""
        command = [str(services.VENV_BIN / "dagster"), *args, "-w", str(self.workspace), "--tags", json.dumps(tags)]
        done = subprocess.run(command, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

    def ingest_runs(self, shop: str) -> set[str]:
        """The shop's ingest runs (the daemon's sensors start others meanwhile, e.g. freshness checks)."""
        return {run.run_id for run in self.instance.get_runs(dg.RunsFilter(job_name=f"{shop}__{INGEST_JOB}"))}

    def backfill(self, shop: str, *partitions: str) -> list[str]:
        """One queued run of the shop's ingest per partition; their run ids."""
        before = self.ingest_runs(shop)
        self.dagster("job", "backfill", "-j", f"{shop}__{INGEST_JOB}", "--partitions", ",".join(partitions),
                     "--noprompt", tags={SHOP_TAG: shop})  # fmt: skip
        return sorted(self.ingest_runs(shop) - before)

    def launch_range(self, shop: str, first: str, last: str) -> str:
        """One queued run of the shop's ingest over the days first..last; its run id."""
        before = self.ingest_runs(shop)
        tags = {SHOP_TAG: shop, RANGE_START: first, RANGE_END: last}
        self.dagster("job", "launch", "-j", f"{shop}__{INGEST_JOB}", tags=tags)
        (run_id,) = self.ingest_runs(shop) - before
        return run_id

    def wait_for_end(self, run_ids: list[str], timeout: float) -> list[dg.DagsterRun]:
        def finished():
            runs = self.instance.get_runs(dg.RunsFilter(run_ids=run_ids))
            return runs if all(run.is_finished for run in runs) else None

        return wait_for(finished, timeout, f"runs {', '.join(run_id[:8] for run_id in run_ids)} to end")

    def why(self, runs: list[dg.DagsterRun]) -> list[str]:
        """Why each run that did not succeed failed (and its failed steps' errors), for an assertion's message."""
        failures = {dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.STEP_UP_FOR_RETRY}

        def said(event: dg.DagsterEvent) -> str:
            return f" {event.step_retry_data.error.message}" if event.is_step_up_for_retry else ""

        return [f"{run.run_id[:8]} {run.status.value}: {record.message}{said(record.dagster_event)}"
                for run in runs if run.status != dg.DagsterRunStatus.SUCCESS
                for record in self.instance.all_logs(run.run_id, of_type=failures)]  # fmt: skip

    def run_pid(self, run_id: str) -> int | None:
        """The process that executes the run: its worker announces it when the run starts."""
        for record in self.instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            if record.message.startswith("Started process for run"):
                return int(record.dagster_event.engine_event_data.metadata["pid"].value)
        return None

    def slot_holders(self, shop: str) -> set[str]:
        """The runs holding a slot of the shop's warehouse pool."""
        return self.instance.event_log_storage.get_concurrency_info(self.shops[shop].pool).active_run_ids

    def worker_processes(self) -> set[int]:
        """The Celery workers and their pool processes (the ones that execute runs)."""
        return {pid for worker in self.workers for pid in {worker.pid} | services.descendants(worker.pid)}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deployment")
    home = folder / "dagster_home"
    home.mkdir()
    files = {shop_id: shop_file(folder / shop_id, **settings) for shop_id, settings in SHOPS.items()}
    with ExitStack() as stack:
        postgres = urlsplit(stack.enter_context(services.postgres()))
        broker = stack.enter_context(services.redis(folder))
        env = os.environ | {
            "DAGSTER_HOME": str(home),
            "REGULARS_SHOPS": os.pathsep.join(str(path) for path in files.values()),
            "DAGSTER_PG_HOST": postgres.hostname,
            "DAGSTER_PG_PORT": str(postgres.port),
            "DAGSTER_PG_USER": postgres.username,
            "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_PG_DB": postgres.path.lstrip("/"),
            "DAGSTER_CELERY_BROKER_URL": broker,
            "DAGSTER_CELERY_BACKEND_URL": broker,
        }
        (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config()))
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for name, value in env.items():
            patch.setenv(name, value)
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
        workers = stack.enter_context(services.celery_workers(2, EXAMPLE / "celery.yaml", env, folder, ROOT))
        workspace = stack.enter_context(services.code_server("pipelines.definitions", "regulars", env, folder, ROOT))
        stack.enter_context(services.dagster_daemon(workspace, env, folder, ROOT))
        yield Deployment(
            instance, env, workers, workspace, {shop_id: load_settings(path) for shop_id, path in files.items()}
        )


def assert_warehouse_as_in_process(deployment: Deployment, shop_id: str, tmp_path: Path) -> None:
    """The shop's warehouse equals, table for table, the one its successful runs give executed in process."""
    reference = shop(tmp_path / shop_id, **SHOPS[shop_id])
    succeeded = dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS], job_name=f"{shop_id}__{INGEST_JOB}")
    for run in deployment.instance.get_runs(succeeded):
        first = run.tags.get("dagster/partition") or run.tags[RANGE_START]
        ingest(reference, first, run.tags.get("dagster/partition") or run.tags[RANGE_END])
    deployed = deployment.shops[shop_id]
    assert tables(deployed) == tables(reference)
    for name in tables(reference):
        assert_frame_equal(table(deployed, name), table(reference, name), check_row_order=False)


def tables(settings) -> list[str]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        return sorted(
            name for (name,) in conn.sql("SELECT schema_name || '.' || table_name FROM duckdb_tables()").fetchall()
        )


def test_three_shops_runs_are_queued_and_executed_on_the_celery_workers(deployment, tmp_path):
    days = {"north": ["2024-03-01", "2024-03-02", "2024-03-03"], "west": ["2024-03-01", "2024-03-02"],
            "south": ["2024-03-01", "2024-03-02", "2024-03-03"]}  # fmt: skip
    # north's last eight months first (a run of several seconds: the other shops' one-day runs go to the other
    # worker meanwhile), then the three shops' backfills submitted at once, as three operators would: their runs
    # wait in the queue together
    deployment.launch_range("north", "2023-07-01", "2024-02-29")
    with ThreadPoolExecutor(max_workers=len(days)) as submit:
        list(submit.map(lambda shop_id: deployment.backfill(shop_id, *days[shop_id]), days))
    run_ids = [run_id for shop_id in days for run_id in deployment.ingest_runs(shop_id)]
    assert len(run_ids) == 1 + sum(map(len, days.values()))
    runs = deployment.wait_for_end(run_ids, timeout=240)

    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * len(run_ids), deployment.why(runs)
    # Each was handed to Celery and executed by a worker's pool process, not by the daemon or this test.
    workers = deployment.worker_processes()
    for run in runs:
        assert CELERY_TASK_TAG in run.tags
        assert deployment.run_pid(run.run_id) in workers
    # One shop, one writer: a shop's runs ran one after the other (its regulars/shop tag's limit in the queue);
    # different shops' runs ran side by side at least once.
    records = deployment.instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
    spans = [(r.dagster_run.tags[SHOP_TAG], r.start_time, r.end_time) for r in records]
    overlapping = [(a, b) for a in spans for b in spans if a is not b and a[1] < b[2] and b[1] < a[2]]
    assert not [(a[0], b[0]) for a, b in overlapping if a[0] == b[0]]
    assert [(a[0], b[0]) for a, b in overlapping if a[0] != b[0]], spans
    for shop_id in days:
        assert_warehouse_as_in_process(deployment, shop_id, tmp_path)


def test_a_run_whose_worker_is_killed_fails_and_leaves_nothing(deployment, tmp_path):
    instance = deployment.instance
    run_id = deployment.launch_range("north", SHOPS["north"]["history_start"], "2024-12-31")
    pid = wait_for(lambda: deployment.run_pid(run_id), 120, "the run's worker process")
    assert pid in deployment.worker_processes()
    # kill -9 that process as soon as the run's step holds the warehouse's pool slot: the step claims it
    # first, then writes (about a second on this shop), so the kill lands before anything is published
    wait_for(
        lambda: run_id in deployment.slot_holders("north"), 120, "the run to hold the warehouse's pool slot", every=0.02
    )
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    # run monitoring asks Celery about the run's task, which its worker reports failed (its pool process died)
    (run,) = deployment.wait_for_end([run_id], timeout=BOUND_SECONDS)
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert "run worker status FAILED" in " ".join(deployment.why([run]))
    # killed before its step had published (a step reports its assets once their days are published)
    assert not instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION), "killed too late"
    wait_for(
        lambda: not deployment.slot_holders("north"),
        killed + BOUND_SECONDS - time.monotonic(),
        "the killed run's slot to be freed",
    )

    (next_run,) = deployment.wait_for_end(deployment.backfill("north", "2024-04-01"), timeout=120)
    assert next_run.status == dg.DagsterRunStatus.SUCCESS, deployment.why([next_run])
    # the killed run's days (all but 2024-04-01, and whatever ran before) are not in the warehouse
    assert_warehouse_as_in_process(deployment, "north", tmp_path)


def bucket_step_over(deployment: Deployment, settings, stages) -> list[dg.DagsterRun] | None:
    """The shop's bucket runs once none is due or running (or one failed), else None."""
    runs = deployment.instance.get_runs(dg.RunsFilter(tags={BUCKETS_TAG: settings.id}))
    if not runs or not all(run.is_finished for run in runs):
        return None
    if any(run.status != dg.DagsterRunStatus.SUCCESS for run in runs):
        return runs
    if due_bucket_runs(deployment.instance, settings, stages):
        return None
    # none due, unless because the sensor has just requested the next stage's runs (a run in flight is not due)
    again = deployment.instance.get_runs(dg.RunsFilter(tags={BUCKETS_TAG: settings.id}))
    return runs if {run.run_id for run in again} == {run.run_id for run in runs} else None


def test_a_bucketed_shops_bucket_runs_go_to_both_workers_after_its_load_and_equal_one_process(deployment):
    settings = deployment.shops["east"]
    stages = bucket_stages(build_definitions(settings).resolve_all_asset_specs())
    (loaded,) = deployment.wait_for_end([deployment.launch_range("east", "2024-01-01", "2024-02-29")], timeout=120)
    assert loaded.status == dg.DagsterRunStatus.SUCCESS, deployment.why([loaded])

    # nobody asks: the daemon's buckets sensor sees the load and requests each stage once the one before is done
    runs = wait_for(lambda: bucket_step_over(deployment, settings, stages), 180, "the bucket step to end")
    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * len(runs), deployment.why(runs)
    expected = [(job_name(settings, stage.job), partition) for stage in stages for partition in stage.partition_keys]
    assert sorted((run.job_name, run.tags.get("dagster/partition") or "") for run in runs) == sorted(
        (job, partition or "") for job, partition in expected
    )
    workers = deployment.worker_processes()
    for run in runs:
        assert CELERY_TASK_TAG in run.tags and deployment.run_pid(run.run_id) in workers
        assert run.tags[BUCKETS_TAG] == "east" and SHOP_TAG not in run.tags  # not one at a time like the shop's
    records = deployment.instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id for run in runs]))
    spans = {(r.dagster_run.job_name, r.dagster_run.tags.get("dagster/partition")): (r.start_time, r.end_time)
             for r in records}  # fmt: skip
    # a stage starts once every run of the stage before has ended
    for before, after in zip(stages, stages[1:], strict=False):
        ended = max(end for (job, _), (_, end) in spans.items() if job == job_name(settings, before.job))
        assert all(start > ended for (job, _), (start, _) in spans.items() if job == job_name(settings, after.job))
    # two buckets' runs of a stage at the same time, on the two workers
    assert [(a, b) for a in spans for b in spans if a[0] == b[0] and a != b
            and spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1]], spans  # fmt: skip
    # the files: the customer step of the shop's orders in one process, as of the last day loaded
    as_of = date(2024, 2, 29)
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        whole = customer_snapshot(read_orders(conn, as_of), as_of, settings)
    assert whole.facts.height > 300  # the customers who bought in two months: not a comparison of nothing
    assert_same_snapshot(read_customers(settings), whole)
