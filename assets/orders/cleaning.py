"""From source rows, as received, to clean orders, order lines and explained rejects.

Plain Polars, no Dagster. Every source row ends in exactly one place: kept (it is, or is
part of, an order) or refused with one reason. Cancellations stay rows of their own,
with a negative amount (a return document) or a zero amount (an order the source marks
cancelled), so that a customer's or a month's revenue nets them out whatever the day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl
import polars.selectors as cs

from pipelines.settings import CancellationRule, CustomerIds
from pipelines.sources import SourceLayout
from pipelines.sources.exports import MalformedExportError
from pipelines.warehouse import CANCELLED, COMPLETED, FIELDS, NO_STATUS, NO_STATUSES, OPEN

NUMBER_FIELDS = ("amount", "quantity", "unit_price", "items")

# Why a row is refused, in the order they are looked for: a row gets the first that applies.
REASONS = {
    "ragged_row": "the row has fewer or more fields than the header",
    "duplicate": "an identical row (product names aside) came earlier in the source",
    "bad_timestamp": "the order time is missing or not a time",
    "outside_history": "the order's day is outside the shop's history (history_start .. history_end)",
    "missing_customer": "no customer id (empty, or a value that means none, such as NULL)",
    "ambiguous_amount": "a number such as 1,250 reads as 1250 or 1.25: set source.decimal to the export's mark",
    "malformed_amount": "a number with more than one decimal mark, or thousands groups not of three digits",
    "bad_amount": "the amount (or quantity and unit price) is missing or not a number",
    "negative_amount": "a negative amount on a row that is not a cancellation",
    "outlier": "the amount is beyond rules.max_amount",
    "other_currency": "the order is in a currency other than the shop's",
    "duplicate_order": "another row has the same order id but other values",
    "conflicting_customer": "the lines of this order name different customers",
}


@dataclass(frozen=True)
class CleaningRules:
    """What cleaning needs to know: how the source reads, and the shop's zone and limits."""

    layout: SourceLayout
    shop_timezone: str
    max_amount: float = 100_000.0
    currency: str = "CNY"
    customer_ids: CustomerIds = CustomerIds()
    history: tuple[date, date] | None = None  # the shop's first and last day; rows outside it are refused

    def order_time(self, text: pl.Expr) -> pl.Expr:
        """`parse_timestamp` under these rules (for the checks, which do not import this module's package)."""
        return parse_timestamp(text, self)


@dataclass(frozen=True)
class CleanOrders:
    raw: pl.DataFrame  # the source rows of the window as text, with `_ts`, their parsed order time
    orders: pl.DataFrame
    lines: pl.DataFrame
    rejects: pl.DataFrame
    identical_rows: int = 0  # rows identical to an earlier one of their day: refused, or kept by the rule
    # `status_counts`: the kept orders by source status and how each was treated
    statuses: pl.DataFrame = field(default_factory=lambda: NO_STATUSES)


