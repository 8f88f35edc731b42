"""Runs started every way a deployment starts them, on the shipped instance settings (SQLite, run monitoring, a run
queue one run per shop), each killed with kill -9 mid-run: the run ends failed, its pool slot is given back within
a bound, and the run that follows leaves the warehouse as if the killed run never was.

The ways, one shop each, side by side in one deployment (a code server, the daemon, the webserver):
- `dagster job launch` (the `dagster` commands);
- the UI: the GraphQL mutation its Launchpad button sends, through dagster-webserver;
- the daemon's schedule: the shop's daily schedule set to the coming minute, ticking for real;
- the daemon's sensor: the events sensor planning an event once its first day is loaded, and asking for the step
  again after its run was killed.
Every one is queued, then launched by the default run launcher onto the code server, which starts a run worker.
`regulars run` and `dagster asset materialize` (in process) are killed in tests/test_recovery.py, a run on a Celery
worker in tests/test_deployment.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest
import yaml
from dagster_graphql import DagsterGraphQLClient
from polars.testing import assert_frame_equal

from pipelines.definitions import CAMPAIGNS_JOB, DAILY_JOB, INGEST_JOB, RANGE_END, RANGE_START, job_name, shop_job
from pipelines.operations import EVENT_STEP_TAG, SHOP_TAG
from pipelines.recovery import PID_TAG
from pipelines.settings import ShopSettings, load_settings
from tests import services
from tests.conftest import ROOT, ingest, shop, shop_file, table
from tests.services import wait_for

# The killed run is failed and its slot freed within this. The code server that started the worker notices it
# died within half a second (its clean-up tick) and fails the run; run monitoring frees the slot of a run over
# for `free_slots_after_run_end_seconds`, asked every `poll_interval_seconds` (1 s and 1 s here; shipped: 30 and
# 30, so up to about a minute). Measured: failed after 0.4 s, slot free after about 2 s (shipped timings: 0.5 s and
# 53 s). The sensor `clean_up_after_crashes` plays no part: it ticks when the daemon starts, then a minute later.
GRPC_INFO_TAG = ".dagster/grpc_info"  # set by the default run launcher on a run it hands to a code server
BOUND_SECONDS = 15
YEAR = ("2024-01-01", "2024-12-31")  # the killed runs of `dagster job launch` and the UI: a year's ingest
NEXT_DAY = "2024-11-11"  # inside that year; the busiest day of this small shop
# the sensor's shop: its orders up to the first day of 618's build-up, which makes the event's baseline due
SENSOR_EVENT, SENSOR_STEP, SENSOR_DAYS = "618-2024", "build_up", ("2024-04-01", "2024-05-18")
NO_EVENTS = {"presets": []}


def instance_config() -> dict:
    """The project's shipped instance settings, with run monitoring on the test's clock."""
    config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    config["run_monitoring"] |= {"poll_interval_seconds": 1, "free_slots_after_run_end_seconds": 1}
    return config


def coming_minute(zone: str) -> datetime:
    """The start of a minute at least 50 s away (the daemon starts meanwhile), in `zone`."""
    soon = datetime.now(ZoneInfo(zone)) + timedelta(seconds=50)
    return soon.replace(second=0, microsecond=0) + timedelta(minutes=1)


def away_from(now: datetime) -> dict:
    """Schedule settings that will not tick while the test runs: twelve hours from now."""
    return {"schedule_hour": (now.hour + 12) % 24}


class Deployment:
    """The running deployment: its instance, workspace and webserver, and the shops it serves."""

    def __init__(self, instance: dg.DagsterInstance, env: dict, workspace: Path, ui_port: int, shops: dict):
        self.instance, self.env, self.workspace, self.ui_port = instance, env, workspace, ui_port
        self.shops = shops  # id -> (its settings, the overrides of tests/conftest.py's shop they were made with)

    def new_run(self, job: str, submit: Callable[[], None]) -> str:
        """The id of the one run of the job that `submit` adds (the daemon's sensors start others meanwhile)."""
        shops_runs = dg.RunsFilter(job_name=job)
        before = {run.run_id for run in self.instance.get_runs(shops_runs)}
        submit()
        (run_id,) = {run.run_id for run in self.instance.get_runs(shops_runs)} - before
        return run_id

    def dagster(self, *args: str) -> None:
        """The `dagster` CLI on the deployment's workspace, as an operator submits runs."""
        command = [str(services.VENV_BIN / "dagster"), *args, "-w", str(self.workspace)]
        done = subprocess.run(command, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

    def launch(self, settings: ShopSettings, first: str, last: str) -> str:
        """`dagster job launch` of the shop's ingest over first..last; its run id."""
        tags = {SHOP_TAG: settings.id, RANGE_START: first, RANGE_END: last}
        job = job_name(settings, INGEST_JOB)
        return self.new_run(job, lambda: self.dagster("job", "launch", "-j", job, "--tags", json.dumps(tags)))

    def launch_from_ui(self, settings: ShopSettings, first: str, last: str) -> str:
        """The shop's ingest over first..last launched as the UI's Launchpad does (GraphQL, the webserver)."""
        client = DagsterGraphQLClient("127.0.0.1", port_number=self.ui_port)
        tags = {SHOP_TAG: settings.id, RANGE_START: first, RANGE_END: last}
        return client.submit_job_execution(job_name(settings, INGEST_JOB), repository_location_name="regulars",
                                           tags=tags)  # fmt: skip

    def rerun_day(self, settings: ShopSettings, day: str) -> str:
        """The shop's daily job for one day again, as an operator re-runs a partition; its run id."""
        job = job_name(settings, DAILY_JOB)
        backfill = ["job", "backfill", "-j", job, "--partitions", day, "--noprompt"]
        return self.new_run(job, lambda: self.dagster(*backfill))

    def ended(self, run_id: str) -> dg.DagsterRun | None:
        run = self.instance.get_run_by_id(run_id)
        return run if run.is_finished else None

    def messages(self, run_id: str, kind: dg.DagsterEventType) -> list[str]:
        return [record.message for record in self.instance.all_logs(run_id, of_type=kind)]

    def succeeds(self, run_id: str) -> None:
        run = wait_for(lambda: self.ended(run_id), 180, f"run {run_id[:8]} to end")
        failures = [
            event.dagster_event.step_failure_data.error.to_string()
            for event in self.instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        ]
        assert run.status == dg.DagsterRunStatus.SUCCESS, failures

    def kill_mid_step(self, settings: ShopSettings, run_id: str) -> dg.DagsterRun:
        """kill -9 the run's worker once a step holds the warehouse's pool slot and has named its process (the
        step claims the slot first, then writes); the run once failed, its slot freed, both within the bound."""
        slots = self.instance.event_log_storage

        def in_step() -> int | None:
            pid = run_id in slots.get_concurrency_info(settings.pool).active_run_ids and (
                self.instance.get_run_by_id(run_id).tags.get(PID_TAG)
            )
            return int(pid) if pid else None

        pid = wait_for(in_step, 180, f"run {run_id[:8]} to hold {settings.pool}", every=0.02)
        assert GRPC_INFO_TAG in self.instance.get_run_by_id(run_id).tags  # launched onto the code server ...
        assert pid != os.getpid()  # ... and executed by a run worker of its own
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        run = wait_for(lambda: self.ended(run_id), BOUND_SECONDS, "the killed run to end", every=0.1)
        assert run.status == dg.DagsterRunStatus.FAILURE
        # failed by the code server that started the worker (it watches its run workers)
        noticed = f"[DagsterApiServer] Run execution process for {run_id} was terminated by signal 9 (SIGKILL)."
        assert [m for m in self.messages(run_id, dg.DagsterEventType.ENGINE_EVENT) if m.startswith(noticed)]
        wait_for(lambda: run_id not in slots.get_concurrency_run_ids(), killed + BOUND_SECONDS - time.monotonic(),
                 "the killed run's slot to be freed", every=0.1)  # fmt: skip
        print(f"{settings.id}: killed run failed, its slot freed within {time.monotonic() - killed:.1f} s")
        return run


def tables(settings: ShopSettings) -> list[str]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        return sorted(
            name for (name,) in conn.sql("SELECT schema_name || '.' || table_name FROM duckdb_tables()").fetchall()
        )


def in_process(settings: ShopSettings, job: str, instance: dg.DagsterInstance | None = None, **kwargs) -> None:
    """The shop's job executed in this process, on `instance` (default: an ephemeral one)."""
    with ExitStack() as stack:
        instance = instance or stack.enter_context(dg.DagsterInstance.ephemeral())
        assert shop_job(settings, job).execute_in_process(instance=instance, **kwargs).success


def assert_same_warehouse(settings: ShopSettings, reference: ShopSettings) -> None:
    assert tables(settings) == tables(reference)
    for name in tables(reference):
        assert_frame_equal(table(settings, name), table(reference, name), check_row_order=False)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("launched")
    tick = coming_minute("UTC")
    shops = {
        "cli": {"events": NO_EVENTS, "operations": away_from(datetime.now(ZoneInfo("Asia/Shanghai")))},
        "ui": {"events": NO_EVENTS, "operations": away_from(datetime.now(ZoneInfo("Asia/Shanghai")))},
        # its daily run ticks at `tick`, for the day before, the last of a two-month history
        "schedule": {"events": NO_EVENTS, "timezone": "UTC", "history_end": str(tick.date() - timedelta(days=1)),
                     "history_start": str(tick.date() - timedelta(days=60)),
                     "operations": {"schedule_hour": tick.hour, "schedule_minute": tick.minute}},
        "sensor": {"events": {"presets": ["618"]}, "history_start": SENSOR_DAYS[0], "history_end": SENSOR_DAYS[1],
                   "operations": away_from(datetime.now(ZoneInfo("Asia/Shanghai")))},
    }  # fmt: skip
    shops = {shop_id: {"id": shop_id} | overrides for shop_id, overrides in shops.items()}
    files = [shop_file(folder / shop_id, **overrides) for shop_id, overrides in shops.items()]
    home = folder / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config()))
    env = os.environ | {"DAGSTER_HOME": str(home), "REGULARS_SHOPS": os.pathsep.join(map(str, files))}
    ui_port = services.free_port()
    with ExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.setenv("DAGSTER_HOME", str(home))  # the instance's event log storage reads it
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(home)))
        settings = {path.parent.name: (load_settings(path), shops[path.parent.name]) for path in files}
        # the sensor's shop has its orders loaded up to the event's first day before the daemon starts: its sensor's
        # first tick asks for the event's baseline (then one tick a minute)
        loaded = {RANGE_START: SENSOR_DAYS[0], RANGE_END: SENSOR_DAYS[1]}
        in_process(settings["sensor"][0], INGEST_JOB, instance=instance, tags=loaded)
        workspace = stack.enter_context(services.code_server("pipelines.definitions", "regulars", env, folder, ROOT))
        stack.enter_context(services.dagster_daemon(workspace, env, folder, ROOT))
        stack.enter_context(services.webserver(workspace, ui_port, env, folder, ROOT))
        yield Deployment(instance, env, workspace, ui_port, settings)


