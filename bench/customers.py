"""Customer benchmark: facts + RFM + lifecycle for the synthetic shop at 20 million orders,
beside (a) a bare Polars scan of the same columns and (b) a straightforward pandas
implementation of the same outputs, in the same run.

    python bench/customers.py [--orders 20000000]

Each phase runs in a fresh process so that its peak memory is its own.
"""

import sys
import time
from datetime import date
from pathlib import Path

START, END = date(2023, 1, 1), date(2025, 12, 31)
ORDERS_PER_CUSTOMER = 2.18
COLUMNS = ["customer_id", "order_ts", "order_date", "amount", "items", "channel", "category", "status"]


def prepare(folder: Path, orders: int) -> dict:
    """The shop's orders in the shape of staging.orders (dirty rows dropped), as Parquet."""
    import polars as pl

    from pipelines.sources.synthetic import CANCELLED_STATUSES, generate_orders

    frame = generate_orders(42, int(orders / ORDERS_PER_CUSTOMER), START, END)
    ts = pl.col("order_ts").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False)
    cancelled = pl.col("status").cast(pl.String).is_in(CANCELLED_STATUSES)
    staging = frame.unique("order_id", keep="first").select(
        "order_id", "customer_id", order_ts=ts, order_date=ts.dt.date(),
        amount=pl.when(cancelled).then(0.0).otherwise(pl.col("amount")), items="items",
        channel=pl.col("channel").cast(pl.String), region=pl.col("region").cast(pl.String),
        category=pl.col("category").cast(pl.String),
        status=pl.when(cancelled).then(pl.lit("cancelled")).otherwise(pl.lit("completed")),
    ).filter(
        pl.col("customer_id").is_not_null() & pl.col("order_ts").is_not_null() & (pl.col("amount") >= 0)
    )  # fmt: skip
    staging.write_parquet(folder / "orders.parquet")
    return {"rows": staging.height}


def bare_scan(folder: Path, orders: int) -> dict:
    import polars as pl

    started = time.perf_counter()
    frame = pl.scan_parquet(folder / "orders.parquet").select(COLUMNS).collect()
    return {"seconds": time.perf_counter() - started, "rows": frame.height}


def regulars(folder: Path, orders: int) -> dict:
    import polars as pl

    from assets.customers.snapshot import customer_snapshot
    from pipelines.settings import parse_settings

    settings = parse_settings(
        {"name": "bench", "history_start": str(START), "history_end": str(END), "source": {"kind": "synthetic"}},
        folder / "shop.yaml",
    )
    started = time.perf_counter()
    snapshot = customer_snapshot(pl.scan_parquet(folder / "orders.parquet"), END, settings)
    seconds = time.perf_counter() - started
    snapshot.rfm.select("customer_id", "rfm_class", "stage").write_parquet(folder / "regulars.parquet")
    return {"seconds": seconds, "customers": snapshot.rfm.height}


