"""Software-defined assets, one module per stage. Group names double as job selections."""

from collections.abc import Callable

import dagster as dg
import duckdb
import polars as pl

from pipelines.privacy import shown
from pipelines.warehouse import table_columns

ORDERS = "orders"
CUSTOMERS = "customers"
OUTREACH = "outreach"
REPORTS = "reports"
CAMPAIGNS = "campaigns"


def markdown_table(frame: pl.DataFrame) -> str:
    """A small frame as a Markdown table, for asset metadata: ids and contact details masked."""
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * frame.width
    rows = [
        "| " + " | ".join(shown(column, v) for column, v in zip(frame.columns, row, strict=True)) + " |"
        for row in frame.iter_rows()
    ]
    return "\n".join([header, *rows])


def column_schemas(conn: duckdb.DuckDBPyConnection, *tables: str) -> dict[str, dg.TableSchema]:
    """The columns of warehouse tables made from frames (or views over them) as DuckDB holds them, for the UI's
    `dagster/column_schema` of the materialization that wrote them (`described` gives those of `TABLES`)."""
    rows = conn.execute(
        "SELECT table_schema || '.' || table_name, column_name, data_type, is_nullable = 'YES' "
        "FROM information_schema.columns WHERE list_contains(?, table_schema || '.' || table_name) "
        "ORDER BY ordinal_position",
        [list(tables)],
    ).fetchall()
    columns = {table: [] for table in tables}
    for table, name, kind, nullable in rows:
        columns[table].append(dg.TableColumn(name, kind, constraints=dg.TableColumnConstraints(nullable=nullable)))
    return {table: dg.TableSchema(columns=found) for table, found in columns.items()}


def described(owners: list[str]) -> Callable[[dg.AssetSpec], dg.AssetSpec]:
    """What the UI shows of a shop's asset (for `dg.map_asset_specs`): its kinds, its owners and, for a
    table the warehouse defines (`pipelines.warehouse.TABLES`), its columns as DuckDB creates them."""
    schemas = {
        table: dg.TableSchema(
            columns=[
                dg.TableColumn(name, kind, constraints=dg.TableColumnConstraints(nullable=nullable))
                for name, kind, nullable in columns
            ]
        )
        for table, columns in table_columns().items()
    }

    def describe(spec: dg.AssetSpec) -> dg.AssetSpec:
        table = ".".join(spec.key.path[1:])  # after the shop's prefix: schema.table
        metadata = {"dagster/column_schema": schemas[table]} if table in schemas else {}
        kinds = {"polars", "jinja"} if spec.key.path[1] == "reports" else {"polars", "duckdb"}  # reports/: HTML files
        return spec.merge_attributes(kinds=kinds, owners=owners, metadata=metadata)

    return describe
