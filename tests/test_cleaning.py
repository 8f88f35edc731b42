"""Cleaning on tiny hand-made exports: each rule, and where each row ends."""

from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.orders.cleaning import REASONS, CleaningRules, as_raw_text, clean_orders, file_index, with_order_dates
from pipelines.settings import CancellationRule
from pipelines.sources import SourceLayout
from pipelines.sources.exports import MalformedExportError
from reports.translations import TEXT

ORDER_FIELDS = ("order_id", "customer_id", "order_ts", "amount", "status")


def rows(*records: tuple, fields=ORDER_FIELDS) -> pl.DataFrame:
    frame = pl.DataFrame([dict(zip(fields, r, strict=True)) for r in records], schema={f: pl.String for f in fields})
    return frame.with_columns(_source=pl.lit("export.csv"), _row=pl.int_range(1, pl.len() + 1, dtype=pl.Int64))


def rules(fields=ORDER_FIELDS, **layout) -> CleaningRules:
    layout = {"timezone": "Asia/Shanghai", "cancellation": CancellationRule(status_in=["refunded"])} | layout
    return CleaningRules(
        SourceLayout(fields=fields, **layout), shop_timezone="Asia/Shanghai", max_amount=10_000, currency="CNY"
    )


def clean(frame: pl.DataFrame, cleaning: CleaningRules):
    return clean_orders(with_order_dates(as_raw_text(frame), cleaning), cleaning)


def reasons(result) -> dict[int, str]:
    return dict(result.rejects.select("_row", "reason").iter_rows())


def test_each_refused_row_gets_its_reason_and_the_rest_are_kept():
    result = clean(
        rows(
            ("A1", "c1", "2024-11-11 10:00:00", "100", "paid"),  # 1 kept
            ("A1", "c1", "2024-11-11 10:00:00", "100", "paid"),  # 2 identical to 1
            ("A2", "c1", "2024-11-31 10:00:00", "100", "paid"),  # 3 no 31 November
            ("A3", None, "2024-11-11 11:00:00", "100", "paid"),  # 4 no customer
            ("A4", "c2", "2024-11-11 12:00:00", "abc", "paid"),  # 5 not a number
            ("A5", "c2", "2024-11-11 13:00:00", "-5", "paid"),  # 6 negative, not a cancellation
            ("A6", "c3", "2024-11-11 14:00:00", "99999", "paid"),  # 7 beyond max_amount
            ("A1", "c4", "2024-11-11 15:00:00", "30", "paid"),  # 8 order id of row 1, other values
            ("A7", "c3", "2024-11-11 16:00:00", "¥1,200.50", "paid"),  # 9 kept, 1200.5
        ),
        rules(),
    )
    assert reasons(result) == {
        2: "duplicate",
        3: "bad_timestamp",
        4: "missing_customer",
        5: "bad_amount",
        6: "negative_amount",
        7: "outlier",
        8: "duplicate_order",
    }
    assert result.orders.sort("order_id").select("order_id", "amount").rows() == [("A1", 100.0), ("A7", 1200.5)]
    assert result.lines.height + result.rejects.height == 9
    # The refused row keeps its values as received.
    assert result.rejects.filter(pl.col("_row") == 5)["amount"].to_list() == ["abc"]


def test_unreadable_time_is_filed_under_the_day_of_the_nearest_earlier_row():
    result = clean(
        rows(
            ("A1", "c1", "2024-11-10 23:00:00", "10", "paid"),
            ("A2", "c1", "not a time", "10", "paid"),
            ("A3", "c1", "2024-11-12 01:00:00", "10", "paid"),
        ),
        rules(),
    )
    refused = result.rejects.row(0, named=True)
    assert (refused["reason"], str(refused["order_date"])) == ("bad_timestamp", "2024-11-10")


def test_a_time_near_midnight_elsewhere_lands_on_the_shop_local_day():
    # 16:30 UTC on 10 November is 00:30 on 11 November in Beijing: a Double 11 order.
    result = clean(rows(("A1", "c1", "2024-11-10 16:30:00", "10", "paid")), rules(timezone="UTC"))
    order = result.orders.row(0, named=True)
    assert str(order["order_date"]) == "2024-11-11"
    assert str(order["order_ts"]) == "2024-11-11 00:30:00"


def test_an_order_the_source_marks_refunded_nets_to_zero():
    result = clean(rows(("A1", "c1", "2024-11-11 10:00:00", "80", "refunded")), rules())
    assert result.orders.select("amount", "status").rows() == [(0.0, "cancelled")]
    assert result.rejects.height == 0


LINE_FIELDS = ("order_id", "customer_id", "order_ts", "quantity", "unit_price", "sku")


