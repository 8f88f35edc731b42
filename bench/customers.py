"""Customer benchmark: facts + RFM + lifecycle for the synthetic shop at 20 million orders, in the
same run on the same orders, beside

- a bare Polars scan of the columns the step reads, with one group-by per customer aggregating each of them
  (and, as measured before, the same scan with only a count, which reads `customer_id` alone);
- one DuckDB SQL query of the same outputs (facts, quintile scores, classes, stages);
- a straightforward pandas implementation of the same outputs;
- `lifetimes.utils.summary_data_from_transaction_data` (where installed: `pip install -e '.[bench]'`);

and regulars reading staging.orders from a DuckDB warehouse, as the asset does; then, against that,
segment history rebuilt for every day of two years, and the last day's snapshot made from the day
before's facts. Class and stage are compared customer by customer with the pandas version.

    python bench/customers.py [--orders 20000000]
    python bench/customers.py --buckets 8 --orders 5000000

With `--buckets N` (above 1) it runs the customer step in N customer buckets instead, as the Dagster assets do
(each bucket's summary, the merge, each bucket finished, each in a process of its own) and prints the time and
peak memory of each beside the one-process run, and how many rows equal the one-process result.

Times are wall and CPU time (all the threads of a phase's process): on a shared machine the CPU ratios move
least. Each phase runs in a fresh process so that its peak memory is its own. The orders are generated in
chunks of five million to Parquet (and loaded into a warehouse), so 100 million fit on one machine.
"""

import sys
import time
from datetime import date, timedelta
from pathlib import Path

from harness import clock, since

START, END = date(2023, 1, 1), date(2025, 12, 31)
HISTORY_SINCE = date(2024, 1, 1)
ORDERS_PER_CUSTOMER = 2.18
CHUNK_ORDERS = 5_000_000
# Above this, pandas and lifetimes would need more memory than the machine has (about 0.45 GiB per million
# orders), and the warehouse phases (load, asset path, history, daily) are left out to keep the run short.
FULL_RUN_ORDERS = 30_000_000
COLUMNS = ["customer_id", "order_ts", "order_date", "amount", "items", "channel", "region", "category", "status"]


def _orders(folder: Path) -> str:
    return str(folder / "orders" / "*.parquet")


def _settings(folder: Path):
    from pipelines.settings import parse_settings

    raw = {"name": "bench", "history_start": str(START), "history_end": str(END), "source": {"kind": "synthetic"}}
    return parse_settings(raw, folder / "shop.yaml")


def prepare(folder: Path, orders: int) -> dict:
    """The shop's orders in the shape of staging.orders (dirty rows dropped), as Parquet, a chunk of customers
    (with ids of their own) at a time."""
    import polars as pl

    from pipelines.sources.synthetic import CANCELLED_STATUSES, generate_orders

    (folder / "orders").mkdir()
    chunks = max(round(orders / CHUNK_ORDERS), 1)
    rows, started = 0, clock()
    for chunk in range(chunks):
        frame = generate_orders(42 + chunk, int(orders / chunks / ORDERS_PER_CUSTOMER), START, END)
        ts = pl.col("order_ts").str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False)
        cancelled = pl.col("status").cast(pl.String).is_in(CANCELLED_STATUSES)
        prefix = f"{chunk:02d}" if chunks > 1 else ""
        staging = frame.unique("order_id", keep="first").select(
            order_id=pl.col("order_id").str.replace("SO", f"SO{prefix}"),
            customer_id=pl.col("customer_id").str.replace("C", f"C{prefix}"),
            order_ts=ts, order_date=ts.dt.date(), amount=pl.when(cancelled).then(0.0).otherwise(pl.col("amount")),
            items="items", channel=pl.col("channel").cast(pl.String), region=pl.col("region").cast(pl.String),
            category=pl.col("category").cast(pl.String),
            status=pl.when(cancelled).then(pl.lit("cancelled")).otherwise(pl.lit("completed")),
        ).filter(
            pl.col("customer_id").is_not_null() & pl.col("order_ts").is_not_null() & (pl.col("amount") >= 0)
        )  # fmt: skip
        # In order of day, as the ingest leaves staging.orders: a scan of some days reads only their row groups.
        staging.sort("order_date").write_parquet(folder / "orders" / f"part-{chunk:03d}.parquet")
        rows += staging.height
    return {**since(started), "rows": rows}


