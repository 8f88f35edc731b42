"""The bucket step's sequence (pipelines/operations.py): its stages read from the customer_buckets group, the runs
the daemon's sensor requests, and `regulars run`'s in-process runs of the same sequence. The same sequence through
the Celery deployment is in tests/test_deployment.py."""

from datetime import date

import dagster as dg
import duckdb

from assets.customers import read_orders
from assets.customers.bucket_assets import BUCKET_CUSTOMERS, BUCKET_CUTS, BUCKET_SUMMARIES, BUCKETS_GROUP
from assets.customers.buckets import labels, read_customers
from assets.customers.snapshot import customer_snapshot
from pipelines.cli import run_buckets
from pipelines.definitions import INGEST_JOB, RANGE_END, RANGE_START, build_definitions, job_name
from pipelines.operations import BUCKET_RUN_TAG, BUCKETS_TAG, SHOP_TAG, bucket_stages, due_bucket_runs
from tests.conftest import shop
from tests.test_buckets import assert_same_snapshot


def test_a_stage_holds_what_runs_partition_for_partition_and_the_merges_cut_between_stages():
    buckets = dg.StaticPartitionsDefinition(["a", "b"])

    def spec(name, *deps, partitioned=True, group=BUCKETS_GROUP):
        return dg.AssetSpec(name, deps=deps, group_name=group, partitions_def=buckets if partitioned else None)

    every_bucket = dg.AssetDep("finish", partition_mapping=dg.AllPartitionMapping())
    specs = [
        spec("orders", group="orders"),  # outside the group: not staged
        spec("summary", "orders"),
        spec("values", "summary"),  # bucket for bucket after the summary: in its run
        spec("merge", "values", partitioned=False),
        spec("fit", "merge", partitioned=False),  # after the merge, one run: with it
        spec("finish", "merge", "summary"),
        spec("totals", every_bucket),  # every bucket's finish in each of its partitions: a stage later
        spec("report", "fit", partitioned=False),
    ]
    staged = [([key.to_user_string() for key in stage.keys], stage.partition_keys) for stage in bucket_stages(specs)]
    assert staged == [
        (["summary", "values"], ["a", "b"]),
        (["fit", "merge", "report"], [None]),  # by name within a stage
        (["finish"], ["a", "b"]),
        (["totals"], ["a", "b"]),
    ]


def test_regulars_runs_the_bucket_step_in_process_as_the_sensor_requests_it(tmp_path):
    settings = shop(tmp_path, buckets=3, history_end="2024-01-31")
    defs = build_definitions(settings)
    stages = bucket_stages(defs.resolve_all_asset_specs())
    # the shop's three bucket assets: every bucket's summary, then the merge, then every bucket's finish
    assert [stage.partition_keys for stage in stages[:3]] == [labels(3), [None], labels(3)]
    for stage, key in zip(stages, (BUCKET_SUMMARIES, BUCKET_CUTS, BUCKET_CUSTOMERS), strict=False):
        assert settings.key(key) in stage.keys
    sensor = defs.resolve_sensor_def(f"{settings.id}__customer_buckets")
    ingest = defs.resolve_job_def(job_name(settings, INGEST_JOB))
    lines = []

    def tick(instance):
        """The run requests of a tick of the shop's buckets sensor."""
        return sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs)).run_requests

    with dg.DagsterInstance.ephemeral() as instance:
        assert not tick(instance)  # no orders loaded yet
        assert ingest.execute_in_process(instance=instance, tags={RANGE_START: "2024-01-01", RANGE_END: "2024-01-31"})
        assert run_buckets(settings, defs, instance, echo=lines.append) == []
        runs = instance.get_runs(dg.RunsFilter(tags={BUCKETS_TAG: settings.id}), ascending=True)
        expected = [(stage.job, partition) for stage in stages for partition in stage.partition_keys]
        assert [(run.job_name, run.tags.get("dagster/partition")) for run in runs] == [
            (job_name(settings, job), partition) for job, partition in expected
        ]
        assert all(run.is_success and SHOP_TAG not in run.tags for run in runs)
        assert not due_bucket_runs(instance, settings, stages)
        assert not tick(instance)

        # a day of orders loaded again: the sensor asks for the first stage again, a run per bucket, of the day
        # loaded last (2024-01-31, not the day loaded again)
        assert ingest.execute_in_process(instance=instance, tags={RANGE_START: "2024-01-10", RANGE_END: "2024-01-10"})
        requests = tick(instance)
        assert [(r.job_name, r.partition_key) for r in requests] == [
            (job_name(settings, stages[0].job), bucket) for bucket in labels(3)
        ]
        summaries = settings.key(BUCKET_SUMMARIES).to_python_identifier()
        assert {r.run_config["ops"][summaries]["config"]["as_of"] for r in requests} == {"2024-01-31"}
        assert all(r.tags[BUCKET_RUN_TAG].startswith(f"{stages[0].job}:") for r in requests)
        # a stage is asked for whole: with only bucket 02 computed again since that load (as a run queued before it
        # would be), buckets 00 and 01 alone would then be of another day than 02, and the merge would refuse them
        first = defs.resolve_job_def(job_name(settings, stages[0].job))
        assert first.execute_in_process(instance=instance, partition_key="02", run_config=requests[2].run_config)
        assert [(r.job_name, r.partition_key) for r in tick(instance)] == [
            (job_name(settings, stages[0].job), bucket) for bucket in labels(3)
        ]
    assert "[1] Customer buckets: customer_summaries, history_counts of bucket 00 ..." in lines
    # the files the runs wrote: the customer step of all orders in one process
    as_of = date(2024, 1, 31)
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        whole = customer_snapshot(read_orders(conn, as_of), as_of, settings)
    assert whole.facts.height > 100
    assert_same_snapshot(read_customers(settings), whole)
