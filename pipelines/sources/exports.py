"""Reading order exports (CSV, Parquet, Excel) into the warehouse's field names.

Every value is kept as text, exactly as received: parsing, and refusing what does not
parse, is the cleaning step's job. What cannot be read at all (a missing mapped column,
an undecodable byte) raises `MalformedExportError` naming the file, row and column.
Rows are numbered from 1 at the first data row; the header is not counted.
"""

from __future__ import annotations

import csv
import errno
import glob
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl
from dagster import get_dagster_logger

from pipelines.settings import FileSource

FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx"}


class MalformedExportError(ValueError):
    """An export that cannot be read as mapped: says which file, row and column."""

    def __init__(self, file: str, problem: str, row: int | None = None, column: str | None = None):
        self.file, self.row, self.column = file, row, column
        where = ", ".join(
            part for part in (f"row {row}" if row else "", f"column {column!r}" if column else "") if part
        )
        super().__init__(f"{file}: {where + ': ' if where else ''}{problem}")


def export_files(pattern: str) -> tuple[Path, list[Path]]:
    """The files a source path names (a file, a folder, or a glob), and their common folder. Folders linked into
    it are followed; a file reached by several paths is listed once, by its shortest; a link that leads round in
    a loop stops the run naming it."""
    path = Path(pattern)
    if path.is_dir():
        files = [p for p in _walk(path) if p.suffix.lower() in FORMATS]
        base = path
    elif glob.has_magic(pattern):
        base = Path(pattern.split("*")[0].rsplit("/", 1)[0] or ".")
        if "**" in pattern and base.is_dir():
            for _ in _walk(base):  # a `**` glob follows linked folders, a loop 40 times deep: look for loops first
                pass
        files = [Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file() or _looping(Path(p))]
    else:
        files, base = ([path] if path.is_file() or _looping(path) else []), path.parent
    once = {}
    for file in sorted(files, key=lambda p: (len(p.parts), str(p))):
        if _looping(file):
            raise _loop_error(file)
        once.setdefault(file.resolve(), file)
    if not once:
        raise MalformedExportError(pattern, "no export file found here")
    return base, sorted(once.values())


def _walk(folder: Path, above: frozenset[str] = frozenset()) -> Iterator[Path]:
    """The files in a folder and its subfolders, linked ones too, in name order; a link to a folder that holds it
    (or to itself) raises `MalformedExportError`."""
    above = above | {os.path.realpath(folder)}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        path = Path(entry.path)
        if _looping(path) or (entry.is_dir() and os.path.realpath(path) in above):
            raise _loop_error(path)
        if entry.is_dir():
            yield from _walk(path, above)
        elif entry.is_file():
            yield path


def _looping(path: Path) -> bool:
    """Whether a path is a symbolic link that never reaches a file or folder (it leads back to itself)."""
    try:
        path.stat()
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def _loop_error(path: Path) -> MalformedExportError:
    return MalformedExportError(
        str(path),
        "a symbolic link that leads round in a loop (to itself or a folder that holds it): remove the link, or set "
        "source.path to files or a folder it does not lead through",
    )


def read_exports(source: FileSource) -> pl.DataFrame:
    """Every row of every export file: `_source` (file), `_row`, the mapped fields as text, and `_shape`."""
    base, files = export_files(source.path)
    return pl.concat([scan_export(path, source, str(path.relative_to(base))).collect() for path in files])


def scan_export(path: Path, source: FileSource, name: str) -> pl.LazyFrame:
    """One export file's rows: `_source` (name), `_row`, the mapped fields as text, and `_shape`, what is
    wrong with a CSV row's number of fields (null when nothing is).

    Parquet is scanned lazily, so that a filter on the rows reads only what it needs; CSV and
    Excel have no such index and are read whole."""
    fmt = source.format if source.format != "auto" else FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise MalformedExportError(name, f"unknown file type {path.suffix!r}; set source.format")
    mapping = source.columns.mapped()
    if fmt == "csv":
        frame = _read_csv(path, name, source).lazy()
    elif fmt == "parquet":
        frame = _scan_parquet(path, name)
    else:
        frame = _read_xlsx(path, name, source.sheet).lazy()
    schema = frame.clone().collect_schema()  # of a copy: a scan whose schema is resolved takes no slice pushdown
    missing = [column for column in mapping.values() if column not in schema]
    if missing:
        raise MalformedExportError(
            name,
            f"mapped column not found; the file has: {', '.join(c for c in schema if c != '_shape')}",
            column=missing[0],
        )
    return frame.with_row_index("_row", offset=1).select(
        pl.lit(name).alias("_source"),
        pl.col("_row").cast(pl.Int64),
        *(_as_text(schema[column], pl.col(column)).alias(field) for field, column in mapping.items()),
        pl.col("_shape") if "_shape" in schema else pl.lit(None, pl.String).alias("_shape"),
    )


