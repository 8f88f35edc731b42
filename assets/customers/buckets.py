"""The customer step of a shop in customer buckets (`assets.orders.buckets`), as files any worker reads and
writes: each bucket's customer summary and value counts, one merge of the counts into the shop's cuts, each
bucket's facts and RFM finished with them (`snapshot.bucketed_snapshot`, a step at a time); the segment history
the same way, a day's cuts for each recorded day (`bucket_history`); and customer value from one fit on every
bucket's fit statistics, each bucket scored with it. Plain Polars.

Under the shop's buckets folder, `customers/` holds `summary/bucket=NN.parquet`, `counts/bucket=NN.parquet`,
`cuts.json`, and `facts/bucket=NN.parquet`, `rfm/bucket=NN.parquet` (with the fit statistics `fit_purchases/`,
`fit_spend/` and net revenue counts `spend/`); `history_totals/`, `history_changes/`, `history_cuts.json`,
`history/bucket=NN.parquet`; `value_fit.json`, `value/bucket=NN.parquet`: each written under a temporary name
and renamed into place."""

import json
import os
import re
import uuid
from dataclasses import asdict
from datetime import date
from pathlib import Path

import polars as pl

from assets.customers.bucket_history import bucket_history, history_counts, merge_history_counts
from assets.customers.counts import merge_counts
from assets.customers.history import DayCuts, recorded_days
from assets.customers.lifecycle import TypicalCycles
from assets.customers.models import Fit
from assets.customers.rfm import RfmCuts
from assets.customers.snapshot import ShopCuts, Snapshot, shop_counts, shop_cuts, snapshot_of, summary_of
from assets.customers.value import (
    Fits,
    FitStatistics,
    customer_value,
    fit_grouped,
    fit_statistics,
    merge_fit_statistics,
    spend_counts,
    spending_at_least,
    top_spend_cut,
)
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


def _write_json(content: dict, path: Path) -> None:
    temporary = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps(content))  # floats as Python prints them, which read back to the same number
    os.replace(temporary, path)


def _order_days(settings: ShopSettings) -> list[date]:
    days = {
        match.group(1)
        for path in _orders_folder(settings).glob("bucket=*/day=*.parquet")
        if (match := re.fullmatch(r"day=(\d{4}-\d{2}-\d{2})\.parquet", path.name))
    }
    if not days:
        raise FileNotFoundError(
            f"{_orders_folder(settings)}: no bucket files; with buckets: {settings.buckets}, ingest orders first"
        )
    return sorted(date.fromisoformat(day) for day in days)


def last_order_day(settings: ShopSettings) -> date:
    """The last day with orders in any bucket: the day the step computes customers as of, unless told."""
    return _order_days(settings)[-1]


def history_days(settings: ShopSettings, as_of: date) -> list[date]:
    """The days the segment history records: from the first day with orders in any bucket to `as_of`, every
    `lifecycle.history_step_days`, as the one-process rebuild from the first order."""
    return recorded_days(_order_days(settings)[0], as_of, settings.lifecycle.history_step_days)


def _bucket_orders(settings: ShopSettings, bucket: str) -> pl.LazyFrame | pl.DataFrame:
    folder = _orders_folder(settings)
    has_orders = any((folder / f"bucket={bucket}").glob("day=*.parquet"))
    return scan_bucket(folder, int(bucket), settings.buckets) if has_orders else _no_orders()


def summarize_bucket(settings: ShopSettings, bucket: str, as_of: date) -> pl.DataFrame:
    """A bucket's customer summary as of `as_of`, from its orders, written with its value counts; returns it."""
    summary = summary_of(_bucket_orders(settings, bucket), as_of, settings)
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
    _write_json({"as_of": str(min(as_of, default=date.min)), **asdict(cuts)}, _customers_folder(settings) / "cuts.json")
    return min(as_of, default=date.min), cuts


def _customers_folder(settings: ShopSettings) -> Path:
    return _orders_folder(settings) / "customers"


def read_cuts(settings: ShopSettings) -> tuple[date, ShopCuts]:
    """The merged cuts and their day, as `merge_buckets` wrote them."""
    written = json.loads((_customers_folder(settings) / "cuts.json").read_text())
    cuts = ShopCuts(RfmCuts(**written["rfm"]), TypicalCycles(**written["cycles"]))
    return date.fromisoformat(written["as_of"]), cuts


def finish_bucket(settings: ShopSettings, bucket: str) -> Snapshot:
    """A bucket's facts and RFM from its summary and the merged cuts, written with what the value fit needs of
    them (`value.fit_statistics`, `value.spend_counts`); returns them."""
    as_of, cuts = read_cuts(settings)
    summary = pl.read_parquet(_file(settings, "summary", bucket))
    if summary.height and summary["as_of_date"][0] != as_of:
        raise ValueError(f"bucket {bucket}: summary as of {summary['as_of_date'][0]}, cuts as of {as_of}")
    snapshot = snapshot_of(summary, settings, cuts)
    _write(snapshot.facts, _file(settings, "facts", bucket))
    _write(snapshot.rfm, _file(settings, "rfm", bucket))
    statistics = fit_statistics(snapshot.facts)
    _write(statistics.purchases, _file(settings, "fit_purchases", bucket))
    _write(statistics.spend, _file(settings, "fit_spend", bucket))
    _write(spend_counts(snapshot.facts), _file(settings, "spend", bucket))
    return snapshot


