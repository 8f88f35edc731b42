"""Recovery after a crash: a run whose process died is failed and its warehouse slot freed the next time
`regulars` runs; a run whose process lives is left alone and named while others wait for it."""

import os
import shutil
import signal
import subprocess
import sys
import time

import dagster as dg
import duckdb
import polars as pl
import pytest
import yaml
from dagster._core.test_utils import create_run_for_test, instance_for_test

from pipelines.definitions import build_definitions
from pipelines.progress import heartbeat
from pipelines.recovery import BOOT_TAG, HOST_TAG, PID_TAG, clean_up_after_crashes, process_tags, waiting_for
from pipelines.sources import order_source
from pipelines.warehouse import WAREHOUSE_POOL
from tests.conftest import ROOT, shop


def source_rows(settings) -> int:
    source = order_source(settings)
    return sum(source.scan(file.name).select(pl.len()).collect().item() for file in source.files())


@pytest.fixture
def instance():
    with instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as instance:
        instance.event_log_storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
        yield instance


def _holding_the_warehouse(instance, tags: dict, status=dg.DagsterRunStatus.STARTED) -> dg.DagsterRun:
    """A run of the ingest job that has claimed the warehouse slot."""
    run = create_run_for_test(instance, job_name="ingest_orders_job", status=status, tags=tags)
    assert instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, run.run_id, "ingest_orders").is_claimed
    return run


def _waiting_for_the_warehouse(instance) -> dg.DagsterRun:
    run = create_run_for_test(
        instance, job_name="customers_job", status=dg.DagsterRunStatus.STARTED, tags=process_tags()
    )
    assert not instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, run.run_id, "customers").is_claimed
    return run


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _holders(instance) -> set[str]:
    return instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).active_run_ids


def test_a_live_holder_is_left_alone_and_named_to_the_run_that_waits(instance):
    holder = _holding_the_warehouse(instance, process_tags())  # this test's process: alive
    waiter = _waiting_for_the_warehouse(instance)
    assert clean_up_after_crashes(instance) == []
    assert _holders(instance) == {holder.run_id}
    assert waiting_for(instance, waiter.run_id, WAREHOUSE_POOL) == (
        f"waiting for the warehouse: run {holder.run_id[:8]} (ingest_orders_job, pid {os.getpid()}) holds it (a run"
        " whose process died is failed and its slot freed by the next `regulars` run, or by the daemon within a"
        " minute; end a stuck one in the UI)"
    )
    assert waiting_for(instance, holder.run_id, WAREHOUSE_POOL) is None  # it holds the slot, it does not wait


def test_a_holder_whose_process_is_gone_is_failed_and_its_slot_freed(instance):
    pid = _dead_pid()
    holder = _holding_the_warehouse(instance, process_tags() | {PID_TAG: str(pid)})
    waiter = _waiting_for_the_warehouse(instance)
    assert clean_up_after_crashes(instance) == [
        f"cleaned up run {holder.run_id[:8]} (ingest_orders_job): its process {pid} is gone; "
        "marked failed, freed its warehouse slot"
    ]
    assert instance.get_run_by_id(holder.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, waiter.run_id, "customers").is_claimed


