"""Orders: a source's rows into `raw.orders`, cleaned into `staging.orders`, `staging.order_lines`
and `staging.rejects`, one day of order (shop-local) per partition."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from assets import ORDERS, markdown_table
from assets.orders.buckets import buckets_folder, write_buckets
from assets.orders.cleaning import (
    CleaningRules,
    as_raw_text,
    by_order,
    clean_orders,
    file_index,
    parse_timestamp,
)
from checks.orders import (
    BLOCKING,
    OrderCheckTally,
    broken_order_rules,
    order_check_results,
    order_check_specs,
    record_statuses,
    set_up_order_suites,
    status_summary,
)
from pipelines.progress import Progress
from pipelines.recovery import record_process
from pipelines.settings import ShopSettings
from pipelines.sources import OrderSource, SourceFile, order_source
from pipelines.sources.exports import MalformedExportError
from pipelines.spreadsheets import write_spreadsheet_csv
from pipelines.warehouse import (
    CANCELLED,
    Warehouse,
    append,
    create_incoming,
    drop_incoming,
    incoming,
    publish_days,
    transaction,
)

RAW_ORDERS = dg.AssetKey(["raw", "orders"])
STAGING_ORDERS = dg.AssetKey(["staging", "orders"])
ORDER_LINES = dg.AssetKey(["staging", "order_lines"])
REJECTS = dg.AssetKey(["staging", "rejects"])


def order_assets(
    settings: ShopSettings, partitions: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """The ingest step: one read of the source, four tables replaced together per day. Only `staging/orders`,
    which everything downstream reads, is recorded per day; the other three tables are written in the same
    transaction and recorded once a run (a record per asset and day was most of Dagster's time in a backfill)."""
    key, source, warehouse = settings.key, order_source(settings), Warehouse(database=str(settings.warehouse))
    orders = dg.AssetSpec(key(STAGING_ORDERS), group_name=ORDERS, deps=[key(RAW_ORDERS)], description=(
        "Clean orders from raw.orders: one row per order (cancellations are rows of their own, netting "
        "revenue), shop-local time. Its step writes raw.orders, staging.order_lines and staging.rejects "
        "with it, day by day."))  # fmt: skip
    written_with_it = [
        dg.AssetSpec(key(RAW_ORDERS), group_name=ORDERS, description=(
            "Source rows as received (text), with `_source`, `_row`, `_loaded_ts`: "
            "one row per source row, by shop-local day of order. Written by `ingest_orders`, "
            "recorded once a run (days loaded: see staging/orders).")),
        dg.AssetSpec(key(ORDER_LINES), group_name=ORDERS, deps=[key(RAW_ORDERS)], description=(
            "Kept source rows from raw.orders: one row per order line (an order row is one line). "
            "Written by `ingest_orders`, recorded once a run.")),
        dg.AssetSpec(key(REJECTS), group_name=ORDERS, deps=[key(RAW_ORDERS)], description=(
            "Refused source rows from raw.orders: one row per refused row, with reason, detail "
            "and the values as received. Written by `ingest_orders`, recorded once a run.")),
    ]  # fmt: skip

    @dg.multi_asset(
        name=f"{settings.id}__ingest_orders",
        specs=[orders],
        check_specs=order_check_specs(key(STAGING_ORDERS)),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=settings.pool,
    )
    def ingest_orders(context: dg.AssetExecutionContext):
        record_process(context)
        window = context.partition_time_window
        first, last = window.start.date(), window.end.date() - timedelta(days=1)
        context.log.info(f"Reading the source for {first} .. {last}")
        with warehouse.get_connection() as conn:
            try:
                ingested = ingest_days(source, settings, conn, first, last, context.run_id, context.log)
            except MalformedExportError as exc:  # not transient: retrying cannot help
                raise dg.Failure(str(exc), allow_retries=False) from exc
            except ChecksFailed as exc:  # neither is data that fails its checks
                yield from exc.checks
                raise dg.Failure(str(exc), allow_retries=False) from exc
            refused_csv = _refused_rows_csv(conn, settings.output, ingested.days[0], ingested.days[-1])
            if settings.buckets > 1:
                folder = buckets_folder(settings.warehouse, settings.id, settings.buckets)
                files = write_buckets(conn, ingested.days, folder, settings.buckets)
                context.log.info(f"{files} files of {settings.buckets} customer buckets written in {folder}")
        context.log.info(
            f"{ingested.rows_in} rows in from {len(ingested.files_read)} files: "
            f"{ingested.rows_in - ingested.refused} kept, {ingested.refused} refused"
            + (f"; late rows reloaded {len(ingested.late_days)} earlier days" if ingested.late_days else "")
            + (
                f"; {ingested.identical_rows} rows identical to an earlier row of their day, "
                f"{'kept as purchases' if source.layout.duplicates == 'keep' else 'refused'}"
                if ingested.identical_rows
                else ""
            )
        )
        yield from ingest_results(settings, f"{first} .. {last}", ingested, refused_csv)
        yield from ingested.checks

    return [ingest_orders, *written_with_it]


WRITTEN = ("raw.orders", "staging.orders", "staging.order_lines", "staging.rejects")
CHUNK_ROWS = 500_000  # source rows cleaned and written at a time: what bounds a run's memory
DUCKDB_MEMORY = "1GB"  # DuckDB's cache while the step writes (its default, 80% of the machine, is not a bound)


@dataclass(frozen=True)
class Ingested:
    """What a run wrote: the days it replaced, from which files, and its checks' results."""

    days: list[date]  # the run's window, and earlier days that new or changed files hold rows of
    late_days: list[date]
    files_read: list[str]
    rows_read: int  # rows of the files read (each is indexed whole; only the days' rows are loaded)
    rows_in: int
    refused: int
    identical_rows: int  # rows identical to an earlier row of their day (refused or kept, as the source says)
    orders: dict  # figures of staging.orders over the days written
    statuses: dict  # orders by source status and treatment (`status_summary`)
    preview: pl.DataFrame
    by_reason: dict
    checks: list[dg.AssetCheckResult]


def ingest_days(
    source: OrderSource, settings: ShopSettings, conn, first: date, last: date, run_id: str, log=None
) -> Ingested:
    """Replace days first..last, and the earlier days whose files changed, from the files that hold them.

    The days are cleaned a chunk at a time into incoming copies of the tables, each chunk committed (DuckDB
    holds no run-long transaction), then published and checked in one transaction that a failed blocking
    check rolls back: a failed or killed run leaves the warehouse as it was."""
    suites_ready = set_up_order_suites(settings)
    rules = CleaningRules(
        source.layout, settings.timezone, settings.rules.max_amount, settings.currency, settings.customer_ids,
        (settings.history_start, settings.last_day),
    )  # fmt: skip
    present = {file.name: file for file in source.files()}
    known = conn.sql("SELECT file, size, modified_ts, order_date FROM raw.source_files").pl()
    versions = set(known.select("file", "size", "modified_ts").iter_rows())
    changed = [name for name, f in present.items() if (name, f.size, f.modified_ts) not in versions]
    gone = sorted(set(known["file"]) - set(present))
    indexes = {name: _index(source, name, rules) for name in changed}

    # Late rows: a new, changed or removed file's days that the warehouse already holds are reloaded now.
    touched = {d for index in indexes.values() for d in index["order_date"].unique()}
    touched |= set(known.filter(pl.col("file").is_in(changed + gone))["order_date"].drop_nulls())
    window = set(pl.date_range(first, last, eager=True))
    held = conn.sql(
        "SELECT DISTINCT order_date FROM raw.orders WHERE order_date IN (SELECT unnest(?::DATE[]))",
        params=[sorted(touched - window)],
    ).fetchall()
    late_days = sorted(d for (d,) in held)
    days = sorted(window | set(late_days))
    holding = known.filter(pl.col("order_date").is_in(days) & pl.col("file").is_in(list(present)))["file"]
    indexes |= {name: _index(source, name, rules) for name in holding.unique().sort() if name not in indexes}
    index = by_order(
        pl.concat([i.with_columns(_source=pl.lit(name)) for name, i in indexes.items()]) if indexes else _EMPTY_INDEX,
        rules,
    ).filter(pl.col("order_date").is_in(days))

    conn.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
    tally = OrderCheckTally()
    loaded_ts = datetime.now(UTC)
    create_incoming(conn, WRITTEN)
    try:
        with Progress("ingest", total=index.height, unit="rows", log=log) as progress:
            identical_rows = _write_chunks(conn, source, rules, index, days, tally, loaded_ts, progress)
        loaded = (days[0], days[-1])
        broken = broken_order_rules(conn, incoming("staging.orders"), days, settings)
        suites_ready.result()
        with transaction(conn):
            _record_reloads(conn, days, loaded_ts)
            publish_days(conn, WRITTEN, days)
            _stored_once(conn, days, rules)
            _record_files(conn, [present[name] for name in indexes], indexes, gone, loaded_ts)
            checks = order_check_results(
                conn,
                settings,
                rules,
                tally,
                broken,
                first,
                last,
                loaded,
                run_id,
                settings.key(STAGING_ORDERS),
                rows_read=index.height,
            )
            if any(not check.passed for check in checks if check.check_name in BLOCKING):
                raise ChecksFailed(checks)  # rolls the run back
            record_statuses(conn, tally.statuses(), loaded_ts)
            return Ingested(
                days=days, late_days=late_days, files_read=sorted(indexes),
                rows_read=sum(i.height for i in indexes.values()), rows_in=tally.rows_in, refused=tally.refused,
                identical_rows=identical_rows, orders=_order_figures(conn, *loaded), preview=_preview(conn, *loaded),
                statuses=status_summary(tally.statuses()),
                by_reason=dict(conn.sql(
                    "SELECT reason, count(*) FROM staging.rejects WHERE order_date BETWEEN ? AND ? "
                    "GROUP BY ALL ORDER BY 1", params=list(loaded)).fetchall()),
                checks=checks,
            )  # fmt: skip
    finally:
        drop_incoming(conn, WRITTEN)


class ChecksFailed(Exception):
    """A blocking check failed: the run wrote nothing."""

    def __init__(self, checks: list[dg.AssetCheckResult]):
        self.checks = checks
        failed = [check for check in checks if check.check_name in BLOCKING and not check.passed]
        super().__init__(
            "Blocking checks failed, nothing was written: "
            + "; ".join(
                check.metadata["summary"].value
                if "summary" in check.metadata
                else f"{check.check_name}: " + ", ".join(f"{k} {v.value}" for k, v in check.metadata.items())
                for check in failed
            )
        )


def _write_chunks(
    conn, source: OrderSource, rules: CleaningRules, index: pl.DataFrame, days: list[date], tally: OrderCheckTally,
    loaded_ts: datetime, progress: Progress,
) -> int:  # fmt: skip
    """Read and clean the days a chunk at a time and add them to the incoming tables: DuckDB writes a chunk
    while Polars reads and cleans the next, raw.orders and the staging tables side by side (in threads, each
    through a cursor of its own: a DuckDB insert works on one core)."""
    # the writers stop before their cursors close: a cursor closed under a running write would hide its error
    with conn.cursor() as raw_cursor, conn.cursor() as staging_cursor, ThreadPoolExecutor(max_workers=2) as writers:
        for cursor in (raw_cursor, staging_cursor):  # rows of a table have no order: a faster insert
            cursor.execute("SET preserve_insertion_order = false")
        written, identical_rows = [], 0
        for chunk in day_chunks(index, days, CHUNK_ROWS):
            rows = _read_chunk(source, index.filter(pl.col("order_date").is_in(chunk)), rules)
            clean = clean_orders(rows, rules)
            if clean.lines.height + clean.rejects.height != clean.raw.height:  # by construction; never silently
                raise RuntimeError(
                    f"{clean.raw.height} rows in, but {clean.lines.height} kept and {clean.rejects.height} refused"
                )
            tally.add(clean)
            raw = clean.raw.drop("_ts").with_columns(_loaded_ts=pl.lit(loaded_ts))
            for done in written:
                done.result()
            written = [
                writers.submit(append, raw_cursor, {"raw.orders": raw}),
                writers.submit(append, staging_cursor, {
                    "staging.orders": clean.orders, "staging.order_lines": clean.lines,
                    "staging.rejects": clean.rejects,
                }),
            ]  # fmt: skip
            identical_rows += clean.identical_rows
            progress.advance(clean.raw.height)
        for done in written:
            done.result()
    return identical_rows


_EMPTY_INDEX = pl.DataFrame(
    schema={"_row": pl.Int64, "order_date": pl.Date, "_order_key": pl.UInt64, "_source": pl.String}
)


def _index(source: OrderSource, name: str, rules: CleaningRules) -> pl.DataFrame:
    """Which day each row of a file belongs to (see `file_index`)."""
    return file_index(as_raw_text(source.scan(name)), rules)


def day_chunks(index: pl.DataFrame, days: list[date], max_rows: int) -> list[list[date]]:
    """`days` in order, cut into runs of days holding at most `max_rows` rows (a bigger day is a chunk alone)."""
    per_day = dict(index.group_by("order_date").len().iter_rows())
    chunks, rows = [[]], 0
    for day in days:
        if chunks[-1] and rows + per_day.get(day, 0) > max_rows:
            chunks.append([])
            rows = 0
        chunks[-1].append(day)
        rows += per_day.get(day, 0)
    return chunks


def _read_chunk(source: OrderSource, index: pl.DataFrame, rules: CleaningRules) -> pl.DataFrame:
    """The rows the index names, in source order, from each file's stretch of rows that holds them, with `_ts`."""
    parts = []
    for (name,), rows in sorted(index.partition_by("_source", as_dict=True).items()):
        first, last = rows["_row"].min(), rows["_row"].max()
        stretch = as_raw_text(source.scan(name)).slice(first - 1, last - first + 1)
        days = rows.lazy().select("_row", "order_date", "_first_day")
        if rows.height == last - first + 1 and rows["_row"].is_sorted():  # all of it (a file in time order)
            parts.append(pl.concat([stretch, days.drop("_row")], how="horizontal"))
        else:
            parts.append(stretch.join(days, on="_row", maintain_order="left"))
    if not parts:
        return as_raw_text(_EMPTY_INDEX.select("_source", "_row")).with_columns(
            order_date=pl.lit(None, pl.Date), _first_day=pl.lit(None, pl.Date), _ts=pl.lit(None, pl.Datetime("us"))
        )
    rows = pl.concat(pl.collect_all(parts, engine="streaming"))
    return rows.lazy().with_columns(_ts=parse_timestamp(pl.col("order_ts"), rules)).collect()


def _record_reloads(conn, days: list[date], loaded_ts: datetime) -> None:
    """Before the days are replaced: note each day, and the customers whose orders it held, in raw.reloads, so that
    the next customer snapshot recomputes those customers when a day is one its facts were computed from."""
    conn.execute("INSERT INTO raw.reloads SELECT unnest($days::DATE[]), NULL, $ts", {"days": days, "ts": loaded_ts})
    conn.execute(
        "INSERT INTO raw.reloads SELECT DISTINCT order_date, customer_id, $ts FROM staging.orders "
        "WHERE order_date BETWEEN $first AND $last AND order_date IN (SELECT unnest($days::DATE[]))",
        {"days": days, "ts": loaded_ts, "first": days[0], "last": days[-1]},
    )


def _stored_once(conn, days: list[date], rules: CleaningRules) -> None:
    """An order is stored once: a run that loads an order id the warehouse holds on a day outside the run
    (an export re-issued with the order moved, the old file kept) stops, naming the row and both days."""
    elsewhere = "order_date NOT IN (SELECT unnest($days::DATE[]))"
    if not conn.execute(f"SELECT count(*) FROM staging.orders WHERE {elsewhere}", {"days": days}).fetchone()[0]:
        return  # the run holds every day: the cleaning rules keep each id on one day
    found = conn.execute(
        f"""SELECT raw._source, raw._row, raw.order_id, raw.order_date, min(other.order_date)
            FROM raw.orders AS raw JOIN staging.orders AS other ON other.order_id = raw.order_id
            WHERE raw.order_date IN (SELECT unnest($days::DATE[])) AND other.{elsewhere}
            GROUP BY ALL ORDER BY raw._source, raw._row LIMIT 1""",
        {"days": days},
    ).fetchone()
    if found:
        source, row, order_id, day, stored_on = found
        first, last = sorted([day, stored_on])
        raise MalformedExportError(
            source,
            f"order {order_id} of {day} is already stored on {stored_on}, and an order is stored once: "
            f"load both days together (regulars run --from {first} --to {last}) to keep its first day, "
            "or remove it from the older export",
            row=row,
            column=rules.layout.columns.get("order_id", "order_id"),
        )


def _record_files(conn, files: list[SourceFile], indexes: dict[str, pl.DataFrame], gone: list[str], loaded_ts) -> None:
    """Remember each file read (its version and the days it holds rows of); forget the files that are gone."""
    names = [f.name for f in files] + gone
    conn.execute("DELETE FROM raw.source_files WHERE file IN (SELECT unnest(?::VARCHAR[]))", [names])
    if not files:
        return
    recorded = pl.concat(
        [
            pl.DataFrame(
                indexes[file.name].group_by("order_date").len("rows").rows() or [(None, 0)],
                schema={"order_date": pl.Date, "rows": pl.Int64},
                orient="row",
            ).with_columns(file=pl.lit(file.name), size=pl.lit(file.size), modified_ts=pl.lit(file.modified_ts))
            for file in files
        ]
    ).with_columns(loaded_ts=pl.lit(loaded_ts))
    conn.register("recorded", recorded.to_arrow())
    conn.execute("INSERT INTO raw.source_files BY NAME SELECT * FROM recorded")
    conn.unregister("recorded")


def _order_figures(conn, first: date, last: date) -> dict:
    rows, customers, revenue, cancelled = conn.execute(
        "SELECT count(*), count(DISTINCT customer_id), coalesce(sum(amount), 0), count(*) FILTER (status = ?) "
        "FROM staging.orders WHERE order_date BETWEEN ? AND ?",
        [CANCELLED, first, last],
    ).fetchall()[0]
    return {"rows": rows, "customers": customers, "net_revenue": round(float(revenue), 2),
            "cancelled_or_returned": cancelled}  # fmt: skip


def _preview(conn, first: date, last: date) -> pl.DataFrame:
    return conn.sql(
        "SELECT * FROM staging.orders WHERE order_date BETWEEN ? AND ? ORDER BY order_ts, order_id LIMIT 5",
        params=[first, last],
    ).pl()


def _refused_rows_csv(conn, output: Path, first: date, last: date) -> Path:
    """The run's refused rows, with reasons, as a CSV in the output folder for people who fix exports (values
    from the export that a spreadsheet would evaluate are neutralized: staging.rejects keeps them as received)."""
    path = output / "rejects" / f"rejects-{first}_{last}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    refused = conn.sql(
        "SELECT * FROM staging.rejects WHERE order_date BETWEEN ? AND ? ORDER BY _source, _row", params=[first, last]
    ).pl()
    write_spreadsheet_csv(refused, path)
    return path


