"""Daily-run benchmark: the whole daily run of a synthetic shop of 20 million orders (one day's ingest,
customers, outreach and reports: the shop's daily job for one partition, through Dagster, as the deployment
runs it: in process, on an instance of its own), beside the in-memory daily snapshot of the same day
(`snapshot_after`, as bench/customers.py's daily phase), with the rows it wrote to each warehouse table.

    python bench/daily_run.py [--orders 20000000]

The shop is prepared once and kept under /tmp/regulars-daily-run-<orders>-<digest of the code in assets/ and
pipelines/>: its orders generated to Parquet exports (the last day's in a file of its own, held back), every day
but the last ingested, and the customers job run for the day before (segment history from HISTORY_SINCE, to keep
the preparation's peak low). Each run copies that warehouse and runs the last day on the copy, the day's export
put beside the others for the run.

Rows changed per table: rows that differ between before and after (inserted, deleted, updated). Bytes written:
what the run's process wrote to disk. Peak memory is the run's process's (the deployment's executor runs every
step in it). The day's buyers: customers with an order that day.
"""

import hashlib
import shutil
import sys
from datetime import date, timedelta
from pathlib import Path

from harness import ROOT, clock, since

START, END = date(2023, 1, 1), date(2025, 12, 31)
DAY_BEFORE = END - timedelta(days=1)
HISTORY_SINCE = date(2025, 7, 1)
ORDERS_PER_CUSTOMER = 2.18  # what the generator gives over these three years
FIELDS = ["order_id", "customer_id", "order_ts", "amount", "items", "channel", "region", "sku", "category", "status",
          "shipped_ts", "delivered_ts"]  # fmt: skip


def _cache(orders: int) -> Path:
    """Where the shop is prepared: by size and by the code that writes the warehouse (a prepared warehouse is
    what that code left)."""
    code = sorted(path for folder in ("assets", "pipelines") for path in (ROOT / folder).rglob("*.py"))
    digest = hashlib.blake2b(b"".join(path.read_bytes() for path in code), digest_size=6).hexdigest()
    return Path(f"/tmp/regulars-daily-run-{orders}-{digest}")


def _settings(warehouse: Path, exports: Path, output: Path):
    from pipelines.settings import parse_settings

    return parse_settings(
        {
            "name": "bench", "id": "bench", "history_start": START.isoformat(), "history_end": END.isoformat(),
            "warehouse": str(warehouse), "output": str(output),
            "source": {"kind": "file", "path": str(exports / "*.parquet"), "timestamp_format": "%Y-%m-%d %H:%M:%S",
                       "columns": {f: f for f in FIELDS}, "cancellation": {"status_in": ["cancelled", "refunded"]}},
        },
        warehouse.parent / "shop.yaml",
    )  # fmt: skip


def prepare(folder: Path, orders: int) -> dict:
    """The shop up to the day before, made once (kept in `_cache(orders)`): exports, ingest, customers job."""
    cache = _cache(orders)
    if (cache / "ready").exists():
        return {"cached": True, "path": str(cache)}
    import dagster as dg
    import duckdb
    import polars as pl

    from assets.orders import ingest_days
    from pipelines.definitions import CUSTOMERS_JOB, shop_job
    from pipelines.sources import order_source
    from pipelines.sources.synthetic import generate_orders
    from pipelines.warehouse import Warehouse

    shutil.rmtree(cache, ignore_errors=True)
    (cache / "exports").mkdir(parents=True)
    (cache / "last_day").mkdir()
    started = clock()
    frame = generate_orders(42, int(orders / ORDERS_PER_CUSTOMER), START, END)
    last_day = pl.col("order_ts").str.starts_with(str(END))
    frame.filter(~last_day).write_parquet(cache / "exports" / "history.parquet")
    frame.filter(last_day).write_parquet(cache / "last_day" / f"{END}.parquet")
    del frame
    settings = _settings(cache / "warehouse.duckdb", cache / "exports", cache / "out")
    with Warehouse(database=str(settings.warehouse)).get_connection() as conn:
        ingest_days(order_source(settings), settings, conn, START, DAY_BEFORE, "prepare")
    config = {"ops": {"bench__customer_snapshot": {"config": {"history_since": str(HISTORY_SINCE)}}}}
    with dg.DagsterInstance.ephemeral() as instance:
        shop_job(settings, CUSTOMERS_JOB).execute_in_process(run_config=config, instance=instance)
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        rows = conn.sql("SELECT count(*) FROM staging.orders").fetchall()[0][0]
    (cache / "ready").write_text("")
    return {"cached": False, **since(started), "rows": rows}


def _working_copy(folder: Path, orders: int, name: str) -> Path:
    """A copy of the prepared warehouse."""
    target = folder / name
    target.mkdir()
    shutil.copy(_cache(orders) / "warehouse.duckdb", target / "warehouse.duckdb")
    return target


def daily_run(folder: Path, orders: int) -> dict:
    """The shop's daily job for the last day, through Dagster on an instance of its own, timed from before
    Dagster and the shop's definitions are imported to the end of the run."""
    target = _working_copy(folder, orders, "run")
    # the last day's export arrives beside the others (whose paths the warehouse knows, so that they are not new)
    exports = _cache(orders) / "exports"
    day_file = exports / f"{END}.parquet"
    day_file.hardlink_to(_cache(orders) / "last_day" / f"{END}.parquet")
    started = clock()
    import dagster as dg

    from pipelines.definitions import DAILY_JOB, shop_job

    settings = _settings(target / "warehouse.duckdb", exports, target / "out")
    (target / "dagster").mkdir()
    try:
        with dg.DagsterInstance.local_temp(str(target / "dagster")) as instance:
            result = shop_job(settings, DAILY_JOB).execute_in_process(instance=instance, partition_key=str(END))
        timed = since(started)
    finally:
        day_file.unlink()
    steps = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_SUCCESS":
            steps[event.step_key] = event.event_specific_data.duration_ms / 1000
    write_bytes = int(dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())["write_bytes"])
    return {**timed, "success": result.success, "steps": steps, "write_bytes": write_bytes}