def as_raw_text(rows: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """Source rows with every field as text (absent fields null): the shape of `raw.orders`, and `_shape`,
    what is wrong with a row's number of fields (null when nothing is, or the format cannot tell)."""
    columns = rows.collect_schema().names()
    return rows.select(
        "_source",
        "_row",
        *(pl.col(f).cast(pl.String) if f in columns else pl.lit(None, pl.String).alias(f) for f in (*FIELDS, "_shape")),
    )


ZONE_OFFSET = r"\d(Z|[+-]\d{2}:?\d{2})$"  # '...10:00:00Z', '...10:00:00+08:00', '...10:00:00-0500'
SYMBOLS = r"[\s¥￥$£€]"
AMBIGUOUS_NUMBER = r"^[+-]?\d{1,3},\d{3}$"  # '1,250': a thousand and 250, or one and a quarter
# A number as written with each decimal mark: digits, or thousands in groups of three, then at most one mark.
WELL_FORMED = {
    ".": r"^[+-]?(\d+|\d{1,3}(,\d{3})+)?(\.\d*)?$",  # 1234.5, 1,234.50, 1,234,567
    ",": r"^[+-]?(\d+|\d{1,3}(\.\d{3})+)?(,\d*)?$",  # 1234,5, 1.234,50, 1.234.567
}


def parse_timestamp(text: pl.Expr, rules: CleaningRules) -> pl.Expr:
    """Text in the source's zone, or with an offset of its own (`+08:00`, `Z`) -> wall-clock time in the
    shop's zone (null where unreadable). Best in a lazy plan, which reads what several branches share once."""
    fmt = rules.layout.timestamp_format
    whole = None  # no cache of parsed values below, which only costs when nearly every time differs
    if fmt and "%z" not in fmt.lower():  # most values match the format whole: only the others are looked at further
        whole = text.str.to_datetime(fmt, strict=False, time_unit="us", cache=False)
        text = pl.when(whole.is_null()).then(text)
    text = text.str.strip_chars()
    zoned = text.str.contains(ZONE_OFFSET)
    # local times only: a format recognised from a zoned value would not read the others
    local = pl.when(~zoned).then(text).str.to_datetime(fmt, strict=False, time_unit="us", cache=False)
    if whole is not None:
        local = pl.coalesce(whole, local)
    if rules.layout.timezone != rules.shop_timezone:
        local = (
            local.dt.replace_time_zone(rules.layout.timezone, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone(rules.shop_timezone)
            .dt.replace_time_zone(None)
        )
    instant = (
        pl.when(zoned).then(text).str.replace(r"Z$", "+00:00").str.replace("T", " ", literal=True)
        .str.to_datetime("%Y-%m-%d %H:%M:%S%.f%z", strict=False, time_unit="us", cache=False)
        .dt.convert_time_zone(rules.shop_timezone).dt.replace_time_zone(None)
    )  # fmt: skip
    return pl.coalesce(local, instant)


def parse_number(text: pl.Expr, decimal: str = "auto") -> pl.Expr:
    """'¥1,234.50' -> 1234.5, '1.234,50' and '12,50' -> with a decimal comma; null where it is not a number.

    `decimal` "." or "," is the export's decimal mark; with "auto" each value tells: of "." and ",", the
    last is the mark; a mark that repeats groups thousands; a lone "." is the mark (as in most exports),
    and so is a lone "," unless three digits follow it and at most three precede it ('1,250'), which
    could be either: NaN, refused as `ambiguous_amount` (see `ambiguous_number`). A number with two decimal
    marks or misplaced thousands marks ('12.5.1', '1,2,3') is NaN too, refused as `malformed_amount`."""
    plain = text.cast(pl.Float64, strict=False)
    if decimal == "auto":  # a plain number (most values) reads as it is: only the others are read mark by mark
        text = pl.when(plain.is_null()).then(text)
    text = text.str.replace_all(SYMBOLS, "")
    text = pl.when(malformed_number(text, decimal)).then(pl.lit("NaN")).otherwise(text)
    dot_decimal = text.str.replace_all(",", "", literal=True).cast(pl.Float64, strict=False)
    comma_decimal = (
        text.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)
    )
    if decimal != "auto":
        return dot_decimal if decimal == "." else comma_decimal
    commas, dots = text.str.count_matches(",", literal=True), text.str.count_matches(".", literal=True)
    comma_last = text.str.contains(r"\.[\d]*,\d*$")  # '1.234,50'
    lone_comma = (commas == 1) & (dots == 0)  # '12,50'
    dotted_thousands = (commas == 0) & (dots > 1)  # '1.234.567'
    return (
        pl.when(plain.is_not_null()).then(plain)
        .when(ambiguous_number(text, decimal)).then(float("nan"))
        .when(comma_last | lone_comma | dotted_thousands).then(comma_decimal)
        .otherwise(dot_decimal)
    )  # fmt: skip


def ambiguous_number(text: pl.Expr, decimal: str = "auto") -> pl.Expr:
    """Whether a value reads as two numbers depending on the decimal mark, which the settings do not state."""
    if decimal != "auto":
        return pl.lit(False)
    marked = pl.when(text.cast(pl.Float64, strict=False).is_null()).then(text)  # a plain number is not ambiguous
    return marked.str.replace_all(SYMBOLS, "").str.contains(AMBIGUOUS_NUMBER).fill_null(False)


def malformed_number(text: pl.Expr, decimal: str = "auto") -> pl.Expr:
    """Whether a value with a decimal or thousands mark is written as no number is (with the stated mark, or with
    either when "auto"): '12.5.1', '1,2,3', '12,34.5'. A value without digits is not malformed, just not a number."""
    text = text.str.replace_all(SYMBOLS, "")
    # a plain number reads with a decimal point, which a stated decimal comma contradicts ('12.5': 12 thousand 5?)
    marked = text if decimal == "," else pl.when(text.cast(pl.Float64, strict=False).is_null()).then(text)
    marks = (".", ",") if decimal == "auto" else (decimal,)
    written = pl.any_horizontal(marked.str.contains(WELL_FORMED[mark]) for mark in marks)
    return (marked.str.contains(r"\d") & marked.str.contains(r"[.,]") & ~written).fill_null(False)


def with_order_dates(rows: pl.DataFrame, rules: CleaningRules, scan: pl.LazyFrame | None = None) -> pl.DataFrame:
    """Source rows (text) with `_ts`, the parsed order time, `order_date`, the shop-local day, and
    `_order_key` and `_first_day` (see `by_order`).

    `order_date` decides the partition a row belongs to. A row whose time cannot be read
    takes the day of the nearest earlier readable row of its file (exports are in time
    order), or the next one, or the first day of history in a file without a readable time,
    so that it is refused in exactly one partition; a row outside the shop's history takes
    its nearest day.
    Raises `MalformedExportError` when a whole column of a file reads as the wrong type (number columns
    from `scan`, the one file of `rows`, where given).
    """
    rows = rows.lazy().with_columns(_ts=parse_timestamp(pl.col("order_ts"), rules), _order_key=order_key(rules))
    rows = rows.collect()
    _check_column_types(rows, rules, scan)
    day = pl.col("_ts").dt.date().forward_fill().backward_fill().over("_source", order_by="_row")
    if rules.history:  # refused on a day the warehouse shows: the nearest of history, or its first
        day = day.clip(*rules.history).fill_null(rules.history[0])
    return by_order(rows.with_columns(order_date=day), rules)


def order_key(rules: CleaningRules) -> pl.Expr:
    """The order id hashed to 64 bits: an index of a whole history holds 8 bytes a row instead of the id's text."""
    if "order_id" not in rules.layout.fields:
        return pl.lit(None, pl.UInt64)
    return pl.when(pl.col("order_id").is_not_null()).then(pl.col("order_id").hash())


def by_order(rows: pl.DataFrame, rules: CleaningRules) -> pl.DataFrame:
    """Rows with `order_date` and `_order_key` -> lines of one order moved to the day of its first line,
    and `_first_day`, the first day its order id appears on (a later day's row repeats the id)."""
    keyed = pl.col("_order_key").is_not_null()
    if rules.layout.rows == "lines":
        rows = rows.with_columns(
            order_date=pl.when(keyed).then(pl.col("order_date").min().over("_order_key")).otherwise("order_date")
        )
    return rows.with_columns(
        _first_day=pl.when(keyed).then(pl.col("order_date").min().over("_order_key")).otherwise("order_date")
    )


def file_index(scan: pl.LazyFrame, rules: CleaningRules) -> pl.DataFrame:
    """One file's rows (text) -> `_row, order_date, _order_key`: the day each row belongs to, found
    once per file so that a run can then read a range of days at a time. Its times and ids are read
    whole, its numbers only as far as checking their type needs."""
    keys = [f for f in ("order_ts", "order_id") if f in rules.layout.fields]
    rows = scan.select("_source", "_row", *keys).collect()
    return with_order_dates(rows, rules, scan).select("_row", "order_date", "_order_key")


def _check_column_types(rows: pl.DataFrame, rules: CleaningRules, scan: pl.LazyFrame | None = None) -> None:
    """A file in which no value of a column parses is mapped wrong, not dirty: refuse the file. Number
    columns are read from `scan`, the one file of `rows`, where given, else from `rows`."""
    numbers = [f for f in NUMBER_FIELDS if f in rules.layout.fields]
    checks = {"order_ts": pl.col("_ts")} | {f: parse_number(pl.col(f), rules.layout.decimal) for f in numbers}
    present = {f: pl.col(f).str.strip_chars().str.len_chars() > 0 for f in checks}

    def first(n: int | None) -> pl.DataFrame:
        """Each file's first `n` rows (all of them: None), with its number columns."""
        if scan is None:
            return rows if n is None else rows.group_by("_source").head(n)
        return pl.concat([rows.slice(0, n), scan.slice(0, n).select(numbers).collect()], how="horizontal")

    def summary(rows: pl.DataFrame) -> pl.DataFrame:
        return rows.group_by("_source").agg(
            *(pl.col("_row").filter(present[f]).first().alias(f"{f}_first_row") for f in checks),
            *(pl.col(f).filter(present[f]).first().alias(f"{f}_first_value") for f in checks),
            *(parsed.is_not_null().any().alias(f"{f}_any") for f, parsed in checks.items()),
        )

    # a value that reads among each file's first rows settles it: the whole file is read only when none does
    if summary(first(1000)).select(pl.all_horizontal(cs.ends_with("_any"))).to_series().all():
        return
    for row in summary(first(None)).iter_rows(named=True):
        for f in checks:
            if row[f"{f}_first_row"] is not None and not row[f"{f}_any"]:
                kind = "time" if f == "order_ts" else "number"
                hint = (
                    f" with format {rules.layout.timestamp_format!r}"
                    if f == "order_ts" and rules.layout.timestamp_format
                    else ""
                )
                raise MalformedExportError(
                    row["_source"],
                    f"no value reads as a {kind}{hint} (first value: {row[f'{f}_first_value']!r})",
                    row=row[f"{f}_first_row"],
                    column=rules.layout.columns.get(f, f),
                )


def _cancelled_orders(rule: CancellationRule, has: set[str]) -> pl.Expr:
    """Rows of an order the source marks cancelled or refunded (by its status)."""
    if rule.status_in and "status" in has:
        return pl.col("status").is_in(list(rule.status_in)).fill_null(False)
    return pl.lit(False)


def _return_documents(rule: CancellationRule, has: set[str]) -> pl.Expr:
    """Rows that take goods back: a cancellation invoice, or a negative quantity where that is the rule."""
    marks = []
    if rule.order_id_prefix and "order_id" in has:
        marks.append(pl.col("order_id").str.starts_with(rule.order_id_prefix))
    if rule.negative_quantity:
        marks.append(pl.col("_quantity") < 0 if "quantity" in has else pl.col("_amount") < 0)
    return pl.any_horizontal(marks).fill_null(False) if marks else pl.lit(False)


def clean_orders(
    rows: pl.DataFrame, rules: CleaningRules, first: date | None = None, last: date | None = None
) -> CleanOrders:
    """Source rows (from `with_order_dates`) -> the raw rows, orders, order lines and rejects
    of days first..last (all days when not given).

    Rows must hold whole days. Repeats are judged within a day (identical rows share their
    order time, so their day), and an order id against the first day it appears on
    (`_first_day`), so that what a day keeps does not depend on the range of the run that loads it.
    """
    has = set(rules.layout.fields)
    decimal = rules.layout.decimal
    if "quantity" in has:
        quantity = parse_number(pl.col("quantity"), decimal)
    elif "items" in has:
        quantity = parse_number(pl.col("items"), decimal)
    else:
        quantity = pl.lit(1.0)
    price = parse_number(pl.col("unit_price"), decimal)
    amount = parse_number(pl.col("amount"), decimal) if "amount" in has else quantity * price
    numbers = [f for f in NUMBER_FIELDS if f in has]
    ambiguous = pl.any_horizontal(ambiguous_number(pl.col(f), decimal) for f in numbers)
    malformed = pl.coalesce(
        pl.lit(None, pl.String),
        *(
            pl.when(malformed_number(pl.col(f), decimal)).then(
                pl.format("column '{}' holds '{}'", pl.lit(rules.layout.columns.get(f, f)), pl.col(f))
            )
            for f in numbers
        ),
    )
    ordered = in_source_order(rows)
    # lazily, in one plan: each value's text is parsed once where several expressions read it
    rows = rows.lazy().with_columns(
        _quantity=quantity,
        _amount=amount,
        _ambiguous=ambiguous,
        _malformed=malformed,
        _customer=rules.customer_ids.normalize(pl.col("customer_id")),
    )
    rows = rows.with_columns(
        _void=_cancelled_orders(rules.layout.cancellation, has),
        _return=_return_documents(rules.layout.cancellation, has),
    )
    waiting = pl.col("status").is_in(list(rules.layout.open_statuses)).fill_null(False) if "status" in has else None
    rows = rows.with_columns(
        order_id=pl.col("order_id") if "order_id" in has else _derived_order_id(),
        _cancel=pl.col("_void") | pl.col("_return"),
        _open=(waiting if waiting is not None else pl.lit(False)) & ~pl.col("_void") & ~pl.col("_return"),
    )
    rows = rows.with_columns(
        # A cancelled order nets to nothing, and an open one is not revenue yet; a return takes its value back.
        _money=pl.when(pl.col("_void") | pl.col("_open"))
        .then(0.0)
        .when(pl.col("_return"))
        .then(-pl.col("_amount").abs())
        .otherwise(pl.col("_amount")),
    )

    # A product's name is a label, not part of what a row records: an export that renamed a
    # product between two copies of the same line still holds one line.
    source_fields = [f for f in FIELDS if f in has and f != "product"]
    customer_missing = rules.customer_ids.is_missing(pl.col("_customer"))
    rows = rows.with_columns(_identical=pl.struct(source_fields).is_first_distinct().over("order_date").not_())
    reason = (
        pl.when(pl.col("_shape").is_not_null())
        .then(pl.lit("ragged_row"))
        .when(pl.col("_identical") & (rules.layout.duplicates == "drop"))
        .then(pl.lit("duplicate"))
        .when(pl.col("_ts").is_null())
        .then(pl.lit("bad_timestamp"))
        .when(~pl.col("_ts").dt.date().is_between(*rules.history) if rules.history else pl.lit(False))
        .then(pl.lit("outside_history"))
        .when(customer_missing)
        .then(pl.lit("missing_customer"))
        .when(pl.col("_ambiguous"))
        .then(pl.lit("ambiguous_amount"))
        .when(pl.col("_malformed").is_not_null())
        .then(pl.lit("malformed_amount"))
        .when(pl.col("_amount").is_null() | pl.col("_amount").is_nan())
        .then(pl.lit("bad_amount"))
        .when(~pl.col("_cancel") & (pl.col("_amount") < 0))
        .then(pl.lit("negative_amount"))
        .when(pl.col("_amount").abs() > rules.max_amount)
        .then(pl.lit("outlier"))
    )
    if "currency" in has:  # a row without a currency is in the shop's
        currency = pl.col("currency").str.strip_chars().str.to_uppercase().fill_null(rules.currency)
        reason = reason.when(currency != rules.currency).then(pl.lit("other_currency"))
    rows = (rows if ordered else rows.sort("_source", "_row")).with_columns(reason=reason)
    if rules.layout.rows == "orders":
        rows = rows.with_columns(reason=pl.coalesce("reason", _repeated_order_id()))
    if first is not None and last is not None:
        rows = rows.filter(pl.col("order_date").is_between(first, last))
    if rules.layout.rows == "lines":  # all lines of an order share its day, so the window holds them all
        rows = rows.with_columns(reason=pl.coalesce("reason", _mixed_customers()))

    rows = rows.collect()
    kept = rows.filter(pl.col("reason").is_null())
    rejects = rows.filter(pl.col("reason").is_not_null())
    return CleanOrders(
        raw=rows.select("_source", "_row", *FIELDS, "order_date", "_ts"),
        orders=_orders(kept, rules),
        lines=_lines(kept),
        rejects=_rejects(rejects, rules),
        identical_rows=int(rows["_identical"].sum()),
        statuses=status_counts(kept, rules),
    )


def status_counts(kept: pl.DataFrame, rules: CleaningRules) -> pl.DataFrame:
    """Kept rows -> `status, treated, orders`: the orders of each status as the source writes it, and how they
    were treated (completed, open or cancelled); no rows when the source has no status."""
    if "status" not in rules.layout.fields:
        return NO_STATUSES
    treated = pl.when(pl.col("_cancel")).then(pl.lit(CANCELLED)).when(pl.col("_open")).then(pl.lit(OPEN))
    return (
        kept.group_by(status=pl.col("status").fill_null(NO_STATUS), treated=treated.otherwise(pl.lit(COMPLETED)))
        .agg(orders=pl.col("order_id").n_unique())
        .sort("status", "treated")
    )


def in_source_order(rows: pl.DataFrame) -> bool:
    """Whether rows are by `_source`, `_row` already (a sort of a chunk's text costs a third of its cleaning)."""
    source, row = pl.col("_source"), pl.col("_row")
    follows = (source > source.shift()) | ((source == source.shift()) & (row > row.shift()))
    return rows.select(follows.slice(1).all()).item()


def _derived_order_id() -> pl.Expr:
    """A stable id for sources without one: customer, time, and which such row it is."""
    base = pl.col("_customer").fill_null("") + "-" + pl.col("_ts").dt.strftime("%Y%m%d%H%M%S").fill_null("")
    nth = pl.int_range(pl.len()).over(base, order_by=["_source", "_row"]) + 1
    return base + "-" + nth.cast(pl.String)


def _repeated_order_id() -> pl.Expr:
    """An order row whose id appeared on an earlier day, or on an earlier, not refused, row of its day
    (rows in source order)."""
    alive = pl.col("reason").is_null()
    first_of_day = pl.when(alive).then(pl.col("order_id")).is_first_distinct().over("order_date")
    repeated = (pl.col("order_date") > pl.col("_first_day")) | ~first_of_day
    return pl.when(alive & repeated).then(pl.lit("duplicate_order"))


def _mixed_customers() -> pl.Expr:
    """The lines of an order that names different customers."""
    alive = pl.col("reason").is_null()
    mixed = pl.col("_customer").filter(alive).n_unique().over("order_id") > 1
    return pl.when(alive & mixed).then(pl.lit("conflicting_customer"))


def _orders(kept: pl.DataFrame, rules: CleaningRules) -> pl.DataFrame:
    """One row per order: lines summed, a cancellation document keeps its negative amount."""
    has = set(rules.layout.fields)
    if rules.layout.rows == "orders":  # order ids are unique among kept rows: nothing to sum
        orders = kept.select(
            "order_id", "order_date", customer_id="_customer", order_ts="_ts", amount=pl.col("_money").round(2),
            items=pl.col("_quantity") if {"quantity", "items"} & has else pl.lit(1), cancelled="_cancel", open="_open",
            **{f: f for f in ("channel", "region", "category", "shipped_ts", "delivered_ts") if f in has},
        )  # fmt: skip
    else:
        orders = kept.group_by("order_id").agg(
            customer_id=pl.col("_customer").first(),
            order_ts=pl.col("_ts").min(),
            order_date=pl.col("order_date").min(),
            amount=pl.col("_money").sum().round(2),
            items=pl.col("_quantity").sum() if {"quantity", "items"} & has else pl.len(),
            cancelled=pl.col("_cancel").all(),
            open=pl.col("_open").all(),
            **{f: pl.col(f).drop_nulls().first() for f in ("channel", "region") if f in has},
            **(
                {"category": pl.col("category").sort_by("_amount", descending=True).first()}
                if "category" in has
                else {}
            ),
            **{f: pl.col(f).max() for f in ("shipped_ts", "delivered_ts") if f in has},
        )
    missing = {
        f: pl.lit(None, pl.String)
        for f in ("channel", "region", "category", "shipped_ts", "delivered_ts")
        if f not in has
    }
    return (
        orders.lazy()
        .with_columns(**missing)
        .select(
            "order_id",
            "customer_id",
            "order_ts",
            "order_date",
            "amount",
            items=pl.col("items").cast(pl.Int64),
            channel="channel",
            region="region",
            category="category",
            status=pl.when(pl.col("cancelled"))
            .then(pl.lit(CANCELLED))
            .when(pl.col("open"))
            .then(pl.lit(OPEN))
            .otherwise(pl.lit(COMPLETED)),
            currency=pl.lit(rules.currency),
            shipped_ts=parse_timestamp(pl.col("shipped_ts"), rules),
            delivered_ts=parse_timestamp(pl.col("delivered_ts"), rules),
        )
        .collect()
    )


def _lines(kept: pl.DataFrame) -> pl.DataFrame:
    """One row per kept source row, with its signed quantity (an order row is a one-line order)."""
    # A return takes goods back; a cancelled order moved none, and an open one none yet.
    quantity = (
        pl.when(pl.col("_void") | pl.col("_open")).then(0.0).when(pl.col("_return")).then(-pl.col("_quantity").abs())
    )
    quantity = quantity.otherwise(pl.col("_quantity"))
    return kept.select(
        "order_id",
        "order_date",
        sku=pl.col("sku") if "sku" in kept.columns else pl.lit(None, pl.String),
        product=pl.col("product") if "product" in kept.columns else pl.lit(None, pl.String),
        category=pl.col("category") if "category" in kept.columns else pl.lit(None, pl.String),
        quantity=quantity,
        unit_price=pl.when(quantity != 0).then(pl.col("_money") / quantity).otherwise(None).round(4),
        amount=pl.col("_money").round(2),
    )


def _rejects(refused: pl.DataFrame, rules: CleaningRules) -> pl.DataFrame:
    detail = pl.col("reason").replace_strict(REASONS, return_dtype=pl.String)
    unreadable_ts = pl.col("reason") == "bad_timestamp"
    detail = (
        pl.when(unreadable_ts)
        .then(detail + pl.lit("; filed under the day of the nearest readable row of its file, or history's first"))
        .when(pl.col("reason") == "ragged_row")
        .then(detail + pl.lit(": ") + pl.col("_shape"))
        .when(pl.col("reason") == "outside_history")
        .then(detail + pl.lit("; filed under the nearest day of history"))
        .when(pl.col("reason") == "malformed_amount")
        .then(detail + pl.lit(": ") + pl.col("_malformed"))
        .when(pl.col("reason") == "outlier")
        .then(detail + pl.lit(f" ({rules.max_amount:g})"))
        .otherwise(detail)
    )
    return refused.select("_source", "_row", "order_date", "reason", *FIELDS, detail=detail)
