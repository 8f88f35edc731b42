"""The DuckDB warehouse: its tables, and replacing a window of days in one transaction.

Asset key prefix = schema. Every table partitioned by day has an `order_date` column;
replacing a partition deletes its days and inserts the new rows, for all the tables a
step writes at once, so that a failed step leaves the warehouse as it was. The ingest,
too big for one open transaction, writes into incoming copies of its tables first and
publishes them in one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from dagster_duckdb import DuckDBResource

WAREHOUSE_POOL = "warehouse"  # DuckDB takes one writer: every step that opens it is in this pool

# The fields a source can deliver, in warehouse order: raw tables keep them as text.
FIELDS = (
    "order_id", "customer_id", "order_ts", "amount", "quantity", "unit_price", "items",
    "channel", "region", "sku", "product", "category", "status", "shipped_ts", "delivered_ts", "currency",
)  # fmt: skip
# staging.orders.status: a purchase, an order not completed yet (amount 0: not revenue), or a cancelled
# order / return document (amount 0 or negative)
COMPLETED, OPEN, CANCELLED = "completed", "open", "cancelled"
# A run's orders by source status and treatment (`status, treated, orders`), and how a row without a status shows
NO_STATUS = "(none)"
NO_STATUSES = pl.DataFrame(schema={"status": pl.String, "treated": pl.String, "orders": pl.UInt32})
SOURCE_TEXT_COLUMNS = ", ".join(f"{field} VARCHAR" for field in FIELDS)
# Text that differs from row to row (ids, times) is stored with zstd: DuckDB's default for text, dictionary-FSST,
# costs two to three times as much to write it, for a file about as large (where ids repeat from row to row, as
# on the lines of one order, zstd takes up to twice the room). Labels keep the default, which suits them.
ZSTD = "USING COMPRESSION zstd"
DISTINCT_TEXT = ("order_id", "customer_id", "order_ts", "shipped_ts", "delivered_ts")
RAW_TEXT_COLUMNS = ", ".join(f"{field} VARCHAR{' ' + ZSTD if field in DISTINCT_TEXT else ''}" for field in FIELDS)

TABLES = {
    "raw.orders": f"""
        _source VARCHAR NOT NULL, _row BIGINT NOT NULL, {RAW_TEXT_COLUMNS},
        order_date DATE NOT NULL, _loaded_ts TIMESTAMPTZ NOT NULL
    """,
    "staging.orders": f"""
        order_id VARCHAR {ZSTD} NOT NULL, customer_id VARCHAR {ZSTD} NOT NULL, order_ts TIMESTAMP NOT NULL,
        order_date DATE NOT NULL, amount DOUBLE NOT NULL, items BIGINT, channel VARCHAR,
        region VARCHAR, category VARCHAR, status VARCHAR NOT NULL, shipped_ts TIMESTAMP,
        delivered_ts TIMESTAMP, currency VARCHAR NOT NULL
    """,
    "staging.order_lines": f"""
        order_id VARCHAR {ZSTD} NOT NULL, order_date DATE NOT NULL, sku VARCHAR, product VARCHAR, category VARCHAR,
        quantity DOUBLE, unit_price DOUBLE, amount DOUBLE NOT NULL
    """,
    "outreach.repurchase_reminders": """
        contact_date DATE NOT NULL, customer_id VARCHAR NOT NULL, rfm_class VARCHAR, rfm_class_zh VARCHAR,
        stage VARCHAR, expected_next_date DATE, channel VARCHAR, language VARCHAR, reason VARCHAR,
        message VARCHAR, held_out BOOLEAN
    """,
    "outreach.campaign_targets": """
        event_id VARCHAR NOT NULL, phase VARCHAR NOT NULL, contact_date DATE NOT NULL, customer_id VARCHAR NOT NULL,
        audience VARCHAR, rfm_class VARCHAR, channel VARCHAR, message VARCHAR, held_out BOOLEAN,
        offer_kind VARCHAR, offer_discount DOUBLE, suggested_products VARCHAR
    """,
    "outreach.audience_lists": """
        contact_date DATE NOT NULL, audience VARCHAR NOT NULL, customer_id VARCHAR NOT NULL, rfm_class VARCHAR,
        stage VARCHAR, channel VARCHAR, offer_kind VARCHAR, offer_discount DOUBLE, suggested_products VARCHAR,
        message VARCHAR, held_out BOOLEAN
    """,
    "outreach.care_messages": """
        contact_date DATE NOT NULL, customer_id VARCHAR NOT NULL, order_id VARCHAR NOT NULL, reason VARCHAR NOT NULL,
        channel VARCHAR, language VARCHAR, message VARCHAR
    """,
    "raw.source_files": """
        file VARCHAR NOT NULL, size BIGINT NOT NULL, modified_ts TIMESTAMP NOT NULL, order_date DATE,
        rows BIGINT NOT NULL, loaded_ts TIMESTAMPTZ NOT NULL
    """,
    # days an ingest replaced that no customer snapshot has taken in yet: per day, a row without a customer and
    # a row per customer the day held before (their facts may hold orders that are gone or changed)
    "raw.reloads": """
        order_date DATE NOT NULL, customer_id VARCHAR, loaded_ts TIMESTAMPTZ NOT NULL
    """,
    "raw.statuses_seen": """
        status VARCHAR NOT NULL, treated VARCHAR NOT NULL, first_loaded_ts TIMESTAMPTZ NOT NULL
    """,
    "staging.rejects": f"""
        _source VARCHAR NOT NULL, _row BIGINT NOT NULL, order_date DATE NOT NULL,
        reason VARCHAR NOT NULL, detail VARCHAR, {SOURCE_TEXT_COLUMNS}
    """,
}


class Warehouse(DuckDBResource):
    """The shop's DuckDB file, created (folder, schemas, tables) on first use."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.database != ":memory:" and not Path(self.database).exists():
            create_warehouse(Path(self.database))
        conn = duckdb.connect(self.database, config=self.connection_config)
        try:
            create_tables(conn)
            yield conn
        except duckdb.Error as exc:
            unwritten = not_written(exc)
            if unwritten is None:
                raise
            file, cause = unwritten
            raise dg.Failure(
                f"warehouse {self.database}: {file} could not be written ({cause}); the warehouse keeps what it held "
                "before this step: free space on its disk, or set warehouse to a folder on a disk with room",
                allow_retries=False,
            ) from None
        finally:
            conn.close()