def warehouse(folder: Path, orders: int) -> dict:
    """staging.orders in a DuckDB warehouse, as ingest leaves it (in order of day)."""
    if orders > FULL_RUN_ORDERS:
        return {"skipped": "left out above 30 M orders"}
    import duckdb

    from pipelines.warehouse import create_tables

    started = time.perf_counter()
    with duckdb.connect(str(folder / "warehouse.duckdb")) as conn:
        create_tables(conn)
        conn.execute(
            "INSERT INTO staging.orders BY NAME SELECT *, 'CNY' AS currency FROM read_parquet(?) ORDER BY order_date",
            [_orders(folder)],
        )
    return {"seconds": time.perf_counter() - started}


def bare_scan(folder: Path, orders: int) -> dict:
    """Every column the step reads, aggregated per customer in one group-by (`--phase bare_scan` prints the
    plan: the scan projects all of COLUMNS); and first, as the table measured before, the same scan with only
    a count, for which Polars reads `customer_id` alone."""
    import polars as pl

    scan = pl.scan_parquet(_orders(folder)).select(COLUMNS)
    aggregated = scan.group_by("customer_id").agg(
        pl.len(), pl.col("amount").sum(), pl.col("items").sum(), first_ts=pl.col("order_ts").min(),
        last_ts=pl.col("order_ts").max(), last_date=pl.col("order_date").max(),
        completed=(pl.col("status") == "completed").sum(), channel=pl.col("channel").max(),
        region=pl.col("region").max(), category=pl.col("category").max(),
    )  # fmt: skip
    print(aggregated.explain(), file=sys.stderr)
    started = time.perf_counter()
    scan.group_by("customer_id").agg(pl.len()).collect()
    one_column = time.perf_counter() - started
    started = clock()
    customers = aggregated.collect().height
    return {**since(started), "customers": customers, "one_column_seconds": one_column}


def regulars(folder: Path, orders: int) -> dict:
    """The customer snapshot on the same Parquet files as the bare scan."""
    import polars as pl

    from assets.customers.snapshot import customer_snapshot

    settings = _settings(folder)
    started = clock()
    snapshot = customer_snapshot(pl.scan_parquet(_orders(folder)), END, settings)
    timed = since(started)
    snapshot.rfm.select("customer_id", "rfm_class", "stage").write_parquet(folder / "regulars.parquet")
    return {**timed, "customers": snapshot.rfm.height}


def regulars_warehouse(folder: Path, orders: int) -> dict:
    """The customer snapshot as the asset computes it: staging.orders read from the warehouse."""
    if orders > FULL_RUN_ORDERS:
        return {"skipped": "left out above 30 M orders"}
    import duckdb

    from assets.customers import read_orders
    from assets.customers.snapshot import customer_snapshot

    settings = _settings(folder)
    started = clock()
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as conn:
        snapshot = customer_snapshot(read_orders(conn, END), END, settings)
    return {**since(started), "customers": snapshot.rfm.height}


