"""Software-defined assets, one module per stage. Group names double as job selections."""

import polars as pl

from pipelines.privacy import shown

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
