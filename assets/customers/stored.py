"""How the customer snapshot is kept in the warehouse so that a daily run writes in proportion to what changed.

core.customer_facts and core.rfm are views: their stored tables (`core.customer_facts_stored`,
`core.rfm_stored`) hold what changes only when a customer orders or the shop's cuts move, and the views derive
what ages every day from the snapshot's day (`core.snapshot_day`): as_of_date, recency_days, tenure_days.
A run writes the rows whose stored values differ (`write_changes`) and returns how many.
"""

from collections.abc import Iterator

import duckdb
import polars as pl

from assets.customers.facts import COLUMNS as FACT_COLUMNS
from assets.customers.snapshot import RFM_COLUMNS, Snapshot
from pipelines.warehouse import transaction, write_pieces

DAY = "core.snapshot_day"
# what each view derives, from the stored columns and the day
AGED = {
    "as_of_date": "day.as_of_date",
    "recency_days": "date_diff('day', last_order_date, day.as_of_date)",
    "tenure_days": "date_diff('day', first_order_date, day.as_of_date)",
}
VIEWS = {"core.customer_facts": FACT_COLUMNS, "core.rfm": RFM_COLUMNS}


def stored_table(view: str) -> str:
    return f"{view}_stored"


def stored_rows(snapshot: Snapshot) -> dict[str, pl.DataFrame]:
    """The stored tables' rows of a snapshot: its columns less the aged ones (core.rfm keeps last_order_date,
    from which its view derives recency)."""
    rfm = snapshot.rfm.with_columns(last_order_date=pl.col("as_of_date") - pl.duration(days=pl.col("recency_days")))
    return {
        stored_table("core.customer_facts"): snapshot.facts.drop(AGED, strict=False),
        stored_table("core.rfm"): rfm.drop(AGED, strict=False),
    }


def _kind(conn: duckdb.DuckDBPyConnection, table: str) -> str | None:
    """'BASE TABLE', 'VIEW', or None where `table` does not exist."""
    schema, name = table.split(".")
    found = conn.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, name]
    ).fetchall()
    return found[0][0] if found else None


def _shape(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    relation = conn.sql(f"FROM {table} LIMIT 0")
    return list(zip(relation.columns, map(str, relation.types), strict=True))


def write_changes(
    conn: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame | Iterator[pl.DataFrame], keys: tuple[str, ...]
) -> int:
    """Make `frame` the content of `table` (its rows unique by `keys`), writing only the rows that are new,
    changed or gone; returns how many. A row counts as unchanged where DuckDB's 64-bit hash of all its columns
    is the stored row's: a changed row goes unseen only if its hash collides (about one in 2^64), which a
    comparison of every value would avoid at the cost of holding both tables whole. A table rebuilt in pieces
    (an iterator of frames) is written whole, a piece at a time."""
    if not isinstance(frame, pl.DataFrame):
        return write_pieces(conn, table, frame)
    conn.register("incoming", frame.to_arrow())
    try:
        if _kind(conn, table) != "BASE TABLE" or _shape(conn, table) != _shape(conn, "incoming"):
            conn.execute(f"CREATE OR REPLACE TABLE {table} AS FROM incoming")
            return frame.height
        key_list, on = ", ".join(keys), " AND ".join(f"stored.{key} = incoming.{key}" for key in keys)
        quoted = [f'"{name}"' for name in frame.columns]
        stored_hash, incoming_hash = f"hash({', '.join(quoted)})", f"hash(incoming.{', incoming.'.join(quoted)})"
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE _changed_rows AS SELECT incoming.* FROM incoming"
            f" LEFT JOIN (SELECT {key_list}, {stored_hash} AS row_hash FROM {table}) AS stored ON {on}"
            f" WHERE stored.row_hash IS DISTINCT FROM {incoming_hash}"
        )
        gone = f"SELECT {key_list} FROM {table} ANTI JOIN incoming USING ({key_list})"
        touched_keys = f"SELECT {key_list} FROM _changed_rows UNION ALL {gone}"
        conn.execute(f"CREATE OR REPLACE TEMP TABLE _touched_keys AS {touched_keys}")
        touched = conn.sql("SELECT count(*) FROM _touched_keys").fetchall()[0][0]
        matched = " AND ".join(f"{table}.{key} = _touched_keys.{key}" for key in keys)
        conn.execute(f"DELETE FROM {table} USING _touched_keys WHERE {matched}")
        conn.execute(f"INSERT INTO {table} FROM _changed_rows")
        conn.execute("DROP TABLE _changed_rows")
        conn.execute("DROP TABLE _touched_keys")
        return touched
    finally:
        conn.unregister("incoming")


def write_snapshot(conn: duckdb.DuckDBPyConnection, snapshot: Snapshot, others: dict | None = None) -> dict[str, int]:
    """Store `snapshot` (as of one day) in one transaction, with the views in place, and `others` (table: (frame,
    keys)) written the same way; returns the rows written per stored table."""
    as_of = snapshot.facts["as_of_date"].max() if snapshot.facts.height else snapshot.rfm["as_of_date"].max()
    tables = {name: (rows, ("customer_id",)) for name, rows in stored_rows(snapshot).items()} | (others or {})
    with transaction(conn):
        conn.execute("CREATE SCHEMA IF NOT EXISTS core")
        conn.execute(f"CREATE OR REPLACE TABLE {DAY} AS SELECT ?::DATE AS as_of_date", [as_of])
        written = {table: write_changes(conn, table, frame, keys) for table, (frame, keys) in tables.items()}
        for view, columns in VIEWS.items():
            if _kind(conn, view) == "BASE TABLE":  # a warehouse from before the views
                conn.execute(f"DROP TABLE {view}")
            derived = ", ".join(f"{AGED[name]} AS {name}" if name in AGED else name for name in columns)
            conn.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT {derived} FROM {stored_table(view)}, {DAY} AS day")
    return written