def _as_text(dtype: pl.DataType, column: pl.Expr) -> pl.Expr:
    """A typed column as the text a person would read in the file."""
    if dtype == pl.String:
        return column
    if isinstance(dtype, pl.Datetime):
        fmt = "%Y-%m-%d %H:%M:%S%.f" + ("%:z" if dtype.time_zone else "")
        return column.dt.to_string(fmt)
    if dtype == pl.Date:
        return column.dt.to_string("%Y-%m-%d")
    if dtype.is_float():
        # 17.0 reads as "17": ids exported as floats (pandas does that) stay ids.
        return (
            pl.when(column == column.round(0))
            .then(column.cast(pl.Int64).cast(pl.String))
            .otherwise(column.cast(pl.String))
        )
    return column.cast(pl.String)


def _read_csv(path: Path, name: str, source: FileSource) -> pl.DataFrame:
    data = path.read_bytes()
    codec = "utf-8-sig" if source.encoding == "utf-8" else source.encoding
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        raise _decode_error(data, exc, name, source) from None
    if codec != "utf-8-sig" and not data.isascii() and _is_utf8(data):
        raise _misdecoded(data, name, source)
    if BARE_CR.search(text):  # a line end to some readers and text to others: rows would differ between them
        _refuse_quoting(text, name, source.delimiter)
    try:
        frame = pl.read_csv(
            io.BytesIO(text.encode("utf-8")),
            separator=source.delimiter,
            infer_schema=False,
            truncate_ragged_lines=True,
        )
    except pl.exceptions.PolarsError as exc:
        _refuse_quoting(text, name, source.delimiter)
        raise MalformedExportError(name, f"not a readable CSV file ({str(exc).splitlines()[0]})") from None
    return frame.with_columns(_shape=_ragged(text, name, source.delimiter, frame.height))


BARE_CR = re.compile(r"\r(?!\n)")
INCH_MARK = (
    'a quote mark inside a field that does not start with one (an inch mark, as in 24" monitor?): put the field '
    'in quotes and double the mark ("24"" monitor"), or remove it'
)
UNCLOSED = (
    "a quote mark opens this field and nothing closes it, so the rest of the file would be one field: close or "
    "remove it"
)
AFTER_QUOTE = 'text after the closing quote of a quoted field: double a quote mark that is text ("") or remove it'
LONE_CR = (
    "a carriage return (CR) without a line feed, a line end to some programs and text to others: save the file "
    "with LF or CR LF line ends, or quote the field"
)


def _refuse_quoting(text: str, name: str, delimiter: str) -> None:
    """Raise `MalformedExportError` naming the row and column of the first quote mark or CR that CSV readers
    disagree on or cannot read (see `quoting_fault`); return if there is none."""
    fault = quoting_fault(text, delimiter)
    if fault:
        row, field, problem = fault
        header = next(csv.reader([re.split(r"[\r\n]", text, maxsplit=1)[0]], delimiter=delimiter), [])
        column = header[field] if field < len(header) else f"#{field + 1}"
        raise MalformedExportError(name, problem, row=row or None, column=column if row else None)


