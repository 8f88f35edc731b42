"""The ingest step in process on temp warehouses: partitions, files, failures."""

import duckdb
import polars as pl

from tests.conftest import COLUMNS, file_shop, ingest, shop, table, write_csv


def counts(settings) -> dict[str, int]:
    return {
        name: table(settings, name).height
        for name in ("raw.orders", "staging.orders", "staging.order_lines", "staging.rejects")
    }


def test_materializing_a_partition_twice_gives_the_same_tables(tmp_path):
    settings = shop(tmp_path)
    ingest(settings, "2024-11-01", "2024-11-30")
    first = {name: table(settings, name) for name in counts(settings)}
    ingest(settings, "2024-11-01", "2024-11-30")
    for name, frame in first.items():
        assert table(settings, name).equals(frame), name
    assert first["raw.orders"].height > 100


def test_every_source_row_is_kept_or_refused_on_its_own_day(tmp_path):
    settings = shop(tmp_path, source={"kind": "synthetic", "seed": 3, "customers": 2000, "dirty_share": 0.05})
    ingest(settings, "2024-01-01", "2024-06-30")
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        mismatched = conn.sql("""
            WITH raw AS (SELECT order_date, count(*) n FROM raw.orders GROUP BY ALL),
                 kept AS (SELECT order_date, count(*) n FROM staging.order_lines GROUP BY ALL),
                 refused AS (SELECT order_date, count(*) n FROM staging.rejects GROUP BY ALL)
            SELECT * FROM raw FULL JOIN kept USING (order_date) FULL JOIN refused USING (order_date)
            WHERE coalesce(raw.n, 0) != coalesce(kept.n, 0) + coalesce(refused.n, 0)
        """).fetchall()
        reasons = {r for (r,) in conn.sql("SELECT DISTINCT reason FROM staging.rejects").fetchall()}
    assert mismatched == []
    assert reasons == {"duplicate", "bad_timestamp", "missing_customer", "negative_amount", "outlier"}


def test_a_utc_export_lands_near_midnight_on_the_shop_local_day(tmp_path):
    path = tmp_path / "orders.csv"
    write_csv(path, "A1,c1,2024-11-10 16:30:00,10,zj", "A2,c2,2024-11-10 15:59:59,20,zj")
    settings = file_shop(tmp_path, str(path), COLUMNS, timezone="UTC")
    ingest(settings, "2024-11-11")
    assert table(settings, "staging.orders").select("order_id", "order_ts").rows()[0][0] == "A1"
    assert table(settings, "staging.orders").height == 1  # A2 is 23:59:59 on the 10th in Beijing
    ingest(settings, "2024-11-10")
    assert sorted(table(settings, "staging.orders")["order_id"]) == ["A1", "A2"]


def test_rows_arriving_late_for_an_old_day_are_picked_up_by_rerunning_that_day(tmp_path):
    path = tmp_path / "orders.csv"
    write_csv(path, "A1,c1,2024-03-01 10:00:00,10,zj", "B1,c2,2024-03-02 10:00:00,20,zj")
    settings = file_shop(tmp_path, str(path), COLUMNS)
    ingest(settings, "2024-03-01", "2024-03-02")
    write_csv(
        path, "A1,c1,2024-03-01 10:00:00,10,zj", "B1,c2,2024-03-02 10:00:00,20,zj", "A2,c3,2024-03-01 23:00:00,30,zj"
    )
    ingest(settings, "2024-03-01")
    orders = table(settings, "staging.orders")
    assert sorted(orders["order_id"]) == ["A1", "A2", "B1"]
    assert counts(settings) == {"raw.orders": 3, "staging.orders": 3, "staging.order_lines": 3, "staging.rejects": 0}


def test_a_malformed_file_fails_the_run_by_name_and_leaves_the_warehouse_as_it_was(tmp_path):
    path = tmp_path / "orders.csv"
    write_csv(path, "A1,c1,2024-03-01 10:00:00,10,zj", "A2,,2024-03-01 11:00:00,10,zj")
    settings = file_shop(tmp_path, str(path), COLUMNS)
    ingest(settings, "2024-03-01")
    before = {name: table(settings, name) for name in counts(settings)}

    path.write_text("order_no,buyer,paid_at,province\nA1,c1,2024-03-01 10:00:00,zj\n")  # the total column is gone
    result = ingest(settings, "2024-03-01", raise_on_error=False)
    assert not result.success
    error = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    message = error.cause.message if error.cause else error.message
    assert "orders.csv" in message and "'total'" in message
    for name, frame in before.items():
        assert table(settings, name).equals(frame), name

    write_csv(path, "A1,c1,2024-03-01 10:00:00,10,zj", "A2,c2,2024-03-01 11:00:00,10,zj")  # fixed: re-run mends it
    ingest(settings, "2024-03-01")
    assert counts(settings)["staging.orders"] == 2 and counts(settings)["staging.rejects"] == 0


def test_an_xlsx_and_a_gbk_csv_in_one_folder_go_through(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    write_csv(folder / "taobao.csv", "T1,张三,2024-11-11 00:05:00,199.00,浙江", encoding="gbk")
    pl.DataFrame({"order_no": ["J1"], "buyer": ["李四"], "paid_at": ["2024-11-11 09:30:00"], "total": [58.5],
                  "province": ["广东"]}).write_excel(folder / "jd.xlsx")  # fmt: skip
    settings = file_shop(tmp_path, str(folder / "*.*"), COLUMNS, encoding="gbk")
    ingest(settings, "2024-11-11")
    orders = table(settings, "staging.orders")
    assert orders.select("order_id", "customer_id", "amount", "region").rows() == [
        ("J1", "李四", 58.5, "广东"),
        ("T1", "张三", 199.0, "浙江"),
    ]


def test_a_day_keeps_the_same_rows_whether_loaded_alone_or_in_a_range(tmp_path):
    path = tmp_path / "orders.csv"
    # A2 reuses A1's id on the next day with other values: the later row is the repeat, whatever the run.
    write_csv(
        path, "A1,c1,2024-03-01 10:00:00,10,zj", "A1,c2,2024-03-02 10:00:00,20,zj", "B1,c3,2024-03-02 11:00:00,5,zj"
    )
    alone, ranged = (
        file_shop(tmp_path / "alone", str(path), COLUMNS),
        file_shop(tmp_path / "ranged", str(path), COLUMNS),
    )
    ingest(alone, "2024-03-02")
    ingest(ranged, "2024-03-01", "2024-03-02")
    assert table(alone, "staging.rejects")["reason"].to_list() == ["duplicate_order"]
    day_two = table(ranged, "staging.orders").filter(pl.col("order_date") == pl.date(2024, 3, 2))
    assert day_two.equals(table(alone, "staging.orders"))


def test_a_warehouse_made_before_a_column_existed_takes_new_days_and_keeps_its_rows(tmp_path):
    settings = shop(tmp_path)
    ingest(settings, "2024-11-01")
    with duckdb.connect(str(settings.warehouse)) as conn:  # as an older version left it: no product names
        conn.execute("ALTER TABLE staging.order_lines DROP COLUMN product")
        conn.execute("ALTER TABLE raw.orders DROP COLUMN product")
    kept_before = table(settings, "staging.order_lines").height
    assert ingest(settings, "2024-11-02").success
    lines = table(settings, "staging.order_lines")
    named = lines.group_by(pl.col("order_date").dt.day().alias("day")).agg(pl.col("product").is_not_null().all())
    assert lines.filter(pl.col("order_date").dt.day() == 1).height == kept_before
    assert dict(named.iter_rows()) == {1: False, 2: True}  # old rows have no name; new ones do
