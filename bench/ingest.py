"""Ingest benchmark: the synthetic shop at 20 million orders, exported to Parquet, then
ingested through the file-export source as the asset runs it (read a chunk of days at a time,
clean, write raw + staging + rejects into incoming tables, then publish them with the quality
checks in one transaction) beside a bare
DuckDB `CREATE TABLE ... AS SELECT` of the same Parquet files, in the same run.

    python bench/ingest.py [--orders 20000000]

Each phase runs in a fresh process so that its peak memory is its own.
"""

import sys
import time
from datetime import date
from pathlib import Path

from harness import clock, since

START, END = date(2023, 1, 1), date(2025, 12, 31)
ORDERS_PER_CUSTOMER = 2.18  # what the generator gives over these three years


def generate(folder: Path, orders: int) -> dict:
    import polars as pl

    from pipelines.sources.synthetic import generate_orders

    started = time.perf_counter()
    frame = generate_orders(42, int(orders / ORDERS_PER_CUSTOMER), START, END)
    seconds = time.perf_counter() - started
    year = pl.col("order_ts").str.slice(0, 4)
    for (name,), part in frame.with_columns(_year=year).group_by("_year"):
        part.drop("_year").write_parquet(folder / f"orders-{name}.parquet")
    return {"seconds": seconds, "rows": frame.height}


def bare_copy(folder: Path, orders: int) -> dict:
    import duckdb

    started = clock()
    with duckdb.connect(str(folder / "bare.duckdb")) as conn:
        conn.execute("CREATE TABLE orders AS SELECT * FROM read_parquet(?)", [str(folder / "*.parquet")])
    return since(started)


def ingest(folder: Path, orders: int) -> dict:
    from assets.orders import ingest_days
    from pipelines.settings import parse_settings
    from pipelines.sources import order_source
    from pipelines.warehouse import Warehouse

    fields = ["order_id", "customer_id", "order_ts", "amount", "items", "channel", "region", "sku",
              "category", "status", "shipped_ts", "delivered_ts"]  # fmt: skip
    settings = parse_settings(
        {
            "name": "bench",
            "history_start": START.isoformat(),
            "history_end": END.isoformat(),
            "warehouse": str(folder / "warehouse.duckdb"),
            "output": str(folder / "out"),
            "source": {
                "kind": "file",
                "path": str(folder / "*.parquet"),
                "timestamp_format": "%Y-%m-%d %H:%M:%S",
                "columns": {f: f for f in fields},
                "cancellation": {"status_in": ["cancelled", "refunded"]},
            },
        },
        folder / "shop.yaml",
    )
    started = clock()
    with Warehouse(database=str(settings.warehouse)).get_connection() as conn:
        ingested = ingest_days(order_source(settings), settings, conn, START, END, "bench")
    failed = [c.check_name for c in ingested.checks if not c.passed]
    return {**since(started), "rows": ingested.rows_in, "refused": ingested.refused, "failed_checks": failed}


def report(results: dict) -> list[tuple[str, str, str]]:
    generated, copy, ingested = results["generate"], results["bare_copy"], results["ingest"]
    return [
        ("orders generated", f"{generated['rows']:,}", ""),
        ("generation time", f"{generated['seconds']:.1f} s", "well under 60 s"),
        ("generation peak memory", f"{generated['peak_gib']:.1f} GiB", ""),
        ("bare DuckDB CREATE TABLE AS SELECT", f"{copy['seconds']:.1f} s", ""),
        ("ingest, whole history (read, clean, write 4 tables, checks)", f"{ingested['seconds']:.1f} s", ""),
        ("ingest rows per second", f"{ingested['rows'] / ingested['seconds']:,.0f}", ""),
        ("ingest / bare copy", f"{ingested['seconds'] / copy['seconds']:.1f}x", "within 3x"),
        ("bare copy, CPU time (user + system, all threads)", f"{copy['cpu_seconds']:.1f} s", ""),
        ("ingest, CPU time", f"{ingested['cpu_seconds']:.1f} s", ""),
        (
            "ingest / bare copy, CPU time (what other work on the machine changes least)",
            f"{ingested['cpu_seconds'] / copy['cpu_seconds']:.1f}x",
            "",
        ),
        ("ingest peak memory", f"{ingested['peak_gib']:.1f} GiB", "at most 4 GiB"),
        ("rows refused", f"{ingested['refused']:,}", ""),
        (
            "checks that warned (a failed blocking check stops the ingest)",
            ", ".join(ingested["failed_checks"]) or "none",
            "",
        ),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from harness import main

    main(__file__, {"generate": generate, "bare_copy": bare_copy, "ingest": ingest}, report, 20_000_000)
