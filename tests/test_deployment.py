"""The production deployment of examples/deployment on loopback: Postgres instance storage, the queued run
coordinator, runs launched onto two Celery workers (Redis), the daemon. Runs are submitted as an operator
would (`dagster job backfill` / `dagster job launch`), then the deployment's warehouse is set against the
same runs executed in process; and a run whose worker process is killed with kill -9 ends failed, its pool
slot free, without a trace in the warehouse.

The services are Debian's `postgresql` and `redis-server` (the README's test command installs them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import duckdb
import pytest
import yaml
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from polars.testing import assert_frame_equal

from pipelines.definitions import INGEST_JOB
from pipelines.settings import load_settings
from pipelines.warehouse import WAREHOUSE_POOL
from tests import services
from tests.conftest import ROOT, ingest, shop, shop_file, table

EXAMPLE = ROOT / "examples" / "deployment"
SHOP_TAG = "regulars/shop"
# a killed run is failed and its pool slot freed within this (run monitoring polls every second here)
BOUND_SECONDS = 30
CELERY_TASK_TAG = "dagster-celery/task_id"  # set by CeleryRunLauncher on each run it hands to a worker
# The deployment's shops: id -> settings (tests/conftest.py `shop`), each in its own folder and warehouse.
# One until the multi-shop wiring, which reads them all (REGULARS_SHOPS) instead of REGULARS_CONFIG.
SHOPS = {
    "deployed": {"name": "deployed shop", "history_start": "2023-01-01",
                 "source": {"kind": "synthetic", "seed": 7, "customers": 3000}},
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

    def backfill(self, shop: str, *partitions: str) -> list[str]:
        """One queued run of the shop's ingest per partition; their run ids."""
        before = {run.run_id for run in self.instance.get_runs()}
        self.dagster("job", "backfill", "-j", INGEST_JOB, "--partitions", ",".join(partitions), "--noprompt",
                     tags={SHOP_TAG: shop})  # fmt: skip
        return [run.run_id for run in self.instance.get_runs() if run.run_id not in before]

    def launch_range(self, shop: str, first: str, last: str) -> str:
        """One queued run of the shop's ingest over the days first..last; its run id."""
        before = {run.run_id for run in self.instance.get_runs()}
        tags = {SHOP_TAG: shop, ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}
        self.dagster("job", "launch", "-j", INGEST_JOB, tags=tags)
        (run_id,) = {run.run_id for run in self.instance.get_runs()} - before
        return run_id

    def wait_for_end(self, run_ids: list[str], timeout: float) -> list[dg.DagsterRun]:
        def finished():
            runs = self.instance.get_runs(dg.RunsFilter(run_ids=run_ids))
            return runs if all(run.is_finished for run in runs) else None

        return wait_for(finished, timeout, f"runs {', '.join(run_id[:8] for run_id in run_ids)} to end")

    def why(self, runs: list[dg.DagsterRun]) -> list[str]:
        """Why each run that did not succeed failed, for an assertion's message."""
        return [f"{run.run_id[:8]} {run.status.value}: {record.message}" for run in runs
                if run.status != dg.DagsterRunStatus.SUCCESS
                for record in self.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)]  # fmt: skip

    def run_pid(self, run_id: str) -> int | None:
        """The process that executes the run: its worker announces it when the run starts."""
        for record in self.instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            if record.message.startswith("Started process for run"):
                return int(record.dagster_event.engine_event_data.metadata["pid"].value)
        return None

    def slot_holders(self) -> set[str]:
        """The runs holding a slot of the warehouse's pool."""
        return self.instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).active_run_ids

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
            "REGULARS_CONFIG": str(next(iter(files.values()))),
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


def wait_for(condition, timeout: float, what: str, every: float = 0.5):
    """The first true value of `condition()`, asked every `every` seconds for at most `timeout`."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(every)
    return value


def assert_warehouse_as_in_process(deployment: Deployment, shop_id: str, tmp_path: Path) -> None:
    """The shop's warehouse equals, table for table, the one its successful runs give executed in process."""
    reference = shop(tmp_path / shop_id, **SHOPS[shop_id])
    succeeded = dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS], tags={SHOP_TAG: shop_id})
    for run in deployment.instance.get_runs(succeeded):
        first = run.tags.get("dagster/partition") or run.tags[ASSET_PARTITION_RANGE_START_TAG]
        ingest(reference, first, run.tags.get("dagster/partition") or run.tags[ASSET_PARTITION_RANGE_END_TAG])
    deployed = deployment.shops[shop_id]
    assert tables(deployed) == tables(reference)
    for name in tables(reference):
        # when a run loaded a source file (raw.source_files.loaded_ts) differs between any two runs
        assert_frame_equal(
            table(deployed, name).drop("loaded_ts", strict=False),
            table(reference, name).drop("loaded_ts", strict=False),
            check_row_order=False,
        )


def tables(settings) -> list[str]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        return sorted(
            name for (name,) in conn.sql("SELECT schema_name || '.' || table_name FROM duckdb_tables()").fetchall()
        )


def test_runs_are_queued_and_executed_on_the_celery_workers(deployment, tmp_path):
    days = ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]
    run_ids = deployment.backfill("deployed", *days)
    assert len(run_ids) == len(days)
    runs = deployment.wait_for_end(run_ids, timeout=120)

    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * len(days), deployment.why(runs)
    # Each was handed to Celery and executed by a worker's pool process, not by the daemon or this test.
    workers = deployment.worker_processes()
    for run in runs:
        assert CELERY_TASK_TAG in run.tags
        assert deployment.run_pid(run.run_id) in workers
    # One shop, one writer: its runs ran one after the other (its tag's limit; the queue also holds a run
    # until the warehouse's pool has a slot).
    records = sorted(deployment.instance.get_run_records(dg.RunsFilter(run_ids=run_ids)), key=lambda r: r.start_time)
    for earlier, later in zip(records, records[1:], strict=False):
        assert earlier.end_time <= later.start_time
    assert_warehouse_as_in_process(deployment, "deployed", tmp_path)


def test_a_run_whose_worker_is_killed_fails_and_leaves_nothing(deployment, tmp_path):
    instance = deployment.instance
    run_id = deployment.launch_range("deployed", SHOPS["deployed"]["history_start"], "2024-12-31")
    pid = wait_for(lambda: deployment.run_pid(run_id), 120, "the run's worker process")
    assert pid in deployment.worker_processes()
    # kill -9 that process as soon as the run's step holds the warehouse's pool slot: the step claims it
    # first, then writes (about a second on this shop), so the kill lands before anything is published
    wait_for(lambda: run_id in deployment.slot_holders(), 120, "the run to hold the warehouse's pool slot", every=0.02)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()

    # run monitoring asks Celery about the run's task, which its worker reports failed (its pool process died)
    (run,) = deployment.wait_for_end([run_id], timeout=BOUND_SECONDS)
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert "run worker status FAILED" in " ".join(deployment.why([run]))
    # killed before its step had published (a step reports its assets once their days are published)
    assert not instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION), "killed too late"
    wait_for(
        lambda: not deployment.slot_holders(),
        killed + BOUND_SECONDS - time.monotonic(),
        "the killed run's slot to be freed",
    )

    (next_run,) = deployment.wait_for_end(deployment.backfill("deployed", "2024-04-01"), timeout=120)
    assert next_run.status == dg.DagsterRunStatus.SUCCESS, deployment.why([next_run])
    # the killed run's days (all but 2024-04-01, and whatever ran before) are not in the warehouse
    assert_warehouse_as_in_process(deployment, "deployed", tmp_path)