WRITE_FAILED = re.compile(r'Could not (?:write|truncate|fsync|sync) file "(?P<file>[^"]+)": (?P<cause>[^\n]+)')


def not_written(exc: BaseException | None) -> tuple[str, str] | None:
    """The file and cause of a failed write (a full disk, a file size limit) behind a DuckDB error, or None. The
    first error is looked for in what it led to ("cannot rollback", "connection is busy"), which would hide it."""
    while exc is not None:
        found = WRITE_FAILED.search(str(exc))
        if found:
            return found["file"], found["cause"].strip()
        exc = exc.__cause__ or exc.__context__
    return None


def create_warehouse(path: Path) -> None:
    """A new warehouse file with its tables, made whole under another name and then linked into place: a run
    killed while DuckDB writes a new file's first blocks would leave one that no longer opens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.new")
    scratch.unlink(missing_ok=True)
    try:
        with duckdb.connect(str(scratch)) as conn:
            create_tables(conn)
        os.link(scratch, path)  # not a rename: a warehouse another process made meanwhile is kept
    except FileExistsError:
        pass
    finally:
        scratch.unlink(missing_ok=True)


def create_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the tables, and add to a warehouse made by an older version the columns it lacks
    (nullable: its rows have no value for them)."""
    for table, columns in TABLES.items():
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
    present = set(conn.sql("SELECT schema_name || '.' || table_name, column_name FROM duckdb_columns()").fetchall())
    for table, columns in TABLES.items():
        for name, kind, *_ in (column.split() for column in columns.split(",")):
            if (table, name) not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def table_columns() -> dict[str, list[tuple[str, str, bool]]]:
    """`TABLES` as DuckDB reads them: table -> its columns' name, type and whether they take nulls."""
    with duckdb.connect(":memory:") as conn:
        create_tables(conn)
        rows = conn.sql(
            "SELECT schema_name || '.' || table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
            "WHERE NOT internal ORDER BY column_index"
        ).fetchall()
    columns = {table: [] for table in TABLES}
    for table, name, kind, nullable in rows:
        columns[table].append((name, kind, nullable))
    return columns


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def replace_days(
    conn: duckdb.DuckDBPyConnection,
    frames: Mapping[str, pl.DataFrame],
    first: date,
    last: date,
    day_column: str = "order_date",
) -> None:
    """Make `frames` the whole content of their tables for the days first..last, atomically."""
    with transaction(conn):
        write_day_range(conn, frames, first, last, day_column)


def write_day_range(
    conn: duckdb.DuckDBPyConnection, frames: Mapping[str, pl.DataFrame], first: date, last: date, day_column: str
) -> None:
    """`replace_days` inside the caller's transaction."""
    for table, frame in frames.items():
        conn.execute(f"DELETE FROM {table} WHERE {day_column} BETWEEN ? AND ?", [first, last])
        conn.register("incoming", frame.to_arrow())
        conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
        conn.unregister("incoming")


def incoming(table: str) -> str:
    """The name of a table's incoming copy, in its schema: where an ingest writes before it publishes."""
    schema, name = table.split(".")
    return f"{schema}._incoming_{name}"


def create_incoming(conn: duckdb.DuckDBPyConnection, tables: Iterable[str]) -> None:
    """Empty incoming copies of `tables` (replacing any a killed run left behind)."""
    for table in tables:
        conn.execute(f"CREATE OR REPLACE TABLE {incoming(table)} ({TABLES[table]})")


def drop_incoming(conn: duckdb.DuckDBPyConnection, tables: Iterable[str]) -> None:
    for table in tables:
        conn.execute(f"DROP TABLE IF EXISTS {incoming(table)}")


