"""Customer buckets: the ingest's Parquet files per bucket and day, and the customer step computed bucket by bucket."""

import hashlib
import shutil
from datetime import date
from fractions import Fraction

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets.customers import read_orders
from assets.customers.bucket_assets import BUCKET_CUSTOMERS, BUCKET_CUTS, BUCKET_SUMMARIES
from assets.customers.buckets import labels, read_customers
from assets.customers.counts import mean, median, merge_counts, of, value_counts
from assets.customers.rfm import cuts_of
from assets.customers.snapshot import Snapshot, bucketed_snapshot, customer_snapshot, snapshot_of, summary_of
from assets.orders.buckets import bucket_of, buckets_folder
from pipelines.definitions import build_definitions
from pipelines.sources.synthetic import CANCELLED_STATUSES, generate_orders
from tests.conftest import ingest, shop, table


def bucket_files(settings) -> dict[str, pl.DataFrame]:
    """Every bucket file, by its path under the shop's buckets folder."""
    folder = buckets_folder(settings.warehouse, settings.id, settings.buckets)
    return {str(path.relative_to(folder)): pl.read_parquet(path) for path in sorted(folder.rglob("*"))
            if path.is_file()}  # fmt: skip


def test_the_ingest_puts_every_clean_order_in_the_file_of_its_customers_bucket_and_day(tmp_path):
    settings = shop(tmp_path, buckets=4)
    ingest(settings, "2024-11-01", "2024-11-30")
    files = bucket_files(settings)
    orders = table(settings, "staging.orders")
    # the bucket by an independent computation: BLAKE2b, 8-byte digest of the id's UTF-8 bytes, big-endian, mod 4
    bucket = {
        customer: int.from_bytes(hashlib.blake2b(customer.encode("utf-8"), digest_size=8).digest(), "big") % 4
        for customer in orders["customer_id"]
    }
    expected = {f"bucket={bucket[customer]:02d}/day={day}.parquet" for customer, day in
                orders.select("customer_id", "order_date").iter_rows()}  # fmt: skip
    assert files.keys() == expected
    for name, rows in files.items():
        assert {
            f"bucket={bucket[c]:02d}/day={d}.parquet" for c, d in rows.select("customer_id", "order_date").rows()
        } == {name}
    # together the files hold staging.orders, each order once
    together = pl.concat(files.values())
    assert together["order_id"].is_unique().all()
    assert together.sort(pl.all()).equals(orders)
    assert len({name.split("/")[0] for name in files}) == 4 and len(files) > 30


def test_rerunning_days_replaces_their_bucket_files(tmp_path):
    settings = shop(tmp_path, buckets=3)
    ingest(settings, "2024-11-01", "2024-11-10")
    before = bucket_files(settings)
    folder = buckets_folder(settings.warehouse, settings.id, 3)
    # a wrong file: a day's bucket-0 orders copied into bucket 1 (a new file, or over the right one), which a
    # re-run must remove or replace
    some_day = next(name for name in before if name.startswith("bucket=00/"))
    shutil.copy(folder / some_day, folder / some_day.replace("bucket=00", "bucket=01"))
    ingest(settings, "2024-11-01", "2024-11-10")
    after = bucket_files(settings)
    assert after.keys() == before.keys()
    for name, rows in before.items():
        assert after[name].equals(rows), name
    assert not list(folder.rglob("*.tmp"))


def test_one_bucket_writes_no_bucket_files(tmp_path):
    settings = shop(tmp_path)
    ingest(settings, "2024-11-01", "2024-11-03")
    assert settings.buckets == 1 and not (tmp_path / "buckets").exists()


def test_a_customers_bucket_is_blake2b_of_the_ids_utf8_bytes_mod_the_count():
    ids = pl.Series(["张三", "C0000001", "c0000001", "ab 12", "C0000001"])
    # by hand with hashlib, as a worker in another language would compute it
    expected = [int.from_bytes(hashlib.blake2b(i.encode("utf-8"), digest_size=8).digest(), "big") % 7 for i in ids]
    assert bucket_of(ids, 7).to_list() == expected
    assert len(set(expected)) > 1


def staging_orders(customers: int, seed: int = 3) -> pl.DataFrame:
    """The synthetic shop's orders over 2023-2025 in the shape of staging.orders (the columns the customer step
    reads), cancellations netted to nothing."""
    export = generate_orders(seed, customers, date(2023, 1, 1), date(2025, 12, 31), 0.0)
    ts = pl.col("order_ts").str.to_datetime("%Y-%m-%d %H:%M:%S")
    cancelled = pl.col("status").cast(pl.String).is_in(CANCELLED_STATUSES)
    return export.select(
        "customer_id", "items", *(pl.col(name).cast(pl.String) for name in ("channel", "region", "category")),
        order_ts=ts, order_date=ts.dt.date(), amount=pl.when(cancelled).then(0.0).otherwise(pl.col("amount")),
        status=pl.when(cancelled).then(pl.lit("cancelled")).otherwise(pl.lit("completed")),
    )  # fmt: skip