# Facts, quintile scores, the eight classes and lifecycle stages (default rules) in one query.
DUCKDB_QUERY = """
WITH orders AS (
    SELECT customer_id, order_ts, order_date, amount, items, channel, category, status = 'completed' AS purchase
    FROM read_parquet($orders) WHERE order_date <= $as_of
), per_customer AS (
    SELECT customer_id,
           min(order_date) FILTER (purchase) AS first_date, max(order_date) FILTER (purchase) AS last_date,
           count(*) FILTER (purchase) AS orders, count(DISTINCT order_date) FILTER (purchase) AS days,
           sum(items) FILTER (purchase) AS items, arg_min(channel, order_ts) FILTER (purchase) AS first_channel,
           sum(amount) AS net
    FROM orders GROUP BY customer_id HAVING count(*) FILTER (purchase) > 0
), gaps AS (
    SELECT customer_id, median(gap) AS cycle_median, stddev_samp(gap) AS cycle_std FROM (
        SELECT customer_id, order_date - lag(order_date) OVER (PARTITION BY customer_id ORDER BY order_date) AS gap
        FROM (SELECT DISTINCT customer_id, order_date FROM orders WHERE purchase)
    ) GROUP BY customer_id HAVING count(*) >= 3
), main_category AS (
    SELECT customer_id, first(category ORDER BY amount DESC, category) AS main_category FROM (
        SELECT customer_id, category, sum(amount) AS amount FROM orders
        WHERE purchase AND category IS NOT NULL GROUP BY ALL
    ) GROUP BY customer_id
), facts AS (
    SELECT *, $as_of - last_date AS recency, round(net, 2) AS monetary,
           CASE WHEN days >= 2 THEN (last_date - first_date) / (days - 1) END AS cycle
    FROM per_customer LEFT JOIN gaps USING (customer_id) LEFT JOIN main_category USING (customer_id)
), typical AS (
    SELECT main_category, median(cycle) AS category_cycle FROM facts WHERE cycle IS NOT NULL GROUP BY ALL
), scored AS (
    SELECT *,
           recency < avg(recency) OVER () AS r_high, days > avg(days) OVER () AS f_high,
           monetary > avg(monetary) OVER () AS m_high,
           1 + floor(5 * (rank() OVER (ORDER BY recency DESC) - 1) / count(*) OVER ()) AS r_score,
           1 + floor(5 * (rank() OVER (ORDER BY days) - 1) / count(*) OVER ()) AS f_score,
           1 + floor(5 * (rank() OVER (ORDER BY monetary) - 1) / count(*) OVER ()) AS m_score,
           coalesce(cycle, category_cycle, (SELECT median(cycle) FROM facts), 60) AS cycle_used
    FROM facts LEFT JOIN typical USING (main_category)
)
SELECT customer_id, r_score, f_score, m_score,
       CASE WHEN m_high THEN CASE WHEN r_high AND f_high THEN 'important_value'
                                  WHEN f_high THEN 'important_winback'
                                  WHEN r_high THEN 'important_develop' ELSE 'important_retain' END
            ELSE CASE WHEN r_high AND f_high THEN 'potential' WHEN r_high THEN 'new'
                      WHEN f_high THEN 'general_maintain' ELSE 'lost' END END AS rfm_class,
       CASE WHEN recency > 2 * cycle_used OR recency > 365 THEN 'churned'
            WHEN recency > 1.5 * cycle_used THEN 'at_risk' WHEN recency >= 0.9 * cycle_used THEN 'due'
            WHEN days <= 1 THEN 'new' ELSE 'active' END AS stage
FROM scored
"""


def duckdb_query(folder: Path, orders: int) -> dict:
    import duckdb

    started = clock()
    with duckdb.connect() as conn:
        result = conn.execute(DUCKDB_QUERY, {"orders": _orders(folder), "as_of": END}).to_arrow_table()
    timed = since(started)
    import pyarrow.parquet as pq

    pq.write_table(result.select(["customer_id", "rfm_class", "stage"]), folder / "duckdb.parquet")
    return {**timed, "customers": result.num_rows}


def pandas_version(folder: Path, orders: int) -> dict:
    """Facts, RFM values and classes, and lifecycle stages, written the way a notebook would."""
    if orders > FULL_RUN_ORDERS:
        return {"skipped": "would need about 0.45 GiB per million orders"}
    import numpy as np
    import pandas as pd

    started = clock()
    orders = pd.read_parquet(folder / "orders", columns=COLUMNS)
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
    timed = since(started)
    facts[["rfm_class", "stage"]].reset_index().to_parquet(folder / "pandas.parquet")
    return {**timed, "customers": len(facts)}


def lifetimes_summary(folder: Path, orders: int) -> dict:
    """lifetimes' frequency / recency / T / monetary table from the completed orders (read as pandas does)."""
    if orders > FULL_RUN_ORDERS:
        return {"skipped": "would need about 0.4 GiB per million orders"}
    try:
        from lifetimes.utils import summary_data_from_transaction_data
    except ImportError:
        return {"installed": False}
    import pandas as pd

    started = clock()
    orders = pd.read_parquet(folder / "orders", columns=["customer_id", "order_date", "amount", "status"])
    buys = orders[orders["status"] == "completed"]
    summary = summary_data_from_transaction_data(
        buys, "customer_id", "order_date", monetary_value_col="amount", observation_period_end=pd.Timestamp(END)
    )
    return {"installed": True, **since(started), "customers": len(summary)}


def history(folder: Path, orders: int) -> dict:
    """core.segment_history rebuilt over the last two years from the warehouse's orders and written to it, as a
    range run does (a state every `lifecycle.history_step_days`, 7; a piece of customers at a time)."""
    if orders > FULL_RUN_ORDERS:
        return {"skipped": "left out above 30 M orders"}
    import duckdb

    from assets.customers import read_orders
    from assets.customers.history import empty_history, history_pieces
    from pipelines.warehouse import replace_tables

    settings = _settings(folder)
    started = clock()
    with duckdb.connect(str(folder / "warehouse.duckdb")) as conn:
        step = settings.lifecycle.history_step_days
        pieces = history_pieces(empty_history(), read_orders(conn, END), HISTORY_SINCE, END, settings, step)
        replace_tables(conn, {"core.segment_history": pieces})
        rows = conn.sql("SELECT count(*) FROM core.segment_history").fetchall()[0][0]
    return {**since(started), "rows": rows}