def append(conn: duckdb.DuckDBPyConnection, frames: Mapping[str, pl.DataFrame]) -> None:
    """Add `frames` to their tables' incoming copies; each in a transaction of its own."""
    for table, frame in frames.items():
        # Arrow's string views are Polars' own strings: DuckDB reads them without a copy into Arrow's older layout
        conn.register("frame", frame.to_arrow(compat_level=pl.CompatLevel.newest()))
        conn.execute(f"INSERT INTO {incoming(table)} BY NAME SELECT * FROM frame")
        conn.unregister("frame")


def publish_days(
    conn: duckdb.DuckDBPyConnection, tables: Iterable[str], days: list[date], day_column: str = "order_date"
) -> None:
    """Inside the caller's transaction: make each table's incoming copy its whole content for `days`.

    Whichever moves fewer rows: the table's other days are copied into the incoming copy, which then
    takes the table's place (a load of a whole history), or the days are deleted from the table and
    the incoming rows inserted (a daily run)."""
    # the range lets DuckDB skip the row groups of other days (a list alone makes it scan the table)
    in_days = f"({day_column} BETWEEN $first AND $last AND {day_column} IN (SELECT unnest($days::DATE[])))"
    window = {"first": min(days), "last": max(days), "days": days}
    for table in tables:
        new = incoming(table)
        others = conn.execute(f"SELECT count(*) FROM {table} WHERE NOT {in_days}", window).fetchone()[0]
        if others <= conn.execute(f"SELECT count(*) FROM {new}").fetchone()[0]:
            conn.execute(f"INSERT INTO {new} BY NAME SELECT * FROM {table} WHERE NOT {in_days}", window)
            conn.execute(f"DROP TABLE {table}")
            conn.execute(f"ALTER TABLE {new} RENAME TO {table.split('.')[1]}")
        else:
            conn.execute(f"DELETE FROM {table} WHERE {in_days}", window)
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {new}")
            conn.execute(f"DROP TABLE {new}")


def replace_rows(conn: duckdb.DuckDBPyConnection, frames: Mapping[str, pl.DataFrame], column: str, value) -> None:
    """Make `frames` the rows of their tables where `column` = value (tables created as needed), atomically."""
    with transaction(conn):
        write_rows(conn, frames, column, value)


def write_rows(conn: duckdb.DuckDBPyConnection, frames: Mapping[str, pl.DataFrame], column: str, value) -> None:
    """`replace_rows` inside the caller's transaction."""
    for table, frame in frames.items():
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
        conn.register("incoming", frame.to_arrow())
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM incoming LIMIT 0")
        schema, name = table.split(".")
        present = {row[0] for row in conn.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?", [schema, name]
        ).fetchall()}  # fmt: skip
        for added, kind, *_ in conn.sql("DESCRIBE incoming").fetchall():  # a table an older version made
            if added not in present:
                conn.execute(f'ALTER TABLE {table} ADD COLUMN "{added}" {kind}')
        conn.execute(f"DELETE FROM {table} WHERE {column} = ?", [value])
        conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
        conn.unregister("incoming")


def replace_tables(
    conn: duckdb.DuckDBPyConnection, frames: Mapping[str, pl.DataFrame | Iterable[pl.DataFrame]]
) -> None:
    """Make `frames` the whole content of their tables (created as needed), atomically. A table may come as pieces
    (frames of one schema, at least one), written one at a time, so that each can be let go before the next."""
    with transaction(conn):
        for table, content in frames.items():
            write_pieces(conn, table, [content] if isinstance(content, pl.DataFrame) else content)


def write_pieces(conn: duckdb.DuckDBPyConnection, table: str, pieces: Iterable[pl.DataFrame]) -> int:
    """Make `pieces` (frames of one schema, at least one) the whole content of `table`, one at a time, inside the
    caller's transaction; returns the rows written."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
    rows = 0
    for number, piece in enumerate(pieces):
        # read by its name here (a replacement scan): a registered view kept every piece until the commit
        incoming = piece.to_arrow()
        if number:
            conn.execute(f"INSERT INTO {table} SELECT * FROM incoming")
        else:
            conn.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM incoming")
        rows += piece.height
        del incoming
    return rows


def read_table(
    conn: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...] = ("*",), **equal
) -> pl.DataFrame | None:
    """A table (or some of its columns), or its rows where each given column equals its value; None if it does
    not exist yet."""
    schema, name = table.split(".")
    exists = conn.sql(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        params=[schema, name],
    ).fetchall()[0][0]
    if not exists:
        return None
    where = " AND ".join(f"{column} = ?" for column in equal) or "true"
    return conn.sql(f"SELECT {', '.join(columns)} FROM {table} WHERE {where}", params=list(equal.values())).pl()


def loaded_until(conn: duckdb.DuckDBPyConnection) -> date | None:
    """The last day the source has delivered rows for, or None before the first load."""
    return conn.sql("SELECT max(order_date) FROM raw.orders").fetchall()[0][0]
