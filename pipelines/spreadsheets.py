"""CSV files that people open in a spreadsheet: outbox lists, the due list, refused rows."""

from pathlib import Path

import polars as pl


def spreadsheet_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells that a spreadsheet would evaluate (beginning with = + - @, a tab or a carriage return) behind
    a leading apostrophe, which spreadsheets read as "this is text" (OWASP's advice on CSV injection)."""
    return frame.with_columns(pl.col(pl.String).str.replace(r"^([=+\-@\t\r])", "'$1"))


def write_spreadsheet_csv(frame: pl.DataFrame, path: Path) -> None:
    """A CSV that Excel opens as it is, on Chinese Windows too: UTF-8 with a byte order mark (without one
    Excel reads it in the local code page, GBK there), and no cell it would evaluate."""
    spreadsheet_safe(frame).write_csv(path, include_bom=True)