def day_before(folder: Path, orders: int) -> dict:
    """The day before's snapshot in the warehouse, made in full, as the daily run before the timed one leaves it."""
    if orders > FULL_RUN_ORDERS:
        return {"skipped": "left out above 30 M orders"}
    import duckdb

    from assets.customers import read_orders
    from assets.customers.snapshot import customer_snapshot
    from pipelines.warehouse import replace_tables

    day = END - timedelta(days=1)
    with duckdb.connect(str(folder / "warehouse.duckdb")) as conn:
        before = customer_snapshot(read_orders(conn, day), day, _settings(folder))
        replace_tables(conn, {"core.customer_facts": before.facts})
    return {"customers": before.facts.height}


def next_day(folder: Path, orders: int) -> dict:
    """The last day's snapshot from the day before's facts, as the daily run makes it: in a process of its own
    (as Dagster launches each run), from the warehouse the day before's run left."""
    if orders > FULL_RUN_ORDERS:
        return {"skipped": "left out above 30 M orders"}
    import duckdb

    from assets.customers import facts_still_hold, previous_facts, snapshot_after

    settings = _settings(folder)
    with duckdb.connect(str(folder / "warehouse.duckdb")) as conn:
        started = clock()
        previous = previous_facts(conn)
        assert facts_still_hold(conn, previous, END, settings)
        snapshot = snapshot_after(conn, previous.as_of, END, settings)
        timed = since(started)
    snapshot.rfm.select("customer_id", "rfm_class", "stage").write_parquet(folder / "next_day.parquet")
    return {**timed, "customers": snapshot.rfm.height}


def agreement(folder: Path, orders: int) -> dict:
    """Share of customers with the same class and stage as the pandas version (above the full-run size, where
    pandas does not fit: as the DuckDB query, itself checked against pandas at smaller sizes)."""
    import polars as pl

    reference = "pandas" if (folder / "pandas.parquet").exists() else "duckdb"
    theirs = pl.read_parquet(folder / f"{reference}.parquet")
    shares = {"reference": reference}
    for name in ("regulars", "duckdb", "next_day"):
        if name == reference or not (folder / f"{name}.parquet").exists():
            continue
        ours = pl.read_parquet(folder / f"{name}.parquet")
        both = ours.join(theirs, on="customer_id", how="full", suffix="_reference")
        same = (both["rfm_class"] == both["rfm_class_reference"]) & (both["stage"] == both["stage_reference"])
        shares[name] = float(same.fill_null(False).mean())
    return shares


def report(results: dict) -> list[tuple[str, str, str]]:
    scan, ours, duck, asset = (
        results[name] for name in ("bare_scan", "regulars", "duckdb_query", "regulars_warehouse")
    )
    pandas, lifetimes, agree = results["pandas"], results["lifetimes"], results["agreement"]

    def figure(phase: dict) -> str:
        if "skipped" in phase:
            return f"not run: {phase['skipped']}"
        return f"{phase['seconds']:.1f} s (CPU {phase['cpu_seconds']:.1f} s), {phase['peak_gib']:.1f} GiB"

    def ratio(top: dict, bottom: dict, digits: int = 1) -> str:
        if "skipped" in top or "skipped" in bottom:
            return "-"
        cpu = top["cpu_seconds"] / bottom["cpu_seconds"]
        return f"{top['seconds'] / bottom['seconds']:.{digits}f}x (CPU {cpu:.{digits}f}x)"

    rows = [
        ("orders (clean)", f"{results['prepare']['rows']:,}", ""),
        ("customers", f"{ours['customers']:,}", ""),
        ("bare Polars scan of the same columns, one group-by aggregating each", figure(scan), ""),
        ("  the bare scan measured before: a count only (Polars reads customer_id alone)",
         f"{scan['one_column_seconds']:.1f} s", ""),
        ("facts + RFM + lifecycle (regulars, from Parquet)", figure(ours), ""),
        ("  regulars / bare scan", ratio(ours, scan), "within 4x"),
        ("  regulars / the count-only scan", f"{ours['seconds'] / scan['one_column_seconds']:.1f}x", "(as before)"),
        ("the same outputs as one DuckDB SQL query", figure(duck), ""),
        ("  regulars / DuckDB query", ratio(ours, duck, 2), "at most 1x"),
        ("the same outputs in pandas", figure(pandas), ""),
        ("  pandas / regulars", ratio(pandas, ours), "at least 5x"),
        ("lifetimes' summary_data_from_transaction_data",
         figure(lifetimes) if lifetimes.get("installed", True) else "not installed", "extra: .[bench]"),
        ("regulars peak memory", f"{ours['peak_gib']:.1f} GiB", "at most 4 GiB"),
        ("regulars from the warehouse, as the asset reads it", figure(asset), ""),
        ("  / bare scan", ratio(asset, scan), ""),
        ("segment history rebuilt over 2024-2025 (a state every 7 days)", figure(results["history"]), ""),
        ("  / one snapshot from the warehouse", ratio(results["history"], asset), "at most 3x"),
        ("the last day's snapshot from the day before's facts", figure(results["next_day"]), ""),
        ("  / one snapshot from the warehouse", ratio(results["next_day"], asset, 2), "at most 0.2x"),
    ]  # fmt: skip
    labels = {"regulars": "regulars", "duckdb": "the DuckDB query", "next_day": "the snapshot from the day before"}
    rows += [
        (f"class and stage agree with {agree['reference']}: {label}", f"{agree[name]:.2%}", "100%")
        for name, label in labels.items()
        if name in agree
    ]
    return rows


