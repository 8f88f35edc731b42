"""The customer step of a shop in customer buckets (`assets.orders.buckets`), as files any worker reads and
writes: each bucket's customer summary and value counts, one merge of the counts into the shop's cuts, each
bucket's facts and RFM finished with them (`snapshot.bucketed_snapshot`, a step at a time). Plain Polars.

Under the shop's buckets folder, `customers/` holds `summary/bucket=NN.parquet`, `counts/bucket=NN.parquet`,
`cuts.json`, and `facts/bucket=NN.parquet`, `rfm/bucket=NN.parquet`, each written under a temporary name and
renamed into place."""

import json
import os
import re
import uuid
from dataclasses import asdict
from datetime import date
from pathlib import Path

import polars as pl

from assets.customers.counts import merge_counts
from assets.customers.lifecycle import TypicalCycles
from assets.customers.rfm import RfmCuts
from assets.customers.snapshot import ShopCuts, Snapshot, shop_counts, shop_cuts, snapshot_of, summary_of
from assets.orders.buckets import bucket_folder, buckets_folder, scan_bucket
from pipelines.settings import ShopSettings


def labels(buckets: int) -> list[str]:
    """The buckets' names, as in their folders: '00', '01', ..."""
    return [bucket_folder(Path(), b, buckets).name.removeprefix("bucket=") for b in range(buckets)]


def _orders_folder(settings: ShopSettings) -> Path:
    return buckets_folder(settings.warehouse, settings.id, settings.buckets)


def _file(settings: ShopSettings, kind: str, bucket: str) -> Path:
    return _orders_folder(settings) / "customers" / kind / f"bucket={bucket}.parquet"


def _write(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    frame.write_parquet(temporary)
    os.replace(temporary, path)


def last_order_day(settings: ShopSettings) -> date:
    """The last day with orders in any bucket: the day the step computes customers as of, unless told."""
    days = [
        match.group(1)
        for path in _orders_folder(settings).glob("bucket=*/day=*.parquet")
        if (match := re.fullmatch(r"day=(\d{4}-\d{2}-\d{2})\.parquet", path.name))
    ]
    if not days:
        raise FileNotFoundError(
            f"{_orders_folder(settings)}: no bucket files; with buckets: {settings.buckets}, ingest orders first"
        )
    return date.fromisoformat(max(days))


def summarize_bucket(settings: ShopSettings, bucket: str, as_of: date) -> pl.DataFrame:
    """A bucket's customer summary as of `as_of`, from its orders, written with its value counts; returns it."""
    folder = _orders_folder(settings)
    has_orders = any((folder / f"bucket={bucket}").glob("day=*.parquet"))
    orders = scan_bucket(folder, int(bucket), settings.buckets) if has_orders else _no_orders()
    summary = summary_of(orders, as_of, settings)
    _write(summary, _file(settings, "summary", bucket))
    _write(shop_counts(summary, settings), _file(settings, "counts", bucket))
    return summary


def _no_orders() -> pl.DataFrame:
    """staging.orders without rows: the orders of a bucket that no customer has yet."""
    return pl.DataFrame(schema={
        "customer_id": pl.String, "order_ts": pl.Datetime("us"), "order_date": pl.Date, "amount": pl.Float64,
        "items": pl.Int64, "channel": pl.String, "region": pl.String, "category": pl.String, "status": pl.String,
    })  # fmt: skip


def merge_buckets(settings: ShopSettings) -> tuple[date, ShopCuts]:
    """The shop's cuts from every bucket's value counts, written to `cuts.json` with the day they are of (every
    bucket's summary must be of one day)."""
    buckets = labels(settings.buckets)
    days = {
        bucket: pl.scan_parquet(_file(settings, "summary", bucket)).select(pl.col("as_of_date").max()).collect().item()
        for bucket in buckets
    }
    as_of = {day for day in days.values() if day is not None}
    if len(as_of) > 1:
        raise ValueError(f"customer buckets summarized as of different days: {days}; summarize them again")
    cuts = shop_cuts(merge_counts(pl.read_parquet(_file(settings, "counts", b)) for b in buckets), settings)
    path = _orders_folder(settings) / "customers" / "cuts.json"
    temporary = path.with_name(f".cuts.{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps({"as_of": str(min(as_of, default=date.min)), **asdict(cuts)}))
    os.replace(temporary, path)
    return min(as_of, default=date.min), cuts


def read_cuts(settings: ShopSettings) -> tuple[date, ShopCuts]:
    """The merged cuts and their day, as `merge_buckets` wrote them (floats written as Python prints them, which
    reads back to the same number)."""
    written = json.loads((_orders_folder(settings) / "customers" / "cuts.json").read_text())
    cuts = ShopCuts(RfmCuts(**written["rfm"]), TypicalCycles(**written["cycles"]))
    return date.fromisoformat(written["as_of"]), cuts


def finish_bucket(settings: ShopSettings, bucket: str) -> Snapshot:
    """A bucket's facts and RFM from its summary and the merged cuts, written; returns them."""
    as_of, cuts = read_cuts(settings)
    summary = pl.read_parquet(_file(settings, "summary", bucket))
    if summary.height and summary["as_of_date"][0] != as_of:
        raise ValueError(f"bucket {bucket}: summary as of {summary['as_of_date'][0]}, cuts as of {as_of}")
    snapshot = snapshot_of(summary, settings, cuts)
    _write(snapshot.facts, _file(settings, "facts", bucket))
    _write(snapshot.rfm, _file(settings, "rfm", bucket))
    return snapshot


def read_customers(settings: ShopSettings) -> Snapshot:
    """Every bucket's finished facts and RFM, bucket after bucket."""
    buckets = labels(settings.buckets)
    return Snapshot(
        *(pl.concat(pl.read_parquet(_file(settings, kind, b)) for b in buckets) for kind in ("facts", "rfm"))
    )
