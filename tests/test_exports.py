"""Reading exports: encodings, Excel, Parquet, folders, and files that cannot be read."""

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from pipelines.settings import parse_settings
from pipelines.sources.exports import MalformedExportError, read_exports

CN_HEADER = "订单号,买家ID,下单时间,实付金额,省份\n"
CN_ROWS = "T001,张三,2024-11-11 00:05:00,199.00,浙江\nT002,李四,2024-11-11 09:30:00,58.50,广东\n"
CN_COLUMNS = {
    "order_id": "订单号",
    "customer_id": "买家ID",
    "order_ts": "下单时间",
    "amount": "实付金额",
    "region": "省份",
}


def source(path: Path, **extra):
    raw = {
        "name": "s",
        "history_start": "2024-01-01",
        "source": {"kind": "file", "path": str(path), "columns": CN_COLUMNS, **extra},
    }
    return parse_settings(raw, path.parent / "shop.yaml").source


def test_a_gbk_csv_reads_as_text_in_warehouse_names(tmp_path):
    path = tmp_path / "淘宝导出.csv"
    path.write_bytes((CN_HEADER + CN_ROWS).encode("gbk"))
    frame = read_exports(source(path, encoding="gbk"))
    assert frame.columns == ["_source", "_row", "order_id", "customer_id", "order_ts", "amount", "region", "_shape"]
    assert frame.row(0) == ("淘宝导出.csv", 1, "T001", "张三", "2024-11-11 00:05:00", "199.00", "浙江", None)


def test_a_gbk_csv_read_as_utf8_names_the_row_and_column(tmp_path):
    path = tmp_path / "export.csv"
    # A UTF-8 export with GBK rows appended by another tool.
    path.write_bytes((CN_HEADER + "T000,zhang,2024-11-11 00:01:00,19.00,zj\n").encode() + CN_ROWS.encode("gbk"))
    with pytest.raises(MalformedExportError) as error:
        read_exports(source(path))
    # The first GBK bytes of a value are in data row 2 ("张三"), column 买家ID.
    assert (error.value.file, error.value.row, error.value.column) == ("export.csv", 2, "买家ID")
    assert "encoding" in str(error.value)


def test_an_xlsx_export_keeps_typed_cells_as_readable_text(tmp_path):
    path = tmp_path / "orders.xlsx"
    pl.DataFrame(
        {
            "订单号": ["T001"],
            "买家ID": [12345],
            "下单时间": [datetime(2024, 11, 11, 0, 5)],
            "实付金额": [199.0],
            "省份": ["浙江"],
        }  # fmt: skip
    ).write_excel(path)
    frame = read_exports(source(path))
    assert frame.select("customer_id", "order_ts", "amount").row(0) == ("12345", "2024-11-11 00:05:00", "199")


def test_a_folder_of_parquet_files_reads_every_file(tmp_path):
    folder = tmp_path / "exports"
    (folder / "2024").mkdir(parents=True)
    frame = pl.read_csv((CN_HEADER + CN_ROWS).encode(), infer_schema=False)
    frame.head(1).write_parquet(folder / "2024" / "a.parquet")
    frame.tail(1).write_parquet(folder / "b.parquet")
    read = read_exports(source(folder))
    assert sorted(read.select("_source", "order_id").rows()) == [("2024/a.parquet", "T001"), ("b.parquet", "T002")]


def test_a_missing_mapped_column_names_the_file_and_column(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("订单号,买家ID,下单时间,省份\nT001,a,2024-11-11 00:05:00,浙江\n", encoding="utf-8")
    with pytest.raises(MalformedExportError) as error:
        read_exports(source(path))
    assert (error.value.file, error.value.column) == ("export.csv", "实付金额")
    assert "订单号, 买家ID, 下单时间, 省份" in str(error.value)


def test_a_path_with_no_exports_says_so(tmp_path):
    with pytest.raises(MalformedExportError, match="no export file found"):
        read_exports(source(tmp_path / "missing" / "*.csv"))


def test_a_file_reached_through_a_linked_folder_is_read_once(tmp_path):
    folder = tmp_path / "exports"
    (folder / "2024").mkdir(parents=True)
    (folder / "2024" / "november.csv").write_text(CN_HEADER + CN_ROWS, encoding="utf-8")
    (folder / "latest").symlink_to(folder / "2024")  # the same file again, as exports/latest/november.csv
    (folder / "older").mkdir()
    (folder / "older" / "october.csv").write_text(CN_HEADER + "T000,王五,2024-10-01 10:00:00,9.90,江苏\n")
    (tmp_path / "linked").symlink_to(folder / "older")  # a folder that is only reached through a link
    (folder / "more").symlink_to(tmp_path / "linked")
    for path in (folder / "**" / "*.csv", folder):
        read = read_exports(source(path))
        # november.csv's 2 rows once (by its shortest path), october.csv's 1 row once: 3 rows, not 5
        assert sorted(read.select("_source", "order_id").rows()) == [
            ("2024/november.csv", "T001"), ("2024/november.csv", "T002"), ("more/october.csv", "T000"),
        ]  # fmt: skip


@pytest.mark.parametrize("loop", ["up", "self.csv"])
def test_a_symbolic_link_loop_stops_with_one_line_naming_it(tmp_path, loop):
    folder = tmp_path / "exports"
    (folder / "2024").mkdir(parents=True)
    (folder / "2024" / "november.csv").write_text(CN_HEADER + CN_ROWS, encoding="utf-8")
    link = folder / "2024" / loop
    link.symlink_to(folder if loop == "up" else link)  # a link to a folder above it, or to itself
    for path in (folder / "**" / "*.csv", folder):
        with pytest.raises(MalformedExportError) as error:
            read_exports(source(path))
        assert error.value.file == str(link) and "\n" not in str(error.value)
        assert "symbolic link that leads round in a loop" in str(error.value)


def test_a_field_longer_than_the_csv_modules_limit_is_read_whole(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(CN_HEADER + f"T001,张三,2024-11-11 00:05:00,199.00,{'浙' * 700_000}\n", encoding="utf-8")
    read = read_exports(source(path))
    assert read["region"].str.len_chars().to_list() == [700_000] and read["_shape"].to_list() == [None]


@pytest.mark.parametrize(
    ("bad_row", "cause"),
    [
        ('T002,李四,2024-11-11 09:30:00,58.50,24" monitor', "an inch mark"),
        ('T002,李四,2024-11-11 09:30:00,58.50,"广东', "nothing closes it"),
        ('T002,李四,2024-11-11 09:30:00,58.50,"广东"省', "text after the closing quote"),
        ("T002,李四,2024-11-11 09:30:00,58.50,广\r东", "carriage return (CR) without a line feed"),
    ],
)
def test_a_quote_mark_or_lone_cr_that_breaks_the_csv_names_the_file_row_and_column(tmp_path, bad_row, cause):
    path = tmp_path / "export.csv"
    rows = ["T001,张三,2024-11-11 00:05:00,199.00,浙江", bad_row, "T003,王五,2024-11-11 10:00:00,9.90,江苏"]
    path.write_text(CN_HEADER + "\n".join(rows) + "\n", encoding="utf-8", newline="")
    with pytest.raises(MalformedExportError) as error:
        read_exports(source(path))
    # the second data row, in the column 省份 (the fifth): one line that says what is wrong and what to do
    assert (error.value.file, error.value.row, error.value.column) == ("export.csv", 2, "省份")
    assert cause in str(error.value) and "\n" not in str(error.value) and ": " in str(error.value)