def test_after_a_restart_of_the_machine_a_pid_that_lives_again_is_not_the_run_s(instance):
    holder = _holding_the_warehouse(instance, process_tags() | {BOOT_TAG: "an earlier boot"})
    assert clean_up_after_crashes(instance)[0].startswith(f"cleaned up run {holder.run_id[:8]}")
    assert instance.get_run_by_id(holder.run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_run_of_another_machine_is_not_judged_here(instance):
    holder = _holding_the_warehouse(instance, process_tags() | {HOST_TAG: "elsewhere", PID_TAG: str(_dead_pid())})
    assert clean_up_after_crashes(instance) == []
    assert instance.get_run_by_id(holder.run_id).status == dg.DagsterRunStatus.STARTED
    assert _holders(instance) == {holder.run_id}


def test_a_slot_still_held_by_a_run_that_is_over_is_freed(instance):
    # e.g. a run marked failed in the UI after its process was killed
    holder = _holding_the_warehouse(instance, {}, status=dg.DagsterRunStatus.FAILURE)
    assert clean_up_after_crashes(instance) == [
        f"cleaned up run {holder.run_id[:8]} (ingest_orders_job): it is over but still held the warehouse slot, "
        "now freed"
    ]
    assert _holders(instance) == set()


def test_the_heartbeat_says_what_it_waits_for(capsys):
    said = ""
    with heartbeat("Orders", every_seconds=0, waiting=lambda: "waiting for the warehouse: run 1a2b3c4d holds it"):
        deadline = time.monotonic() + 10
        while "..." not in said and time.monotonic() < deadline:
            time.sleep(0.1)
            said += capsys.readouterr().out
    assert said.startswith("      ... waiting for the warehouse: run 1a2b3c4d holds it (")


RECONCILE = """
WITH raw AS (SELECT order_date, count(*) AS n FROM raw.orders GROUP BY ALL),
     kept AS (SELECT order_date, count(*) AS n FROM staging.order_lines GROUP BY ALL),
     refused AS (SELECT order_date, count(*) AS n FROM staging.rejects GROUP BY ALL)
SELECT coalesce(raw.order_date, kept.order_date, refused.order_date) AS day, coalesce(raw.n, 0) AS rows_in,
       coalesce(kept.n, 0) + coalesce(refused.n, 0) AS kept_or_refused
FROM raw FULL JOIN kept USING (order_date) FULL JOIN refused USING (order_date)
"""


@pytest.mark.parametrize("launcher", ["regulars run", "dagster asset materialize"])
def test_a_run_killed_mid_ingest_is_cleaned_up_and_the_next_run_finishes(tmp_path, monkeypatch, launcher):
    settings = shop(tmp_path)
    config = tmp_path / "shop.yaml"
    config.write_text(yaml.safe_dump({
        "id": settings.id, "name": "test shop", "timezone": "Asia/Shanghai", "history_start": "2024-01-01",
        "history_end": "2024-12-31",
        "source": {"kind": "synthetic", "seed": 7, "customers": 400},
    }))  # the shop of `settings`, whose warehouse and output the environment names  # fmt: skip
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home)
    env = os.environ | {"DAGSTER_HOME": str(home), "REGULARS_WAREHOUSE": str(settings.warehouse),
                        "REGULARS_OUTPUT": str(settings.output), "REGULARS_CONFIG": str(config)}  # fmt: skip
    regulars = [sys.executable, "-m", "pipelines.cli", "run", "--config", str(config)]
    dagster = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "pipelines.definitions",
               "--select", f"{settings.id}/staging/orders", "--partition-range", "2024-01-01...2024-12-31"]  # fmt: skip
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the instance's event log storage reads it

    first = subprocess.Popen(regulars if launcher == "regulars run" else dagster, env=env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    with dg.DagsterInstance.get() as instance:
        deadline = time.monotonic() + 180

        def ingesting() -> dg.DagsterRun | None:  # holds the slot, and its step has said which process it is
            slots = instance.event_log_storage.get_concurrency_info(settings.pool).claimed_slots
            run = slots and instance.get_run_by_id(slots[0].run_id)
            return run if run and PID_TAG in run.tags else None

        while not (killed := ingesting()):
            assert first.poll() is None and time.monotonic() < deadline, "the first run never reached its ingest"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert (int(killed.tags[PID_TAG]), killed.status) == (first.pid, dg.DagsterRunStatus.STARTED)

        second = subprocess.run(regulars, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stdout + second.stderr
        assert (
            f"cleaned up run {killed.run_id[:8]} ({killed.job_name}): its process {first.pid} is gone; "
            f"marked failed, freed its {settings.pool} slot"
        ) in second.stdout
        assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE

    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        days = conn.execute(RECONCILE).fetchall()
    assert [day for day in days if day[1] != day[2]] == []
    assert sum(day[1] for day in days) == source_rows(settings)


def test_the_daemon_cleans_up_after_a_regulars_run_too(instance, tmp_path):
    pid = _dead_pid()
    holder = _holding_the_warehouse(instance, process_tags() | {PID_TAG: str(pid)})
    sensor = build_definitions(shop(tmp_path)).resolve_sensor_def("clean_up_after_crashes")
    skipped = sensor(dg.build_sensor_context(instance=instance))
    assert skipped.skip_message.startswith(f"cleaned up run {holder.run_id[:8]} (ingest_orders_job): its process {pid}")
    assert instance.get_run_by_id(holder.run_id).status == dg.DagsterRunStatus.FAILURE
    assert _holders(instance) == set()


def test_two_runs_started_at_once_both_finish_every_time(tmp_path):
    # Dagster's claim checked for a free slot and then queued; a slot freed in between went to nobody,
    # and the step waited forever (without the fix this hung within 25 rounds here).
    rounds, home = 40, tmp_path / "dagster"
    env = os.environ | {"DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT)}
    logs = {name: (tmp_path / f"{name}.out", tmp_path / f"{name}.err") for name in ("a", "b")}
    racers = [
        subprocess.Popen([sys.executable, str(ROOT / "tests" / "pool_racer.py"), name, str(rounds), str(tmp_path)],
                         env=env, stdout=out.open("w"), stderr=err.open("w"))
        for name, (out, err) in logs.items()
    ]  # fmt: skip
    try:
        for racer in racers:
            racer.wait(timeout=300)
    finally:
        for racer in racers:
            racer.kill()
    for racer, (out, err) in zip(racers, logs.values(), strict=True):
        assert racer.returncode == 0, err.read_text()[-2000:]
        assert len(out.read_text().splitlines()) == rounds
