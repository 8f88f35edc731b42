"""The whole customer step of a large shop in customer buckets through Dagster: facts, RFM (lifecycle, tags),
segment history and customer value, bucket partitions and merges, equal to the step in one process."""

import time
from datetime import date

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.customers.bucket_assets import (
    BUCKET_CUSTOMERS,
    BUCKET_CUTS,
    BUCKET_HISTORY,
    BUCKET_HISTORY_COUNTS,
    BUCKET_HISTORY_CUTS,
    BUCKET_SUMMARIES,
    BUCKET_VALUE,
    BUCKET_VALUE_FIT,
)
from assets.customers.bucket_history import bucket_history, history_counts, merge_history_counts
from assets.customers.buckets import labels, read_bucket_results, read_customers
from assets.customers.history import empty_history, rebuild_from_orders, recorded_days
from assets.customers.snapshot import customer_snapshot
from assets.customers.value import HIGH_VALUE_AT_RISK, customer_value, fit, fit_on, with_value_tags
from assets.orders.buckets import buckets_folder, write_bucket_days
from pipelines.definitions import build_definitions
from tests.conftest import shop
from tests.test_buckets import split, staging_orders

BUCKETS = 8
CUSTOMERS = 2_330_000  # about 5 million orders (2.15 a customer over three years)


@pytest.mark.parametrize("threshold", ["mean", "median", "fixed"])
def test_the_segment_history_in_buckets_equals_the_history_of_all_customers(tmp_path, threshold):
    orders = staging_orders(20_000, seed=5)
    settings = shop(tmp_path, history_start="2023-01-01", history_end="2025-12-31", rfm={"threshold": threshold})
    first, as_of = orders["order_date"].min(), date(2025, 6, 30)
    buckets = split(orders, BUCKETS)
    days = recorded_days(first, as_of, 7)
    cuts = merge_history_counts([history_counts(bucket, days, settings) for bucket in buckets], settings)
    whole = rebuild_from_orders(empty_history(), orders, first, as_of, settings, 7)
    assert whole["valid_from"].n_unique() > 50 and whole.height > 40_000
    for bucket in buckets:
        ids = bucket["customer_id"].unique().implode()
        assert_frame_equal(bucket_history(bucket, cuts, settings), whole.filter(pl.col("customer_id").is_in(ids)))
    # not by chance: a bucket's history with the cuts of its own customers alone differs
    alone = rebuild_from_orders(empty_history(), buckets[0], first, as_of, settings, 7)
    assert not alone.equals(bucket_history(buckets[0], cuts, settings))


def test_a_history_with_a_look_back_window_is_not_counted_in_buckets(tmp_path):
    settings = shop(tmp_path, rfm={"lookback_days": 365})
    with pytest.raises(ValueError, match="rfm.lookback_days"):
        history_counts(staging_orders(100), [date(2025, 1, 1)], settings)


def test_a_five_million_order_shop_through_dagster_in_eight_bucket_partitions_equals_one_process(tmp_path):
    started = time.perf_counter()
    orders = staging_orders(CUSTOMERS)
    # the history recorded every 13 weeks (14 days over three years) rather than weekly, to keep the test short:
    # weekly days are proven equal above, and the merge is per recorded day whatever their number
    settings = shop(tmp_path, buckets=BUCKETS, history_start="2023-01-01", history_end="2025-12-31",
                    lifecycle={"history_step_days": 91})  # fmt: skip
    # the files the ingest writes (proven by test_buckets' ingest tests), written directly: a full ingest of five
    # million orders would take minutes and prove nothing more
    days = orders["order_date"].unique().sort().to_list()
    write_bucket_days(orders, days, buckets_folder(settings.warehouse, settings.id, BUCKETS), BUCKETS)
    prepared = time.perf_counter()
    defs = build_definitions(settings)
    step = {name: defs.resolve_assets_def(settings.key(name)) for name in (
        BUCKET_SUMMARIES, BUCKET_HISTORY_COUNTS, BUCKET_CUTS, BUCKET_HISTORY_CUTS, BUCKET_CUSTOMERS, BUCKET_HISTORY,
        BUCKET_VALUE_FIT, BUCKET_VALUE)}  # fmt: skip
    # the order the assets' dependencies set: each partitioned stage a run per bucket, each merge a run
    stages = [
        ([BUCKET_SUMMARIES, BUCKET_HISTORY_COUNTS], True), ([BUCKET_CUTS, BUCKET_HISTORY_CUTS], False),
        ([BUCKET_CUSTOMERS, BUCKET_HISTORY], True), ([BUCKET_VALUE_FIT], False), ([BUCKET_VALUE], True),
    ]  # fmt: skip
    seconds = []
    with dg.DagsterInstance.ephemeral() as instance:
        for names, partitioned in stages:
            for bucket in labels(BUCKETS) if partitioned else [None]:
                result = dg.materialize([step[n] for n in names], partition_key=bucket, instance=instance)
                assert result.success
            seconds.append(f"{time.perf_counter() - prepared - sum(float(s) for s in seconds):.1f}")
    bucketed = time.perf_counter()

    # the one-process step on the same orders: snapshot, history rebuilt from the first order, one fit, value
    as_of, first_day = orders["order_date"].max(), orders["order_date"].min()
    whole = customer_snapshot(orders, as_of, settings)
    snapshot = time.perf_counter()
    history = rebuild_from_orders(empty_history(), orders, first_day, as_of, settings,
                                  settings.lifecycle.history_step_days)  # fmt: skip
    rebuilt = time.perf_counter()
    value = customer_value(whole.facts, fit(whole.facts, settings.value), settings.value)
    one_process = time.perf_counter()
    print(f"prepare {prepared - started:.1f} s, buckets through Dagster {bucketed - prepared:.1f} s (stages "
          f"{', '.join(seconds)}), one process {one_process - bucketed:.1f} s (snapshot {snapshot - bucketed:.1f}, "
          f"history {rebuilt - snapshot:.1f}, fit and value {one_process - rebuilt:.1f})")  # fmt: skip

    assert orders.height >= 5_000_000 and whole.facts.height > 2_000_000 and as_of == date(2025, 12, 31)
    customers = read_customers(settings)
    assert_frame_equal(customers.facts.sort("customer_id"), whole.facts.sort("customer_id"))
    assert_frame_equal(customers.rfm.sort("customer_id"), whole.rfm.sort("customer_id"))
    # the history of every recorded day from the first order: stretches of every customer
    assert history["valid_from"].n_unique() >= 12
    assert_frame_equal(read_bucket_results(settings, "history").sort("customer_id", "valid_from"),
                       history.sort("customer_id", "valid_from"))  # fmt: skip
    # scored with the merged fit and top spenders' cut, value by value: the same parameters and cut give the same
    # floats per customer (each customer's value is computed from their own inputs, not summed over others)
    bucket_value = read_bucket_results(settings, "value").sort("customer_id")
    assert_frame_equal(bucket_value, value.sort("customer_id"), check_exact=True)
    assert value["tags"].str.contains(HIGH_VALUE_AT_RISK, literal=True).sum() > 1000
    # core.rfm's value tag (first run: the snapshot's own fit) is the value step's, so the buckets make it too
    tagged = with_value_tags(whole.facts, whole.rfm, fit_on(whole.facts, settings.value), settings.value)
    flagged = bucket_value.filter(pl.col("tags").str.contains(HIGH_VALUE_AT_RISK, literal=True))["customer_id"]
    assert tagged.filter(pl.col("tags").str.contains(HIGH_VALUE_AT_RISK))["customer_id"].sort().equals(flagged)
