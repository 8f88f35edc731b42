"""CSV files that people open in a spreadsheet: outbox lists, the due list, refused rows."""

from pathlib import Path

import polars as pl

from pipelines.files import write_atomically

# What a spreadsheet may evaluate (OWASP, CSV injection): a cell beginning with = + - @ (or their full-width
# forms, which Chinese input methods type and some spreadsheets read as the ASCII ones), also behind leading
# spaces or NULs that a spreadsheet drops; and a cell beginning with a tab, a carriage return or a NUL.
FORMULA = r"^[\x00\s]*[=+\-@\x{FF1D}\x{FF0B}\x{FF0D}\x{FF20}]|^[\t\r\x00]"
# A signed number (a phone number such as +8613800138000, a negative amount) can only be read as a number, never
# run: it stays as it is, so that a sending tool reading the list gets the id unchanged.
SIGNED_NUMBER = r"^[+\-]?\d+(\.\d+)?$"


def spreadsheet_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Text cells that a spreadsheet would evaluate behind a leading apostrophe, which spreadsheets read as
    "this is text" (OWASP's advice on CSV injection)."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(FORMULA) & ~pl.col(name).str.contains(SIGNED_NUMBER))
        .then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text
    )


def write_spreadsheet_csv(frame: pl.DataFrame, path: Path, parquet: Path | None = None) -> None:
    """A CSV that Excel opens as it is, on Chinese Windows too: UTF-8 with a byte order mark (without one
    Excel reads it in the local code page, GBK there), and no cell it would evaluate; and, with `parquet`, a
    Parquet copy with the same cells. Each written whole, then renamed into place."""
    safe = spreadsheet_safe(frame)
    write_atomically(path, lambda temporary: safe.write_csv(temporary, include_bom=True))
    if parquet is not None:
        write_atomically(parquet, safe.write_parquet)