def read_customers(settings: ShopSettings) -> Snapshot:
    """Every bucket's finished facts and RFM, bucket after bucket."""
    buckets = labels(settings.buckets)
    return Snapshot(
        *(pl.concat(pl.read_parquet(_file(settings, kind, b)) for b in buckets) for kind in ("facts", "rfm"))
    )


def count_history_bucket(settings: ShopSettings, bucket: str, as_of: date) -> pl.DataFrame:
    """A bucket's history counts (`bucket_history.history_counts`) on every day the history records up to
    `as_of`, written; returns the totals (a row per day)."""
    totals, changes = history_counts(_bucket_orders(settings, bucket), history_days(settings, as_of), settings)
    _write(totals, _file(settings, "history_totals", bucket))
    _write(changes, _file(settings, "history_changes", bucket))
    return totals


def merge_history(settings: ShopSettings) -> dict[date, DayCuts]:
    """Every recorded day's cuts from every bucket's history counts, written to `history_cuts.json` (every
    bucket's counts must be of the same days)."""
    parts = {
        bucket: (pl.read_parquet(_file(settings, "history_totals", bucket)), _file(settings, "history_changes", bucket))
        for bucket in labels(settings.buckets)
    }
    days = {bucket: (totals["day"].min(), totals["day"].max()) for bucket, (totals, _) in parts.items()}
    if len(set(days.values())) > 1:
        raise ValueError(f"customer buckets' history counted over different days: {days}; count them again")
    cuts = merge_history_counts(((totals, pl.read_parquet(path)) for totals, path in parts.values()), settings)
    written = {str(day): {"centers": cut.centers, **asdict(cut.cycles)} for day, cut in cuts.items()}
    _write_json(written, _customers_folder(settings) / "history_cuts.json")
    return cuts


def history_bucket(settings: ShopSettings, bucket: str) -> pl.DataFrame:
    """A bucket's segment history from its orders and the merged cuts of each recorded day, written; returns it."""
    written = json.loads((_customers_folder(settings) / "history_cuts.json").read_text())
    cuts = {
        date.fromisoformat(day): DayCuts(
            tuple(cut["centers"]) if cut["centers"] else None, TypicalCycles(cut["shop"], cut["by_category"])
        )
        for day, cut in written.items()
    }
    history = bucket_history(_bucket_orders(settings, bucket), cuts, settings)
    _write(history, _file(settings, "history", bucket))
    return history


def fit_buckets(settings: ShopSettings) -> Fits:
    """One fit of the purchase and spend models on every bucket's fit statistics, merged, written to
    `value_fit.json` with the top spenders' cut of all customers (`value.top_spend_cut`) and those at it who are
    in (read from the buckets' facts); FitError when there are too few repeat buyers."""
    buckets = labels(settings.buckets)
    statistics = merge_fit_statistics(
        FitStatistics(*(pl.read_parquet(_file(settings, kind, b)) for kind in ("fit_purchases", "fit_spend")))
        for b in buckets
    )
    fits = fit_grouped(statistics, settings.value)
    spend = merge_counts(pl.read_parquet(_file(settings, "spend", b)) for b in buckets)
    cut, at_cut = top_spend_cut(spend, settings.value)
    tied = pl.concat(
        pl.scan_parquet(_file(settings, "facts", b)).filter(pl.col("net_revenue") == cut).select("customer_id")
        for b in buckets
    )
    top_at_cut = tied.collect()["customer_id"].sort().head(at_cut).to_list() if cut is not None else []
    written = {"fits": asdict(fits), "top_cut": cut, "top_at_cut": top_at_cut}
    _write_json(written, _customers_folder(settings) / "value_fit.json")
    return fits


def value_bucket(settings: ShopSettings, bucket: str) -> pl.DataFrame:
    """A bucket's customer value (core.customer_value's rows of its customers) from its facts and the merged
    fit and top spenders' cut, written; returns it."""
    written = json.loads((_customers_folder(settings) / "value_fit.json").read_text())
    fits = written["fits"]
    fits = Fits(Fit(**fits["purchases"]), Fit(**fits["spend"]), fits["frequency_spend_correlation"])
    top = spending_at_least(written["top_cut"], pl.Series(written["top_at_cut"], dtype=pl.String))
    value = customer_value(pl.read_parquet(_file(settings, "facts", bucket)), fits, settings.value, top)
    _write(value, _file(settings, "value", bucket))
    return value


def read_bucket_results(settings: ShopSettings, kind: str) -> pl.DataFrame:
    """Every bucket's written rows of one kind ("history", "value", ...), bucket after bucket."""
    return pl.concat(pl.read_parquet(_file(settings, kind, b)) for b in labels(settings.buckets))