def snapshot(folder: Path, orders: int) -> dict:
    """The in-memory daily snapshot of the last day (`snapshot_after`, as bench/customers.py's `next_day`): on a
    copy of the prepared warehouse given the last day's staging.orders that the daily run ingested."""
    import duckdb

    from assets.customers import facts_still_hold, previous_facts, snapshot_after

    target = _working_copy(folder, orders, "snapshot")
    settings = _settings(target / "warehouse.duckdb", _cache(orders) / "exports", target / "out")
    with duckdb.connect(str(settings.warehouse)) as conn:
        conn.execute(f"ATTACH '{folder / 'run' / 'warehouse.duckdb'}' AS run (READ_ONLY)")
        conn.execute("INSERT INTO staging.orders SELECT * FROM run.staging.orders WHERE order_date = ?", [END])
        buyers = conn.sql("SELECT count(DISTINCT customer_id) FROM staging.orders WHERE order_date = ?", params=[END])
        buyers = buyers.fetchall()[0][0]
        conn.execute("DETACH run")
        started = clock()
        previous = previous_facts(conn)
        assert facts_still_hold(conn, previous, END, settings)
        made = snapshot_after(conn, previous.as_of, END, settings)
        timed = since(started)
    return {**timed, "customers": made.rfm.height, "buyers": buyers}


def written(folder: Path, orders: int) -> dict:
    """Rows that differ, per table, between the warehouse before the run and after it: inserted, deleted, and
    updated (twice: the old row and the new). A table made anew with most rows as they were counts only its
    changes here: the run's bytes written to disk (`write_bytes`) tell such writes."""
    import duckdb

    tables = "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE database_name = ?"
    counted = "(SELECT hash(t) AS h, count(*) AS n FROM {}.{} AS t GROUP BY h)"
    with duckdb.connect() as conn:
        conn.execute(f"ATTACH '{_cache(orders) / 'warehouse.duckdb'}' AS before (READ_ONLY)")
        conn.execute(f"ATTACH '{folder / 'run' / 'warehouse.duckdb'}' AS after (READ_ONLY)")
        before, after = ({row[0] for row in conn.execute(tables, [name]).fetchall()} for name in ("before", "after"))
        rows = {}
        for table in sorted(before | after):
            sides = [counted.format(name, table) if table in names else "(SELECT NULL::UBIGINT AS h, 0 AS n)"
                     for name, names in (("before", before), ("after", after))]  # fmt: skip
            rows[table] = conn.sql(
                f"SELECT coalesce(sum(abs(coalesce(a.n, 0) - coalesce(b.n, 0))), 0)::BIGINT,"
                f" (SELECT coalesce(sum(n), 0)::BIGINT FROM {sides[1]}) FROM {sides[0]} AS b FULL JOIN {sides[1]} AS a"
                f" USING (h)"
            ).fetchall()[0]
    return {"tables": {table: {"written": changed, "rows": count} for table, (changed, count) in rows.items()}}


def report(results: dict) -> list[tuple[str, str, str]]:
    run, bare, tables = results["daily_run"], results["snapshot"], results["written"]["tables"]

    def figure(phase: dict) -> str:
        return f"{phase['seconds']:.1f} s (CPU {phase['cpu_seconds']:.1f} s), {phase['peak_gib']:.2f} GiB"

    total = sum(table["written"] for table in tables.values())
    changed = {name: table for name, table in tables.items() if table["written"]}
    rows = [
        ("customers", f"{bare['customers']:,}", ""),
        ("the day's buyers", f"{bare['buyers']:,}", ""),
        ("in-memory daily snapshot (snapshot_after)", figure(bare), ""),
        ("whole daily run through Dagster (ingest, customers, outreach, reports)", figure(run), ""),
        ("  daily run / in-memory snapshot, wall", f"{run['seconds'] / bare['seconds']:.1f}x", "at most 3x"),
        ("  daily run / in-memory snapshot, CPU", f"{run['cpu_seconds'] / bare['cpu_seconds']:.1f}x", ""),
        ("  daily run peak memory", f"{run['peak_gib']:.2f} GiB", "at most 4 GiB"),
        ("  run succeeded", str(run["success"]), ""),
        ("rows changed, all tables", f"{total:,} ({total / bare['buyers']:.1f} per buyer)", "in proportion to buyers"),
    ]
    for name, table in sorted(changed.items(), key=lambda item: -item[1]["written"]):
        rows.append((f"  {name} ({table['rows']:,} rows after)", f"{table['written']:,}", ""))
    rows.append(("bytes the run wrote to disk (warehouse, its write-ahead log, outbox, Dagster's instance)",
                 f"{run['write_bytes'] / 2**20:,.0f} MiB", ""))  # fmt: skip
    for step, seconds in sorted(run["steps"].items(), key=lambda item: -item[1])[:12]:
        rows.append((f"  step {step}", f"{seconds:.1f} s", ""))
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from harness import main

    main(
        __file__, {"prepare": prepare, "daily_run": daily_run, "snapshot": snapshot, "written": written}, report,
        20_000_000,
    )  # fmt: skip