def test_lines_sum_into_orders_and_a_cancellation_invoice_takes_its_value_back():
    result = clean(
        rows(
            ("1001", "c1", "2024-03-01 09:00:00", "2", "5.00", "MUG"),
            ("1001", "c1", "2024-03-01 09:00:00", "1", "3.50", "TEA"),
            ("C1002", "c1", "2024-03-05 10:00:00", "-1", "5.00", "MUG"),
            ("1003", "c2", "2024-03-06 10:00:00", "1", "4.00", "MUG"),
            ("1003", "c3", "2024-03-06 10:00:00", "1", "4.00", "TEA"),
            fields=LINE_FIELDS,
        ),
        rules(LINE_FIELDS, rows="lines", cancellation=CancellationRule(order_id_prefix="C")),
    )
    assert result.orders.sort("order_id").select("order_id", "amount", "items", "status").rows() == [
        ("1001", 13.5, 3, "completed"),
        ("C1002", -5.0, -1, "cancelled"),
    ]
    assert set(reasons(result).values()) == {"conflicting_customer"}
    assert result.lines.filter(pl.col("order_id") == "C1002")["quantity"].to_list() == [-1.0]
    assert result.orders["amount"].sum() == pytest.approx(8.5)


def test_rows_without_an_order_id_get_a_stable_derived_one():
    fields = ("customer_id", "order_ts", "amount")
    frame = rows(("c1", "2024-05-01 08:00:00", "10"), ("c1", "2024-05-01 08:00:00", "12"), fields=fields)
    first = clean(frame, rules(fields)).orders["order_id"].to_list()
    again = clean(frame.reverse(), rules(fields)).orders["order_id"].to_list()
    assert first == ["c1-20240501080000-1", "c1-20240501080000-2"]
    assert sorted(again) == first


def test_a_column_where_no_value_reads_as_its_type_refuses_the_file():
    frame = rows(("A1", "c1", "11/11/2024", "10", "paid"), ("A2", "c1", "12/11/2024", "10", "paid"))
    with pytest.raises(MalformedExportError) as error:
        with_order_dates(
            as_raw_text(frame), rules(timestamp_format="%Y-%m-%d %H:%M:%S", columns={"order_ts": "下单时间"})
        )
    assert (error.value.file, error.value.row, error.value.column) == ("export.csv", 1, "下单时间")


def test_a_file_index_checks_numbers_on_the_first_rows_and_reads_on_only_when_none_of_them_reads():
    def export(amounts: list[str]) -> pl.LazyFrame:
        records = [(f"A{n}", "c1", f"2024-11-11 10:{n % 60:02d}:00", a, "paid") for n, a in enumerate(amounts)]
        return as_raw_text(rows(*records)).lazy()

    cleaning = rules(columns={"amount": "实付金额"})
    # 1,200 rows without an amount, then a number: the file is read on, and the column reads
    index = file_index(export([""] * 1200 + ["10"]), cleaning)
    assert index.height == 1201 and index["order_date"].unique().to_list() == [date(2024, 11, 11)]
    # a column in which no value is a number, from its first row on: the file is refused, naming where
    with pytest.raises(MalformedExportError) as error:
        file_index(export([""] * 1200 + ["paid"] * 5), cleaning)
    assert (error.value.file, error.value.row, error.value.column) == ("export.csv", 1201, "实付金额")
    assert "no value reads as a number (first value: 'paid')" in str(error.value)


def test_a_row_in_another_currency_is_refused_and_orders_carry_the_shops():
    fields = (*ORDER_FIELDS, "currency")
    result = clean(
        rows(
            ("A1", "c1", "2024-11-11 10:00:00", "10", "paid", "cny"),
            ("A2", "c1", "2024-11-11 11:00:00", "10", "paid", "USD"),
            ("A3", "c1", "2024-11-11 12:00:00", "10", "paid", None),
            fields=fields,
        ),  # fmt: skip
        rules(fields),
    )
    assert reasons(result) == {2: "other_currency"}
    assert result.orders["currency"].unique().to_list() == ["CNY"]