def ingest_results(
    settings: ShopSettings, window: str, ingested: Ingested, refused_csv: Path
) -> list[dg.MaterializeResult | dg.AssetMaterialization]:
    """Metadata for the run's whole window: staging/orders repeats it on each day of the run, the three
    tables written with it are recorded once."""
    kept = ingested.rows_in - ingested.refused
    reconciliation = f"{ingested.rows_in} rows in = {kept} kept + {ingested.refused} refused"
    return [
        dg.AssetMaterialization(
            asset_key=settings.key(RAW_ORDERS),
            metadata={
                "window": window,
                "rows": ingested.rows_in,
                "files_read": len(ingested.files_read),
                "rows_read": ingested.rows_read,
                "late_days": ", ".join(str(d) for d in ingested.late_days),
            },
        ),
        dg.MaterializeResult(
            asset_key=settings.key(STAGING_ORDERS),
            metadata={
                **ingested.orders,
                **({"statuses": dg.MetadataValue.json(ingested.statuses)} if ingested.statuses else {}),
                "preview": dg.MetadataValue.md(markdown_table(ingested.preview)),
            },
        ),
        dg.AssetMaterialization(
            asset_key=settings.key(ORDER_LINES),
            metadata={"rows": kept, "reconciliation": reconciliation, "identical_rows": ingested.identical_rows},
        ),
        dg.AssetMaterialization(
            asset_key=settings.key(REJECTS),
            metadata={
                "rows": ingested.refused,
                "rejected_share": round(ingested.refused / ingested.rows_in, 4) if ingested.rows_in else 0.0,
                "by_reason": dg.MetadataValue.json(ingested.by_reason),
                "kept_in": "staging.rejects",
                "csv": dg.MetadataValue.path(str(refused_csv)),
                "reconciliation": reconciliation,
            },
        ),
    ]