def split(orders: pl.DataFrame, buckets: int) -> list[pl.DataFrame]:
    bucket = bucket_of(orders["customer_id"], buckets)
    return [orders.filter(bucket == b) for b in range(buckets)]


def assert_same_snapshot(bucketed: Snapshot, whole: Snapshot) -> None:
    assert_frame_equal(bucketed.facts.sort("customer_id"), whole.facts.sort("customer_id"))
    assert_frame_equal(bucketed.rfm.sort("customer_id"), whole.rfm.sort("customer_id"))


def test_the_customer_step_in_eight_buckets_equals_the_step_in_one_process(tmp_path):
    orders = staging_orders(140_000)  # about 300,000 orders
    settings = shop(tmp_path, history_start="2023-01-01", history_end="2025-12-31")
    as_of = date(2025, 12, 31)
    buckets = split(orders, 8)
    whole = customer_snapshot(orders, as_of, settings)
    assert orders.height > 250_000 and min(b.height for b in buckets) > 30_000
    assert_same_snapshot(bucketed_snapshot(buckets, as_of, settings), whole)
    # not by chance: a bucket finished with thresholds of its own customers alone (no merge) differs somewhere
    alone = snapshot_of(summary_of(buckets[0], as_of, settings), settings).rfm
    merged = whole.rfm.filter(pl.col("customer_id").is_in(alone["customer_id"].implode()))
    assert not alone.sort("customer_id").equals(merged.sort("customer_id"))


@pytest.mark.parametrize(
    "rules",
    [{"rfm": {"threshold": "median"}}, {"rfm": {"lookback_days": 365, "monetary_measure": "average"}}],
    ids=["median", "lookback"],
)
def test_the_buckets_equal_one_process_with_medians_and_a_look_back_window(tmp_path, rules):
    orders = staging_orders(30_000, seed=8)
    settings = shop(tmp_path, history_start="2023-01-01", history_end="2025-12-31", **rules)
    as_of = date(2025, 6, 30)
    assert_same_snapshot(
        bucketed_snapshot(split(orders, 8), as_of, settings), customer_snapshot(orders, as_of, settings)
    )


def test_statistics_of_merged_counts_are_those_of_all_values():
    rng = np.random.default_rng(1)
    money = pl.Series("v", (rng.integers(1, 100_000, 10_001) / 100).tolist())  # whole cents
    parts = [money[i::3].to_frame().lazy() for i in range(3)]
    counts = merge_counts(value_counts(part, "m", pl.col("v")).collect() for part in parts)
    # independently: the mean as an exact fraction of cents, the median as the middle of the sorted values
    cents = [round(v * 100) for v in money]
    assert mean(of(counts, "m"), 100) == float(Fraction(sum(cents), len(cents) * 100))
    assert median(of(counts, "m")) == sorted(money)[5000]
    assert median(of(merge_counts([counts, value_counts(pl.LazyFrame({"v": [1e9]}), "m", pl.col("v")).collect()]),
                      "m")) == (sorted(money)[5000] + sorted(money)[5001]) / 2  # fmt: skip
    # quintile cuts: the ceil(k n / 5)-th smallest values, k = 1..4
    ordered = sorted(money)
    assert cuts_of(of(counts, "m")) == [ordered[-(-k * 10_001 // 5) - 1] for k in range(1, 5)]


def test_the_customer_step_through_dagster_in_eight_bucket_partitions_equals_one_process(tmp_path):
    settings = shop(tmp_path, buckets=8, source={"kind": "synthetic", "seed": 7, "customers": 3000})
    ingest(settings, "2024-01-01", "2024-12-31")
    defs = build_definitions(settings)
    assert len(defs.resolve_all_job_defs()) > 5  # the shop's jobs still resolve: the bucket assets are apart
    summaries, cuts, customers = (
        defs.resolve_assets_def(settings.key(name)) for name in (BUCKET_SUMMARIES, BUCKET_CUTS, BUCKET_CUSTOMERS)
    )
    with dg.DagsterInstance.ephemeral() as instance:
        for bucket in labels(8):
            assert dg.materialize([summaries], partition_key=bucket, instance=instance).success
        assert dg.materialize([cuts], instance=instance).success
        for bucket in labels(8):
            assert dg.materialize([customers], partition_key=bucket, instance=instance).success
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        as_of = conn.execute("SELECT max(order_date) FROM staging.orders").fetchall()[0][0]
        whole = customer_snapshot(read_orders(conn, as_of), as_of, settings)
    assert whole.facts.height > 2000 and whole.facts["as_of_date"][0] == as_of
    assert_same_snapshot(read_customers(settings), whole)
