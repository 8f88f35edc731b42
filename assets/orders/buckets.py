"""Customer buckets: a shop's clean orders split by customer into Parquet files that any worker can read, so that
the customer step of a very large shop runs bucket by bucket. Plain Polars, no Dagster.

A customer's bucket is `blake2b_64(customer_id) mod buckets` (`pipelines.stable_hash`: BLAKE2b, 8-byte digest of
the normalized id's UTF-8 bytes, big-endian), the same on every machine and Polars release. The files are
`<warehouse folder>/buckets/<shop>/buckets=<n>/bucket=<b>/day=<YYYY-MM-DD>.parquet`, one per bucket and day with
orders; the count is in the path so that files written for another count are never read as these."""

import os
import uuid
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from pipelines.stable_hash import blake2b_64

DAYS_AT_ONCE_ROWS = 2_000_000  # staging.orders rows read and split at a time: what bounds memory


def bucket_of(customer_ids: pl.Series, buckets: int) -> pl.Series:
    """Each customer's bucket, 0 .. buckets - 1 (UInt32); the ids are hashed once each, however many orders."""
    ids = customer_ids.unique()
    by_id = pl.DataFrame({"customer_id": ids, "bucket": (blake2b_64(ids) % buckets).cast(pl.UInt32)})
    return customer_ids.to_frame("customer_id").join(by_id, on="customer_id", how="left", maintain_order="left")[
        "bucket"
    ]


def buckets_folder(warehouse: Path, shop: str, buckets: int) -> Path:
    return warehouse.parent / "buckets" / shop / f"buckets={buckets}"


def bucket_folder(folder: Path, bucket: int, buckets: int) -> Path:
    """A bucket's folder in `buckets_folder`: `bucket=03` (two digits at least, as many as the count needs)."""
    return folder / f"bucket={bucket:0{max(2, len(str(buckets - 1)))}d}"


def day_file(folder: Path, bucket: int, buckets: int, day: date) -> Path:
    return bucket_folder(folder, bucket, buckets) / f"day={day.isoformat()}.parquet"


def write_bucket_days(orders: pl.DataFrame, days: Iterable[date], folder: Path, buckets: int) -> int:
    """Make the files of `days` in `folder` hold exactly `orders` (rows of staging.orders of those days): each
    bucket's orders of a day written under a temporary name and renamed over the day's file, a bucket without
    orders that day left without a file. Re-running a day replaces its files. Returns the files written."""
    bucket = bucket_of(orders["customer_id"], buckets)
    parts = orders.with_columns(_bucket=bucket).partition_by("order_date", "_bucket", as_dict=True)
    written = 0
    for day in days:
        for b in range(buckets):
            path = day_file(folder, b, buckets, day)
            rows = parts.get((day, b))
            if rows is None:
                path.unlink(missing_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            rows.drop("_bucket").write_parquet(temporary)
            os.replace(temporary, path)  # atomic: a reader sees the old file or the new, never a part
            written += 1
    return written


def write_buckets(conn: duckdb.DuckDBPyConnection, days: list[date], folder: Path, buckets: int) -> int:
    """The bucket files of `days` from staging.orders (`write_bucket_days`), a run of days at a time."""
    per_day = dict(
        conn.execute(
            "SELECT order_date, count(*) FROM staging.orders WHERE order_date IN (SELECT unnest(?::DATE[])) "
            "GROUP BY ALL",
            [days],
        ).fetchall()
    )
    written, batch, rows = 0, [], 0
    for day in sorted(days):
        if batch and rows + per_day.get(day, 0) > DAYS_AT_ONCE_ROWS:
            written += _write_batch(conn, batch, folder, buckets)
            batch, rows = [], 0
        batch.append(day)
        rows += per_day.get(day, 0)
    if batch:
        written += _write_batch(conn, batch, folder, buckets)
    return written


def _write_batch(conn: duckdb.DuckDBPyConnection, days: list[date], folder: Path, buckets: int) -> int:
    orders = conn.sql("SELECT * FROM staging.orders WHERE order_date IN (SELECT unnest(?::DATE[]))", params=[days]).pl()
    return write_bucket_days(orders, days, folder, buckets)


def scan_bucket(folder: Path, bucket: int, buckets: int) -> pl.LazyFrame:
    """A bucket's clean orders (all its days)."""
    return pl.scan_parquet(bucket_folder(folder, bucket, buckets) / "day=*.parquet", hive_partitioning=False)
