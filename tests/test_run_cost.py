"""What a run costs Dagster: partitions that end with the shop's history, one asset recorded per day (the
three tables its step writes with it once a run), and the instance's event log writing a backfill's per-day
events in batches while the UI still sees every day loaded."""

import shutil
from datetime import date, timedelta

import dagster as dg
from dagster.version import __version__ as dagster_version

from assets.orders import ORDER_LINES, RAW_ORDERS, REJECTS, STAGING_ORDERS
from pipelines.definitions import INGEST_JOB, RANGE_END, RANGE_START, daily_partitions, shop_job
from pipelines.event_log import CHECKED_WITH_DAGSTER, BatchedSqliteEventLogStorage
from tests.conftest import COLUMNS, ROOT, shop, table


def test_partitions_end_at_history_end_or_yesterday(tmp_path):
    keys = daily_partitions(shop(tmp_path)).get_partition_keys()  # history 2024-01-01 .. 2024-12-31
    assert (keys[0], keys[-1], len(keys)) == ("2024-01-01", "2024-12-31", 366)
    open_ended = shop(tmp_path, history_end=None, source={"kind": "file", "path": "x.csv", "columns": COLUMNS})
    keys = daily_partitions(open_ended).get_partition_keys()
    assert date.fromisoformat(keys[-1]) >= date.today() - timedelta(days=2)  # yesterday in the shop's zone


def test_a_backfill_records_every_day_of_staging_orders_and_the_other_order_tables_once(tmp_path, monkeypatch):
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    settings = shop(tmp_path)
    job = shop_job(settings, INGEST_JOB)
    tags = {RANGE_START: "2024-03-01", RANGE_END: "2024-03-31"}
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, BatchedSqliteEventLogStorage)
        run = job.execute_in_process(instance=instance, tags=tags)
        march = {f"2024-03-{day:02d}" for day in range(1, 32)}
        assert instance.get_materialized_partitions(settings.key(STAGING_ORDERS)) == march
        events = instance.all_logs(run.run_id)
        planned = [e for e in events if e.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED]
        stored = [e for e in events if e.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION]
        assert (len(planned), len(stored)) == (1, 31 + 3)  # staging/orders planned once and stored per day
        written_with_it = {RAW_ORDERS: "raw.orders", ORDER_LINES: "staging.order_lines", REJECTS: "staging.rejects"}
        for key, name in written_with_it.items():  # once a run, for the whole range
            record = instance.get_latest_materialization_event(settings.key(key))
            assert (record.run_id, record.dagster_event.partition) == (run.run_id, None)
            assert record.asset_materialization.metadata["rows"].value == table(settings, name).height
        raw = instance.get_latest_materialization_event(settings.key(RAW_ORDERS)).asset_materialization
        assert raw.metadata["window"].value == "2024-03-01 .. 2024-03-31"
        latest = instance.get_latest_materialization_event(settings.key(STAGING_ORDERS))
        assert (latest.run_id, latest.dagster_event.partition) == (run.run_id, "2024-03-31")
        # re-running one day is recorded as that day's newest materialization
        again = job.execute_in_process(instance=instance, partition_key="2024-03-05")
        record = instance.get_latest_materialization_event(settings.key(STAGING_ORDERS))
        assert (record.run_id, record.dagster_event.partition) == (again.run_id, "2024-03-05")
        assert instance.get_materialized_partitions(settings.key(STAGING_ORDERS)) == march
        record = instance.get_latest_materialization_event(settings.key(REJECTS))
        assert (record.run_id, record.dagster_event.partition) == (again.run_id, None)


def test_wiping_the_instance_closes_the_event_logs_open_databases(tmp_path):
    storage = BatchedSqliteEventLogStorage(str(tmp_path / "runs"))
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        run = instance.create_run_for_job(dg.JobDefinition(graph_def=dg.GraphDefinition("g")))
    for _ in range(2):  # a wipe between writes: the second write goes to a new, empty run database
        storage.store_event(
            dg.EventLogEntry(error_info=None, level="INFO", user_message="hello", run_id=run.run_id,
                             timestamp=1.0, step_key=None, job_name="g", dagster_event=None)
        )  # fmt: skip
        assert len(storage.get_records_for_run(run.run_id).records) == 1
        storage.wipe()
    storage.dispose()


def test_an_upgrade_of_dagster_is_checked_before_the_event_log_storage_runs_on_it():
    # pipelines/event_log.py reaches into Dagster's private storage classes: a new release may change them
    assert dagster_version == CHECKED_WITH_DAGSTER, (
        f"Dagster {dagster_version} is installed, pipelines/event_log.py was checked with {CHECKED_WITH_DAGSTER}: "
        "run the tests and bench/backfill.py on it (or drop the storage from dagster.yaml), then move the constant"
    )