def _bucket_settings(folder: Path, buckets: int):
    from pipelines.settings import parse_settings

    raw = {"name": "bench", "id": "bench", "history_start": str(START), "history_end": str(END),
           "source": {"kind": "synthetic"}, "warehouse": str(folder / "warehouse.duckdb"),
           "buckets": buckets}  # fmt: skip
    return parse_settings(raw, folder / "shop.yaml")


def bucket_files(buckets: int):
    def phase(folder: Path, orders: int) -> dict:
        """The orders as the ingest leaves them with `buckets`: each bucket's orders of a day in a file
        (`write_bucket_days`), read a quarter of days at a time."""
        import polars as pl

        from assets.orders.buckets import buckets_folder, write_bucket_days

        settings = _bucket_settings(folder, buckets)
        target = buckets_folder(settings.warehouse, settings.id, buckets)
        started, files, first = clock(), 0, START
        while first <= END:
            last = min(first + timedelta(days=90), END)
            days = pl.col("order_date").is_between(first, last)
            batch = pl.scan_parquet(_orders(folder)).filter(days).select(COLUMNS).collect()
            files += write_bucket_days(batch, pl.date_range(first, last, eager=True).to_list(), target, buckets)
            first = last + timedelta(days=1)
        return {**since(started), "files": files}

    return phase


def bucket_summary(bucket: str, buckets: int):
    def phase(folder: Path, orders: int) -> dict:
        """A bucket's customer summary and value counts, as its partition of `buckets/customer_summaries`."""
        from assets.customers.buckets import summarize_bucket

        started = clock()
        summary = summarize_bucket(_bucket_settings(folder, buckets), bucket, END)
        return {**since(started), "customers": summary.height}

    return phase


def bucket_merge(buckets: int):
    def phase(folder: Path, orders: int) -> dict:
        """Every bucket's counts merged into the shop's cuts, as `buckets/customer_cuts`."""
        from assets.customers.buckets import merge_buckets

        started = clock()
        merge_buckets(_bucket_settings(folder, buckets))
        return since(started)

    return phase


def bucket_finish(bucket: str, buckets: int):
    def phase(folder: Path, orders: int) -> dict:
        """A bucket's facts and RFM with the merged cuts, as its partition of `buckets/customers`."""
        from assets.customers.buckets import finish_bucket

        started = clock()
        snapshot = finish_bucket(_bucket_settings(folder, buckets), bucket)
        return {**since(started), "customers": snapshot.rfm.height}

    return phase


def one_process(folder: Path, orders: int) -> dict:
    """The customer snapshot of all orders in one process (read from the same Parquet files), written for the
    comparison."""
    import polars as pl

    from assets.customers.snapshot import customer_snapshot

    started = clock()
    snapshot = customer_snapshot(pl.scan_parquet(_orders(folder)), END, _settings(folder))
    timed = since(started)
    snapshot.facts.write_parquet(folder / "one_process_facts.parquet")
    snapshot.rfm.write_parquet(folder / "one_process_rfm.parquet")
    return {**timed, "customers": snapshot.rfm.height}