def a_submitted_run(deployment: Deployment, way: str, tmp_path: Path) -> None:
    settings, overrides = deployment.shops[way]
    submit = deployment.launch if way == "cli" else deployment.launch_from_ui
    run_id = submit(settings, *YEAR)
    deployment.kill_mid_step(settings, run_id)
    # killed before its step published anything (a step reports its assets once their days are published)
    assert not deployment.messages(run_id, dg.DagsterEventType.ASSET_MATERIALIZATION), f"{way}: killed too late"

    deployment.succeeds(submit(settings, NEXT_DAY, NEXT_DAY))
    # as if the killed run never was: table for table what the next run's day gives executed in process alone
    reference = shop(tmp_path / way, **overrides)
    ingest(reference, NEXT_DAY)
    assert_same_warehouse(settings, reference)


def a_scheduled_run(deployment: Deployment, tmp_path: Path) -> None:
    settings, overrides = deployment.shops["schedule"]
    daily = job_name(settings, DAILY_JOB)
    scheduled = dg.RunsFilter(job_name=daily, tags={"dagster/schedule_name": f"{daily}_schedule"})
    (run,) = wait_for(lambda: deployment.instance.get_runs(scheduled), 150, "the schedule's tick", every=0.02)
    day = run.tags["dagster/partition"]
    assert day == str(settings.history_end)  # yesterday's partition, in the shop's zone
    deployment.kill_mid_step(settings, run.run_id)

    deployment.succeeds(deployment.rerun_day(settings, day))
    # re-running the day leaves what its run gives executed in process alone
    reference = shop(tmp_path / "schedule", **overrides)
    in_process(reference, DAILY_JOB, partition_key=day)
    assert_same_warehouse(settings, reference)