def quoting_fault(text: str, delimiter: str) -> tuple[int, int, str] | None:
    """The first quote mark or carriage return in a CSV text that breaks its quoting rules, as (data row, counted
    from 1, 0 for the header; field number from 0; what is wrong), or None. Read mark by mark: only looked for
    once a file is known to be wrong."""
    special = re.compile(f'["\r\n{re.escape(delimiter)}]')
    row = field = i = 0
    at_start, quoted, opened = True, False, (0, 0)
    while match := special.search(text, i):
        j, mark = match.start(), match.group()
        if j > i and not quoted:
            at_start = False
        i = j + 1
        if quoted:
            if mark == '"' and text[i : i + 1] == '"':  # a quote mark as text
                i += 1
            elif mark == '"':
                quoted = False
                if text[i : i + 1] not in ("", delimiter, "\r", "\n"):
                    return row, field, AFTER_QUOTE
        elif mark == '"':
            if not at_start:
                return row, field, INCH_MARK
            quoted, opened = True, (row, field)
        elif mark == delimiter:
            field, at_start = field + 1, True
        elif mark == "\r" and text[i : i + 1] != "\n":
            return row, field, LONE_CR
        elif mark == "\n":
            row, field, at_start = row + 1, 0, True
    return (*opened, UNCLOSED) if quoted else None


def _ragged(text: str, name: str, delimiter: str, rows: int) -> pl.Series:
    """Per data row, what is wrong with its shape ("2 fields where the header has 5"), else null. Polars pads
    or cuts such a row silently; the csv module counts each record's fields, quotes and all."""
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))  # a field as long as the file is still a field
    header, *counts = (len(record) for record in csv.reader(io.StringIO(text), delimiter=delimiter))
    if len(counts) != rows:  # records and rows disagree only if the file is not CSV as polars reads it
        return pl.Series([None] * rows, dtype=pl.String)
    shapes = [None if n == header else f"{n} fields where the header has {header}" for n in counts]
    if shapes and not text.endswith(("\n", "\r")):
        if shapes[-1]:
            shapes[-1] += "; the file ends in this row without a line end: possibly cut off"
        else:
            get_dagster_logger().warning(f"{name}: the last line has no line end; the file may be incomplete")
    return pl.Series(shapes, dtype=pl.String)


def _decode_error(data: bytes, exc: UnicodeDecodeError, name: str, source: FileSource) -> MalformedExportError:
    """Locate an undecodable byte: its data row and the column it falls in."""
    row, column = _locate(data, exc.start, source)
    return MalformedExportError(
        name,
        f"byte 0x{data[exc.start]:02x} {'in the header ' if not row else ''}is not {source.encoding}; "
        "set source.encoding (utf-8, gb18030 or gbk) to the file's encoding",
        row=row or None,
        column=column if row else None,  # the header's own names are what cannot be read
    )


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _misdecoded(data: bytes, name: str, source: FileSource) -> MalformedExportError:
    """A file declared GBK whose bytes are UTF-8 text: it decodes, into garbage ('浙江' reads as '娴欐睙').
    Real GBK text with characters outside ASCII is practically never valid UTF-8."""
    start = re.search(rb"[\x80-\xff]", data).start()
    end = data.find(b"\n", start)
    snippet = data[start : end if end >= 0 else len(data)][:24]
    row, column = _locate(data, start, source)
    as_declared = snippet.decode(source.encoding, errors="replace")
    return MalformedExportError(
        name,
        f"declared {source.encoding}, but its text is UTF-8: {snippet.decode('utf-8', errors='ignore')!r} "
        f"would read as {as_declared!r}; set source.encoding: utf-8",
        row=row or None,
        column=column,
    )


def _locate(data: bytes, offset: int, source: FileSource) -> tuple[int, str]:
    """The data row (0: the header) and the column of the byte at `offset` of a CSV file."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    row = data.count(b"\n", 0, offset)  # the header is line 1, so this is the data row
    field_no = data[line_start:offset].count(source.delimiter.encode())
    header = (
        data[: data.find(b"\n")].decode(source.encoding, errors="replace").strip("\ufeff\r").split(source.delimiter)
    )
    return row, header[field_no].strip('"') if row and field_no < len(header) else f"#{field_no + 1}"


def _scan_parquet(path: Path, name: str) -> pl.LazyFrame:
    try:
        pl.read_parquet_schema(path)  # a file that is not Parquet fails here, by name, not in a later collect
        return pl.scan_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise MalformedExportError(name, f"not a readable Parquet file ({str(exc).splitlines()[0]})") from None


def _read_xlsx(path: Path, name: str, sheet: str | None) -> pl.DataFrame:
    try:
        return pl.read_excel(path, sheet_name=sheet, engine="calamine")
    except Exception as exc:  # the Excel engine raises its own exception types
        raise MalformedExportError(name, f"not a readable Excel file ({str(exc).splitlines()[0]})") from None