def pandas_version(folder: Path, orders: int) -> dict:
    """Facts, RFM values and classes, and lifecycle stages, written the way a notebook would."""
    import numpy as np
    import pandas as pd

    started = time.perf_counter()
    orders = pd.read_parquet(folder / "orders.parquet", columns=COLUMNS)
    orders["order_date"] = pd.to_datetime(orders["order_date"])
    orders = orders[orders["order_date"] <= pd.Timestamp(END)]
    buys = orders[orders["status"] == "completed"].sort_values("order_ts")
    g = buys.groupby("customer_id")
    facts = pd.DataFrame({
        "first": g["order_date"].min(), "last": g["order_date"].max(), "orders": g.size(),
        "days": g["order_date"].nunique(), "items": g["items"].sum(), "first_channel": g["channel"].first(),
    })  # fmt: skip
    facts["net"] = orders.groupby("customer_id")["amount"].sum().reindex(facts.index)
    span = (facts["last"] - facts["first"]).dt.days
    facts["cycle"] = np.where(facts["days"] >= 2, span / (facts["days"] - 1).clip(lower=1), np.nan)
    spend = buys.groupby(["customer_id", "category"])["amount"].sum().reset_index()
    spend = spend.sort_values(["customer_id", "amount", "category"], ascending=[True, False, True])
    facts["main_category"] = spend.drop_duplicates("customer_id").set_index("customer_id")["category"]
    facts["recency"] = (pd.Timestamp(END) - facts["last"]).dt.days
    facts["frequency"] = facts["days"]
    r_high = facts["recency"] < facts["recency"].mean()
    f_high = facts["frequency"] > facts["frequency"].mean()
    m_high = facts["net"] > facts["net"].mean()
    for col, good in (("r", -facts["recency"]), ("f", facts["frequency"]), ("m", facts["net"])):
        facts[f"{col}_score"] = 1 + np.floor(5 * (good.rank(method="min") - 1) / len(facts)).astype(int)
    names = {(True, True, True): "important_value", (False, True, True): "important_winback",
             (True, False, True): "important_develop", (False, False, True): "important_retain",
             (True, True, False): "potential", (True, False, False): "new",
             (False, True, False): "general_maintain", (False, False, False): "lost"}  # fmt: skip
    facts["rfm_class"] = [names[k] for k in zip(r_high, f_high, m_high, strict=True)]
    typical = facts.dropna(subset=["cycle"]).groupby("main_category")["cycle"].median()
    cycle = facts["cycle"].fillna(facts["main_category"].map(typical)).fillna(facts["cycle"].median())
    d = facts["recency"]
    facts["stage"] = np.select(
        [(d > 2 * cycle) | (d > 365), d > 1.5 * cycle, d >= 0.9 * cycle, facts["days"] <= 1],
        ["churned", "at_risk", "due", "new"], default="active",
    )  # fmt: skip
    seconds = time.perf_counter() - started
    facts[["rfm_class", "stage"]].reset_index().to_parquet(folder / "pandas.parquet")
    return {"seconds": seconds, "customers": len(facts)}


def agreement(folder: Path, orders: int) -> dict:
    import polars as pl

    ours = pl.read_parquet(folder / "regulars.parquet")
    theirs = pl.read_parquet(folder / "pandas.parquet")
    both = ours.join(theirs, on="customer_id", suffix="_pandas")
    same = (both["rfm_class"] == both["rfm_class_pandas"]) & (both["stage"] == both["stage_pandas"])
    return {"share": float(same.mean())}


def report(results: dict) -> list[tuple[str, str, str]]:
    scan, ours, pandas = results["bare_scan"], results["regulars"], results["pandas"]
    return [
        ("orders (clean)", f"{results['prepare']['rows']:,}", ""),
        ("customers", f"{ours['customers']:,}", ""),
        ("bare Polars scan of the same columns", f"{scan['seconds']:.1f} s", ""),
        ("facts + RFM + lifecycle (regulars)", f"{ours['seconds']:.1f} s", ""),
        ("  / bare scan", f"{ours['seconds'] / scan['seconds']:.1f}x", "within 2x"),
        ("same outputs in pandas", f"{pandas['seconds']:.1f} s", ""),
        ("  pandas / regulars", f"{pandas['seconds'] / ours['seconds']:.1f}x", "at least 5x"),
        ("regulars peak memory", f"{ours['peak_gib']:.1f} GiB", "under 4 GiB"),
        ("pandas peak memory", f"{pandas['peak_gib']:.1f} GiB", ""),
        ("class and stage agree with pandas", f"{results['agreement']['share']:.2%}", ""),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from harness import main

    phases = {"prepare": prepare, "bare_scan": bare_scan, "regulars": regulars, "pandas": pandas_version,
              "agreement": agreement}  # fmt: skip
    main(__file__, phases, report, 20_000_000)