def a_sensor_run(deployment: Deployment, tmp_path: Path) -> None:
    settings, overrides = deployment.shops["sensor"]
    step = dg.RunsFilter(tags={SHOP_TAG: settings.id, EVENT_STEP_TAG: f"{SENSOR_EVENT}:{SENSOR_STEP}"})
    (run,) = wait_for(lambda: deployment.instance.get_runs(step), 150, "the events sensor's request", every=0.02)
    assert run.job_name == job_name(settings, CAMPAIGNS_JOB) and run.tags["dagster/partition"] == SENSOR_EVENT
    deployment.kill_mid_step(settings, run.run_id)

    # the step is still due: the sensor's next tick asks for it again, under a new run key
    again = wait_for(lambda: [r for r in deployment.instance.get_runs(step) if r.run_id != run.run_id], 150,
                     "the sensor to ask again")  # fmt: skip
    (retry,) = again
    deployment.succeeds(retry.run_id)
    # as if the killed run never was: the days' ingest, then the event's run, executed in process
    reference = shop(tmp_path / "sensor", **overrides)
    ingest(reference, *SENSOR_DAYS)
    in_process(reference, CAMPAIGNS_JOB, partition_key=SENSOR_EVENT)
    assert_same_warehouse(settings, reference)


def test_a_run_killed_mid_step_whatever_started_it(deployment, tmp_path):
    # side by side, as the daemon ticks while operators launch: each way on a shop of its own
    ways = [lambda: a_submitted_run(deployment, "cli", tmp_path), lambda: a_submitted_run(deployment, "ui", tmp_path),
            lambda: a_scheduled_run(deployment, tmp_path), lambda: a_sensor_run(deployment, tmp_path)]  # fmt: skip
    with ThreadPoolExecutor(max_workers=len(ways)) as pool:
        for way in [pool.submit(way) for way in ways]:
            way.result()
