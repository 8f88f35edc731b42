"""Software-defined assets, one module per stage. Group names double as job selections."""

import polars as pl

ORDERS = "orders"
CUSTOMERS = "customers"
OUTREACH = "outreach"
REPORTS = "reports"
CAMPAIGNS = "campaigns"


def markdown_table(frame: pl.DataFrame) -> str:
    """A small frame as a Markdown table, for asset metadata."""
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * frame.width
    rows = ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, *rows])