def bucket_agreement(buckets: int):
    def phase(folder: Path, orders: int) -> dict:
        """Share of the one-process rows of facts and of RFM that the buckets made identically (every column),
        a bucket at a time (the one-process rows of its customers against its own), so that 100 million orders
        need no more memory than a bucket's customers twice."""
        import polars as pl

        from assets.customers.buckets import labels
        from assets.orders.buckets import buckets_folder

        settings = _bucket_settings(folder, buckets)
        finished = buckets_folder(settings.warehouse, settings.id, buckets) / "customers"  # as buckets.py lays it out
        shares = {}
        for name in ("facts", "rfm"):
            whole = pl.scan_parquet(folder / f"one_process_{name}.parquet")
            rows, same = whole.select(pl.len()).collect().item(), 0
            for label in labels(buckets):
                ours = pl.read_parquet(finished / name / f"bucket={label}.parquet")
                # a join, not is_in: Polars pushes is_in with millions of ids into the Parquet decoder, page by page
                theirs = whole.join(ours.lazy().select("customer_id"), on="customer_id", how="semi").collect()
                if theirs.height == ours.height:
                    same += theirs.join(ours, on=theirs.columns, how="semi", nulls_equal=True).height
            shares[name] = same / rows
        return shares

    return phase


def bucket_phases(buckets: int) -> dict:
    """The phases of `--buckets N`: above 1, the bucketed customer step beside the one-process run."""
    if buckets == 1:
        return {
            "prepare": prepare, "warehouse": warehouse, "bare_scan": bare_scan, "regulars": regulars,
            "duckdb_query": duckdb_query, "pandas": pandas_version, "lifetimes": lifetimes_summary,
            "regulars_warehouse": regulars_warehouse, "history": history, "day_before": day_before,
            "next_day": next_day, "agreement": agreement,
        }  # fmt: skip
    from assets.customers.buckets import labels

    return {
        "prepare": prepare, "bucket_files": bucket_files(buckets),
        **{f"summary_{label}": bucket_summary(label, buckets) for label in labels(buckets)},
        "merge": bucket_merge(buckets),
        **{f"finish_{label}": bucket_finish(label, buckets) for label in labels(buckets)},
        "one_process": one_process, "bucket_agreement": bucket_agreement(buckets),
    }  # fmt: skip


def bucket_report(results: dict) -> list[tuple[str, str, str]]:
    def figure(phase: dict) -> str:
        return f"{phase['seconds']:.1f} s (CPU {phase['cpu_seconds']:.1f} s), {phase['peak_gib']:.2f} GiB"

    labels = [name.removeprefix("summary_") for name in results if name.startswith("summary_")]
    steps = [results[f"{kind}_{label}"] for label in labels for kind in ("summary", "finish")]
    merge, whole, agree = results["merge"], results["one_process"], results["bucket_agreement"]
    total = sum(step["seconds"] for step in steps) + merge["seconds"]
    rows = [
        ("orders (clean)", f"{results['prepare']['rows']:,}", ""),
        ("  generated and written to Parquet (in order of day)", figure(results["prepare"]), ""),
        ("customers", f"{whole['customers']:,}", ""),
        (f"bucket files written ({len(labels)} buckets, by day)",
         f"{results['bucket_files']['files']:,} files, {figure(results['bucket_files'])}", ""),
    ]  # fmt: skip
    for label in labels:
        summary, finish = results[f"summary_{label}"], results[f"finish_{label}"]
        rows += [
            (f"bucket {label}: summary and counts ({summary['customers']:,} customers)", figure(summary), ""),
            (f"bucket {label}: classes, stages, tags", figure(finish), ""),
        ]
    peak = max(step["peak_gib"] for step in steps)
    rows += [
        ("merge of the counts", figure(merge), ""),
        ("  merge / buckets' total", f"{merge['seconds'] / total:.1%}", "at most 10%"),
        ("buckets' total (every bucket's two steps and the merge, one after another)", f"{total:.1f} s", ""),
        ("  the largest bucket step's peak", f"{peak:.2f} GiB", "at most 3 GiB"),
        ("one process", figure(whole), ""),
        ("  buckets' total / one process", f"{total / whole['seconds']:.2f}x", ""),
        ("rows equal to one process: facts", f"{agree['facts']:.2%}", "100%"),
        ("rows equal to one process: rfm", f"{agree['rfm']:.2%}", "100%"),
    ]  # fmt: skip
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from harness import main

    main(
        __file__, bucket_phases, lambda results: (bucket_report if "merge" in results else report)(results),
        20_000_000, options={"buckets": 1},
    )  # fmt: skip