def test_a_line_copied_with_a_renamed_product_is_still_a_duplicate():
    fields = ("order_id", "customer_id", "order_ts", "quantity", "unit_price", "sku", "product")
    result = clean(
        rows(
            ("536365", "c1", "2010-12-01 08:26:00", "6", "2.55", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER"),
            ("536365", "c1", "2010-12-01 08:26:00", "6", "2.55", "85123A", "CREAM HANGING HEART T-LIGHT HOLDER"),
            ("536365", "c1", "2010-12-01 08:26:00", "8", "2.75", "71053", "WHITE METAL LANTERN"),
            fields=fields,
        ),
        rules(fields, rows="lines", cancellation=CancellationRule(order_id_prefix="C")),
    )
    assert reasons(result) == {2: "duplicate"}
    assert result.lines.sort("sku")["product"].to_list() == [
        "WHITE METAL LANTERN",
        "WHITE HANGING HEART T-LIGHT HOLDER",
    ]
    assert result.orders["amount"].to_list() == [6 * 2.55 + 8 * 2.75]


@pytest.mark.parametrize(
    ("decimal", "amounts", "kept"),
    [
        # each value tells its mark: a single mark, or thousands in groups of three, reads; the rest are refused
        ("auto", ["12.5.1", "1.2.3", "1,2,3", "12,34.5", "1,23,456.00", "1.234,5.6", "1,234.50", "1.234.567", "¥7.5"],
         {"A7": 1234.5, "A8": 1234567.0, "A9": 7.5}),
        # with a stated decimal comma, a dot groups thousands: '12.5' (a group of one digit) is malformed, not 125
        (",", ["12.5", "1.234,5", "1,2,3", "1.234.567"], {"A2": 1234.5, "A4": 1234567.0}),
    ],
)  # fmt: skip
def test_an_amount_with_two_decimal_marks_or_misplaced_thousands_marks_is_refused_as_malformed(decimal, amounts, kept):
    records = [(f"A{n}", "c1", "2024-11-11 10:00:00", amount, "paid") for n, amount in enumerate(amounts, 1)]
    cleaning = rules(decimal=decimal, columns={"amount": "实付金额"})
    cleaning = CleaningRules(cleaning.layout, "Asia/Shanghai", max_amount=1e7)
    result = clean(rows(*records), cleaning)
    assert dict(result.orders.select("order_id", "amount").iter_rows()) == kept
    refused = result.rejects.sort("_row")
    assert set(refused["reason"]) == {"malformed_amount"}
    assert refused["order_id"].to_list() == [f"A{n}" for n in range(1, len(amounts) + 1) if f"A{n}" not in kept]
    # the detail names the export's column and the value as written (the file and row are the row's own)
    assert refused["detail"][0].endswith(f"column '实付金额' holds '{amounts[0]}'")
    assert refused.select("_source", "_row").row(0) == ("export.csv", 1)


def test_every_refusal_reason_has_words_in_every_report_language():
    # the review lists refused rows by reason: a reason without words in a language stopped the review
    missing = {
        language: sorted(reason for reason in REASONS if f"reason_{reason}" not in words)
        for language, words in TEXT.items()
    }
    assert missing == {language: [] for language in TEXT}


# Amounts as exports write them, each with the value it means (worked out from the number, not parsed back) ...
STYLES = {
    "plain": lambda v: f"{v:.2f}",  # 1234.50
    "thousands": lambda v: f"{v:,.2f}",  # 1,234.50
    "european": lambda v: f"{v:,.2f}".translate(str.maketrans(",.", ".,")),  # 1.234,50
    "decimal_comma": lambda v: f"{v:.2f}".replace(".", ","),  # 1234,50
    "yuan": lambda v: f"¥{v:,.2f}",  # ¥1,234.50
}
WRITTEN_AMOUNTS = st.builds(
    lambda cents, style: (STYLES[style](cents / 100), cents / 100),
    st.integers(1, 999_999),  # up to 9,999.99, within max_amount
    st.sampled_from(sorted(STYLES)),
)
NOT_TWO_DIGITS = st.integers(0, 99).map(str) | st.integers(1000, 99_999).map(str)  # a group that is not three digits
# ... and amounts that no number is written as, or that a row may not have: (text, None)
REFUSED_AMOUNTS = st.one_of(
    st.builds(lambda a, b, c, mark: f"{a}{mark}{b}{mark}{c}", st.integers(1, 999), NOT_TWO_DIGITS,
              st.integers(0, 999), st.sampled_from(".,")),  # 12.5.1, 1,2,3
    st.builds(lambda a, b, c: f"{a},{b}.{c}", st.integers(1, 999), NOT_TWO_DIGITS, st.integers(0, 99)),  # 12,34.5
    st.sampled_from(["12.5.1", "1.2.3", "1,2,3", "1,250", "abc", "", "-5", "99999", "1.234,5.6"]),
).map(lambda text: (text, None))  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            WRITTEN_AMOUNTS | REFUSED_AMOUNTS,
            st.sampled_from(["c1", "c2", "c3", "", "NULL"]),  # the last two: no customer
            st.sampled_from(["2024-11-10 09:00:00", "2024-11-11 23:59:59", "2024-11-12T01:00:00+08:00", "soon"]),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_every_row_is_kept_with_the_value_it_was_written_with_or_refused_with_a_reason(drawn):
    # a good first row: a file in which no time or no amount reads at all is refused whole (mapped wrong), not by row
    drawn = [(("10", 10.0), "c1", "2024-11-10 08:00:00"), *drawn]
    records = [(f"A{n}", customer, ts, text, "paid") for n, ((text, _), customer, ts) in enumerate(drawn)]
    result = clean(rows(*records), rules())
    kept = dict(result.orders.select("order_id", "amount").iter_rows())
    refused = dict(result.rejects.select("order_id", "reason").iter_rows())
    assert result.rejects.height == len(refused) and not kept.keys() & refused.keys()  # each row in one place
    assert kept.keys() | refused.keys() == {order_id for order_id, *_ in records}  # and every row somewhere
    for (order_id, customer, ts, text, _), ((_, value), *_) in zip(records, drawn, strict=True):
        good = value is not None and customer in ("c1", "c2", "c3") and ts != "soon"
        if good:
            assert kept.get(order_id) == pytest.approx(value, abs=0.005), (text, refused.get(order_id))
        else:
            assert refused.get(order_id) in REASONS, (text, customer, ts, kept.get(order_id))
