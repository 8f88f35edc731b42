"""Quality gates and daily operations: each GX suite passes and fails on its fixtures, quietly; a
corrupted day stops what comes after it; soft checks warn and let the run go on; rows reconcile;
transient failures are retried; the schedule's run request runs; a failed run is announced."""

import json
import re
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster._core.test_utils import freeze_time  # Dagster's own clock, which the freshness checks read

import assets.orders
from checks import order_rules, suites
from checks.customers import class_shift
from checks.orders import broken_order_rules, reconciliation, rule_values, sample
from pipelines.cli import _summary_line, _warning_line
from pipelines.definitions import CUSTOMERS_JOB, DAILY_JOB, REPORTS_JOB, build_definitions, job_name, shop_job
from pipelines.operations import Notifier, freshness_checks
from tests.conftest import COLUMNS, ROOT, file_shop, ingest, shop, table, write_csv

DAY = date(2024, 11, 11)


def run_suite(tmp_path, suite, frame, parameters=None):
    return suites.validate(suite, frame, tmp_path, "test-run", parameters)


GOOD_ORDERS = pl.DataFrame({
    "order_id": ["A1", "A2", "C3"], "customer_id": ["c1", "c2", "c1"], "amount": [10.0, 20.0, -5.0],
    "status": ["completed", "completed", "cancelled"], "order_date": [DAY] * 3, "currency": ["CNY"] * 3,
})  # fmt: skip


def test_clean_orders_suite_passes_on_clean_orders_and_names_each_failure(tmp_path):
    shop = {**suites.days(DAY, DAY), "max_amount": 1000, "currencies": ["CNY"]}
    assert run_suite(tmp_path, suites.clean_orders(), GOOD_ORDERS, shop).success  # a return may be negative
    bad = GOOD_ORDERS.with_columns(
        order_id=pl.Series(["A1", "A1", "C3"]),
        amount=pl.Series([10.0, -20.0, -5.0]),
        currency=pl.Series(["CNY", "USD", "CNY"]),
    )
    result = run_suite(tmp_path, suites.clean_orders(), bad, shop)
    failed = {(f["expectation"], f["column"]): f for f in result.failures}
    assert not result.success
    assert failed[("expect_column_values_to_be_unique", "order_id")]["unexpected_count"] == 2
    assert failed[("expect_column_values_to_be_between", "amount")]["sample"] == ["-20.0"]
    assert ("expect_column_values_to_be_in_set", "currency") in failed
    assert json.loads(result.result_file.read_text())["success"] is False
    assert (tmp_path / "data_docs" / "index.html").exists()
    assert list((tmp_path / "data_docs" / "validations" / "clean_orders" / "test-run").rglob("*.html"))


def test_a_clean_order_rule_changed_in_its_one_place_changes_the_sql_check_and_the_gx_suite(tmp_path, monkeypatch):
    settings = shop(tmp_path, quality={"max_order_amount": 1000})
    conn = duckdb.connect()
    conn.execute("CREATE TABLE written AS SELECT * FROM GOOD_ORDERS")

    def breaks(output) -> tuple[dict, set]:  # an output folder each: GX set up anew, as in a run process of its own
        found = broken_order_rules(conn, "written", [DAY], settings)
        parameters = rule_values(settings, []) | suites.days(DAY, DAY)
        suite = run_suite(output, suites.clean_orders(), GOOD_ORDERS, parameters)
        return found, {(f["expectation"], f["column"], tuple(f["sample"])) for f in suite.failures}

    assert breaks(tmp_path / "before") == ({}, set())
    # the one place: the amount rule of checks.order_rules; a completed order worth at most 15 there, and the order
    # of 20 (the only completed one above 15: the other is 10, the cancelled one -5) breaks it in the SQL and in GX
    rules = tuple(replace(r, high=15.0) if r.column == "amount" else r for r in order_rules.CLEAN_ORDER_RULES)
    monkeypatch.setattr(order_rules, "CLEAN_ORDER_RULES", rules)
    amount = ("expect_column_values_to_be_between", "amount")
    assert breaks(tmp_path / "after") == ({amount: {"unexpected_count": 1, "sample": ["20.0"]}}, {(*amount, ("20.0",))})


def test_each_clean_order_rule_is_one_expectation_and_names_reasons_cleaning_refuses_rows_for():
    from assets.orders.cleaning import REASONS

    assert [(e["type"], e["column"]) for e in suites.clean_orders().expectations] == [
        (rule.expectation, rule.column) for rule in order_rules.CLEAN_ORDER_RULES
    ]
    assert all(rule.reasons and set(rule.reasons) <= REASONS.keys() for rule in order_rules.CLEAN_ORDER_RULES)


def test_gx_stays_quiet_even_where_the_root_logger_shows_info(tmp_path):
    # a process of its own: GX logs while it is imported, and here it was imported long ago
    GOOD_ORDERS.write_parquet(tmp_path / "orders.parquet")
    script = f"""
import logging
from datetime import date
from pathlib import Path

import polars as pl

from checks import order_rules, suites

logging.basicConfig(level=logging.INFO)
orders = pl.read_parquet(Path({str(tmp_path)!r}) / "orders.parquet")
shop = {{**suites.days(date(2024, 11, 11), date(2024, 11, 11)), "max_amount": 1000, "currencies": ["CNY"]}}
assert suites.validate(suites.clean_orders(), orders, Path({str(tmp_path)!r}), "quiet", shop).success
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_a_suite_set_up_once_judges_each_run_by_its_own_parameters(tmp_path):
    def shop(day, currency):
        return {**suites.days(day, day), "max_amount": 1000, "currencies": [currency]}

    next_day = date(2024, 11, 12)
    outcomes = [run_suite(tmp_path, suites.clean_orders(), GOOD_ORDERS, shop(*p)) for p in
                [(DAY, "CNY"), (next_day, "CNY"), (DAY, "USD"), (DAY, "CNY")]]  # fmt: skip
    assert [r.success for r in outcomes] == [True, False, False, True]
    assert [f["column"] for f in outcomes[1].failures] == ["order_date"]
    assert [f["column"] for f in outcomes[2].failures] == ["currency"]


def test_data_docs_keep_the_pages_of_earlier_runs(tmp_path):
    wrong_currency = {**suites.days(DAY, DAY), "max_amount": 1000, "currencies": ["USD"]}
    for run_id in ("monday", "tuesday"):
        suites._context.cache_clear()  # as in a run process of its own
        suites._prepared.cache_clear()
        assert not suites.validate(suites.clean_orders(), GOOD_ORDERS, tmp_path, run_id, wrong_currency).success
    docs = tmp_path / "data_docs"
    index = (docs / "index.html").read_text()
    for run_id in ("monday", "tuesday"):
        assert list((docs / "validations" / "clean_orders" / run_id).rglob("*.html")), run_id
        assert f"clean_orders/{run_id}/" in index


def test_raw_orders_suite_wants_the_contract_columns_and_readable_times(tmp_path):
    from pipelines.warehouse import FIELDS

    raw = pl.DataFrame({"_source": ["f"] * 10, "_row": range(10), **{f: ["x"] * 10 for f in FIELDS},
                        "order_date": [DAY] * 10, "_ts": [datetime(2024, 11, 11)] * 9 + [None]})  # fmt: skip
    assert run_suite(tmp_path, suites.RAW_ORDERS, raw, suites.days(DAY, DAY)).success  # 9 of 10 times read: mostly 0.9
    unreadable = raw.with_columns(_ts=pl.lit(None, pl.Datetime)).drop("customer_id")
    failures = run_suite(tmp_path, suites.RAW_ORDERS, unreadable, suites.days(DAY, DAY)).failures
    assert {f["expectation"] for f in failures} == {
        "expect_table_columns_to_match_set",
        "expect_column_values_to_not_be_null",
    }


def test_customer_facts_suite(tmp_path):
    facts = pl.DataFrame({"customer_id": ["a", "b"], "recency_days": [0, 10], "orders": [1, 3]})
    assert run_suite(tmp_path, suites.CUSTOMER_FACTS, facts).success
    bad = pl.DataFrame({"customer_id": ["a", "a"], "recency_days": [-1, 10], "orders": [0, 3]})
    failures = run_suite(tmp_path, suites.CUSTOMER_FACTS, bad).failures
    assert {f["column"] for f in failures} == {"customer_id", "recency_days", "orders"}


def test_rfm_suite_reads_only_its_columns(tmp_path):
    rfm = pl.DataFrame({"r_score": [1, 5], "f_score": [3, 3], "m_score": [2, 4], "rfm_class": ["lost", "new"],
                        "tags": [["big_spender"], []]})  # fmt: skip
    assert suites.RFM.columns() == ["r_score", "f_score", "m_score", "rfm_class"]
    assert suites.clean_orders().columns() is None  # its amount expectation reads `status` in a row condition
    assert run_suite(tmp_path, suites.RFM, rfm).success
    bad = rfm.with_columns(r_score=pl.Series([0, 6]), rfm_class=pl.Series(["lost", "vip"]))
    failures = run_suite(tmp_path, suites.RFM, bad).failures
    assert {(f["column"], f["unexpected_count"]) for f in failures} == {("r_score", 2), ("rfm_class", 1)}


def daily_run(settings, day: str, instance):
    job = shop_job(settings, DAILY_JOB)
    return job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False)


def test_a_corrupted_day_stops_customers_and_outreach_and_says_why(tmp_path, monkeypatch):
    real_clean = assets.orders.clean_orders

    def corrupting(*args, **kwargs):  # as if cleaning let duplicated ids and a negative amount through
        clean = real_clean(*args, **kwargs)
        first = clean.orders.head(1)
        bad = pl.concat([clean.orders, first, first.with_columns(order_id=pl.lit("X1"), amount=pl.lit(-50.0))])
        return type(clean)(clean.raw, bad, clean.lines, clean.rejects)

    monkeypatch.setattr(assets.orders, "clean_orders", corrupting)
    settings = shop(tmp_path)
    with dg.DagsterInstance.ephemeral() as instance:
        result = daily_run(settings, "2024-11-11", instance)
        materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        checks = {e.event_specific_data.check_name: e.event_specific_data
                  for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}  # fmt: skip
    assert not result.success
    assert not materialized  # the day's orders are not written, and nothing after them runs
    rows = warehouse_rows(settings)
    assert all(rows[name].is_empty() for name in INGESTED)
    assert not rows["tables"].filter(pl.col("table_name").str.starts_with("_incoming")).height
    failed = checks["clean_orders_suite"]
    assert not failed.passed
    summary = failed.metadata["summary"].value
    assert "expect_column_values_to_be_unique(order_id) failed on 2 rows" in summary
    assert "expect_column_values_to_be_between(amount) failed on 1 rows, e.g. ['-50.0']" in summary


INGESTED = ("raw.orders", "staging.orders", "staging.order_lines", "staging.rejects", "raw.source_files")


def warehouse_rows(settings) -> dict[str, pl.DataFrame]:
    """Every table the ingest writes, whole, load times included, in a stable order; and the warehouse's table
    names (a run leaves none of its own behind)."""
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        rows = {name: conn.sql(f"SELECT * FROM {name}").pl().sort(pl.all()) for name in INGESTED}
        rows["tables"] = conn.sql("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL").pl()
    return rows


def test_a_failed_blocking_check_leaves_the_warehouse_as_it_was_and_a_fixed_file_loads(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    write_csv(folder / "2024-11-11.csv", "A1,c1,2024-11-11 10:00:00,10,zj", "A2,c2,2024-11-11 11:00:00,20,zj",
              "A3,c3,2024-11-11 12:00:00,30,zj")  # fmt: skip
    source = {"kind": "file", "path": str(folder), "columns": COLUMNS}
    settings = shop(tmp_path, source=source, quality={"max_order_amount": 1000})
    assert ingest(settings, "2024-11-11").success
    before = warehouse_rows(settings)
    assert before["raw.orders"].height == 3 and before["raw.source_files"].height == 1

    # The 12th's export holds an order worth 5,000, where the settings say no order is worth over 1,000
    # (below rules.max_amount, so cleaning keeps it): the clean-orders check fails, and nothing is written.
    write_csv(folder / "2024-11-12.csv", "B1,c4,2024-11-12 10:00:00,40,zj", "B2,c5,2024-11-12 11:00:00,5000,zj",
              "B3,c6,2024-11-12 12:00:00,60,zj")  # fmt: skip
    result = ingest(settings, "2024-11-12", raise_on_error=False)
    assert not result.success
    assert not result.get_asset_materialization_events()
    failed = {c.check_name: c for c in result.get_asset_check_evaluations() if not c.passed}
    assert set(failed) == {"clean_orders_suite"}
    assert "expect_column_values_to_be_between(amount) failed on 1 rows" in (
        failed["clean_orders_suite"].metadata["summary"].value
    )
    after = warehouse_rows(settings)
    for name, rows in before.items():
        assert after[name].equals(rows), name

    write_csv(folder / "2024-11-12.csv", "B1,c4,2024-11-12 10:00:00,40,zj", "B2,c5,2024-11-12 11:00:00,50,zj",
              "B3,c6,2024-11-12 12:00:00,60,zj")  # fmt: skip
    assert ingest(settings, "2024-11-12").success
    fixed = warehouse_rows(settings)
    assert fixed["staging.orders"]["order_id"].to_list() == ["A1", "A2", "A3", "B1", "B2", "B3"]
    heights = [fixed[name].height for name in ("raw.orders", "staging.order_lines", "staging.rejects")]
    assert heights == [6, 6, 0]
    assert fixed["raw.source_files"].select("file", "rows").rows() == [("2024-11-11.csv", 3), ("2024-11-12.csv", 3)]
    assert fixed["tables"].equals(before["tables"])


def test_one_bad_row_on_a_quiet_day_is_refused_like_any_other_and_the_day_loads(tmp_path):
    # six orders a day through November 28th; none on the 29th; on the 30th three rows, the last with a
    # time that cannot be read: 1 of 3 rows, a third of the day, but one row of the run
    lines = [f"{day}-{n},c{n},2024-11-{day:02d} 1{n}:00:00,10,zj" for day in range(1, 29) for n in range(6)]
    lines += ["30-0,c0,2024-11-30 10:00:00,10,zj", "30-1,c1,2024-11-30 11:00:00,10,zj",
              "30-2,c2,2024-11-30 25:61:00,10,zj"]  # fmt: skip
    path = tmp_path / "orders.csv"
    write_csv(path, *lines)
    settings = file_shop(tmp_path, str(path), COLUMNS)
    checks = {c.check_name: c for c in ingest(settings, "2024-11-01", "2024-11-28").get_asset_check_evaluations()}
    assert checks["orders_every_day"].passed and checks["rejected_share"].passed

    result = ingest(settings, "2024-11-29", "2024-11-30")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert result.success and table(settings, "staging.orders").height == 28 * 6 + 2
    [refused] = table(settings, "staging.rejects").to_dicts()
    assert (refused["order_id"], refused["reason"]) == ("30-2", "bad_timestamp")
    assert refused["order_date"] == date(2024, 11, 30)
    # 1 unreadable time and 1 refused row of 3, judged over 100 rows: within 10% (the raw suite) and 5%
    assert checks["raw_orders_suite"].passed and checks["rows_reconcile"].passed
    refused_share = checks["rejected_share"]
    assert refused_share.passed
    assert refused_share.metadata["rejected_share"].value == round(1 / 3, 4)
    assert refused_share.metadata["judged_over_rows"].value == 100
    quiet = checks["orders_every_day"]
    assert not quiet.passed and quiet.severity == dg.AssetCheckSeverity.WARN
    assert quiet.metadata["days_without_orders"].value == 1
    assert quiet.metadata["first_days"].value == "2024-11-29"


def test_many_refused_rows_warn_and_many_unreadable_times_stop_the_run(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    # 120 rows on December 1st, 10 of them negative amounts: 10 refused > 5% of 120 (6)
    write_csv(folder / "2024-12-01.csv", *(f"D1-{n},c{n},2024-12-01 {10 + n // 60}:{n % 60:02d}:00,"
                                           f"{-10 if n < 10 else 10},zj" for n in range(120)))  # fmt: skip
    settings = file_shop(tmp_path, str(folder), COLUMNS)
    result = ingest(settings, "2024-12-01")
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert result.success and table(settings, "staging.orders").height == 110
    refused = checks["rejected_share"]
    assert not refused.passed and refused.severity == dg.AssetCheckSeverity.WARN
    assert refused.metadata["rejected_share"].value == round(10 / 120, 4)
    before = warehouse_rows(settings)

    # 120 rows on December 2nd, the last 13 with an hour of 24: 13 unreadable > 10% of 120 (12) blocks
    write_csv(folder / "2024-12-02.csv", *(f"D2-{n},c{n},2024-12-02 {24 if n >= 107 else 10 + n // 60}:{n % 60:02d}:00,"
                                           f"10,zj" for n in range(120)))  # fmt: skip
    result = ingest(settings, "2024-12-02", raise_on_error=False)
    assert not result.success
    failed = {c.check_name: c for c in result.get_asset_check_evaluations()}["raw_orders_suite"]
    assert not failed.passed
    assert "expect_column_values_to_not_be_null(_ts) failed on 13 rows, e.g. ['2024-12-02 24:47:00'" in (
        failed.metadata["summary"].value
    )
    after = warehouse_rows(settings)
    for name, rows in before.items():
        assert after[name].equals(rows), name


def test_reconciliation_finds_the_day_whose_rows_do_not_add_up(tmp_path):
    settings = shop(tmp_path)
    ingest(settings, "2024-11-10", "2024-11-12")
    with duckdb.connect(str(settings.warehouse)) as conn:
        assert reconciliation(conn, date(2024, 11, 10), date(2024, 11, 12)).is_empty()
        conn.execute("DELETE FROM staging.order_lines WHERE rowid IN "
                     "(SELECT min(rowid) FROM staging.order_lines WHERE order_date = '2024-11-11')")  # fmt: skip
        [day] = reconciliation(conn, date(2024, 11, 10), date(2024, 11, 12)).to_dicts()
    assert day["order_date"] == date(2024, 11, 11) and day["rows_in"] == day["kept"] + day["refused"] + 1


def test_a_sample_is_stretches_of_the_days_rows_drawn_the_same_each_time_or_all_of_a_few():
    conn = duckdb.connect()
    # 60,000 rows: days 1, 2 and 3 of November in turn, then 30 rows of the 4th
    conn.execute(
        "CREATE TABLE t AS SELECT range AS n, DATE '2024-11-01' + CAST(range % 3 AS INTEGER) AS order_date "
        "FROM range(60000) UNION ALL SELECT 60000 + range, DATE '2024-11-04' FROM range(30)"
    )
    drawn = sample(conn, "t", date(2024, 11, 1), date(2024, 11, 2), stretch=500)
    assert drawn.height == pytest.approx(suites.SAMPLE_ROWS * 2 / 3, rel=0.05)  # 40 stretches, 2 days of 3 in each
    assert drawn["order_date"].is_between(date(2024, 11, 1), date(2024, 11, 2)).all()
    stretches = drawn.group_by(pl.col("n") // 500).len()
    assert stretches.height == suites.SAMPLE_ROWS // 500 and stretches["len"].is_between(333, 334).all()
    assert (
        drawn["n"].sort().to_list()
        == sample(conn, "t", date(2024, 11, 1), date(2024, 11, 2), 500)["n"].sort().to_list()
    )
    assert sample(conn, "t", date(2024, 11, 4), date(2024, 11, 4))["n"].sort().to_list() == list(range(60000, 60030))


def test_class_shift_is_the_move_of_each_class_share_in_points():
    before = pl.DataFrame({"rfm_class": ["lost", "lost", "new", "new"]})  # 50% / 50%
    now = pl.DataFrame({"rfm_class": ["lost", "new", "new", "new", "potential"]})  # 20% / 60% / 20%
    moves = class_shift(before, now)
    assert moves["rfm_class"].to_list() == ["lost", "new", "potential"]
    assert moves["before"].to_list() == pytest.approx([50, 50, 0])
    assert moves["now"].to_list() == pytest.approx([20, 60, 20])
    assert moves["points"].to_list() == [-30, 10, 20]
    assert class_shift(None, now).is_empty()  # the first snapshot has nothing to move from


def malformed_export_shop(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("order_no,buyer\nA1,c1\n")  # no time, amount or province column
    return file_shop(tmp_path, str(path), COLUMNS)


def test_a_transient_failure_is_retried_and_a_malformed_export_is_not(tmp_path, monkeypatch):
    real_ingest, calls = assets.orders.ingest_days, []

    def busy_once(*args):
        calls.append(args)
        if len(calls) == 1:
            raise OSError("the disk is busy")
        return real_ingest(*args)

    monkeypatch.setattr(assets.orders, "ingest_days", busy_once)
    with dg.DagsterInstance.ephemeral() as instance:
        result = daily_run(shop(tmp_path), "2024-11-11", instance)  # the retry waits its 30 s
    assert result.success and len(calls) == 2
    retried = [e.step_key for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retried == [f"{shop(tmp_path).id}__ingest_orders"]

    settings = malformed_export_shop(tmp_path)
    with dg.DagsterInstance.ephemeral() as instance:
        result = daily_run(settings, "2024-11-11", instance)
    error = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
    assert "orders.csv" in (error.cause or error).message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_every_step_that_opens_the_warehouse_is_in_its_single_writer_pool(tmp_path):
    settings = shop(tmp_path)
    graph = build_definitions(settings).resolve_asset_graph()
    opening = {a.node_def.name: a.op.pool for a in graph.assets_defs if a.is_executable and a.keys}
    assert len(opening) >= 9  # ingest, customers, analysis, reminders, care, plan, results, two reports
    assert set(opening.values()) == {settings.pool}, opening


def test_the_schedule_asks_for_yesterday_and_that_run_materializes_it(tmp_path):
    settings = shop(tmp_path)
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def(f"{job_name(settings, DAILY_JOB)}_schedule")
    tick = datetime(2024, 11, 12, 6, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    requests = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=tick)).run_requests
    assert [r.partition_key for r in requests] == ["2024-11-11"]
    with dg.DagsterInstance.ephemeral() as instance:
        assert daily_run(settings, requests[0].partition_key, instance).success
    orders = table(settings, "staging.orders")
    assert orders["order_date"].unique().to_list() == [date(2024, 11, 11)]
    assert table(settings, "core.rfm").height > 0


def test_freshness_flags_a_late_day_after_the_deadline_hour_and_runs_from_its_sensor_only(tmp_path):
    settings = shop(tmp_path)  # freshness_deadline_hour 9, Asia/Shanghai
    freshness = freshness_checks(settings)
    by_hand = dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(*freshness))
    defs = dg.Definitions.merge(build_definitions(settings), dg.Definitions(jobs=[by_hand]))
    zone = ZoneInfo("Asia/Shanghai")
    with dg.DagsterInstance.ephemeral() as instance:
        loaded = daily_run(settings, "2024-11-11", instance)
        checked = {e.asset_check_key for e in loaded.get_asset_check_evaluations()}
        assert checked and not checked & {key for check in freshness for key in check.check_keys}

        def fresh_at(now: datetime) -> bool:
            with freeze_time(now):
                result = defs.resolve_job_def("freshness").execute_in_process(instance=instance)
            [evaluation] = result.get_asset_check_evaluations()
            return evaluation.passed

        assert fresh_at(datetime(2024, 11, 12, 10, tzinfo=zone))  # yesterday (11-11) is there
        assert fresh_at(datetime(2024, 11, 13, 8, tzinfo=zone))  # 11-12 is not late before 9:00
        assert not fresh_at(datetime(2024, 11, 13, 10, tzinfo=zone))  # now it is


def test_a_failed_run_is_announced_by_the_failure_sensor(tmp_path):
    sent = []

    class Recording(Notifier):
        def send(self, text: str, log, shop: str | None = None) -> None:
            sent.append((text, shop))

    settings = malformed_export_shop(tmp_path)
    defs = build_definitions(settings)
    with dg.DagsterInstance.ephemeral() as instance:
        result = daily_run(settings, "2024-11-11", instance)
        context = dg.build_run_status_sensor_context(
            sensor_name="notify_on_failure", dagster_instance=instance, dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(), resources={"notifier": Recording()},
        ).for_run_failure()  # fmt: skip
        defs.resolve_sensor_def("notify_on_failure")(context)
    [(message, shop_id)] = sent
    assert message.startswith(f"regulars: run {result.run_id[:8]} of {job_name(settings, DAILY_JOB)} failed")
    assert shop_id == settings.id  # from the run's regulars/shop tag: the shop's own webhook gets it


def test_the_notifier_posts_failures_to_the_webhook():
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    Notifier(webhook_url=f"http://127.0.0.1:{server.server_port}/hook").send("run 1 failed", log=None)
    thread.join(timeout=10)
    server.server_close()
    assert received == [{"text": "run 1 failed"}]


@pytest.mark.parametrize("hour", [6])
def test_definitions_load_with_schedule_sensors_and_checks(tmp_path, hour):
    settings = shop(tmp_path, operations={"schedule_hour": hour})
    defs = build_definitions(settings)
    assert defs.resolve_schedule_def(f"{job_name(settings, DAILY_JOB)}_schedule").cron_schedule == f"0 {hour} * * *"
    assert {s.name for s in defs.sensors} >= {"notify_on_failure"}
    assert len(defs.resolve_asset_graph().asset_check_keys) >= 8


def test_every_run_lists_the_statuses_it_saw_and_warns_of_an_unnamed_one_the_first_time(tmp_path):
    path = tmp_path / "orders.csv"
    header = "order_no,buyer,paid_at,total,state\n"
    path.write_text(header + "A1,c1,2024-11-01 10:00:00,100,交易成功\nA2,c2,2024-11-01 11:00:00,50,shipped\n"
                    "A3,c3,2024-11-01 12:00:00,70,shipped\nA4,c4,2024-11-01 13:00:00,30,交易关闭\n"
                    "A5,c5,2024-11-01 14:00:00,20,等待买家付款\n")  # fmt: skip
    columns = {**COLUMNS, "status": "state"}
    del columns["region"]
    settings = file_shop(tmp_path, str(path), columns, cancellation={"status_in": ["交易关闭"]},
                         open_statuses=["等待买家付款"], completed_statuses=["交易成功"])  # fmt: skip
    result = ingest(settings, "2024-11-01")
    [orders] = [e.materialization for e in result.get_asset_materialization_events()
                if e.asset_key == settings.key(dg.AssetKey(["staging", "orders"]))]  # fmt: skip
    # 5 orders: shipped (named nowhere) counted as completed, as are the named 交易成功
    assert orders.metadata["statuses"].value == {
        "shipped (completed)": 2, "交易关闭 (cancelled)": 1, "交易成功 (completed)": 1, "等待买家付款 (open)": 1,
    }  # fmt: skip
    assert "shipped (completed) 2" in _summary_line(orders.asset_key, orders.metadata)  # what `regulars run` prints
    named = {c.check_name: c for c in result.get_asset_check_evaluations()}["statuses_named"]
    assert result.success and not named.passed and named.severity == dg.AssetCheckSeverity.WARN
    assert named.metadata["new_statuses"].value == "shipped (2 orders, completed)"
    assert "source.completed_statuses" in _warning_line(named)
    assert table(settings, "raw.statuses_seen").select("status", "treated").rows() == [
        ("shipped", "completed"), ("交易关闭", "cancelled"), ("交易成功", "completed"), ("等待买家付款", "open"),
    ]  # fmt: skip

    # the next day: shipped again, seen before (no warning); invoiced for the first time (a warning of its own)
    with path.open("a") as export:
        export.write("B1,c1,2024-11-02 10:00:00,10,shipped\nB2,c2,2024-11-02 10:00:00,10,invoiced\n")
    named = {c.check_name: c for c in ingest(settings, "2024-11-02").get_asset_check_evaluations()}["statuses_named"]
    assert not named.passed and named.metadata["new_statuses"].value == "invoiced (1 order, completed)"
    with path.open("a") as export:
        export.write("C1,c1,2024-11-03 10:00:00,10,invoiced\n")
    named = {c.check_name: c for c in ingest(settings, "2024-11-03").get_asset_check_evaluations()}["statuses_named"]
    assert named.passed and named.metadata["orders"].value == 0

    # the overview says which statuses it counted as completed without a setting naming them
    with dg.DagsterInstance.ephemeral() as instance:
        for job in (CUSTOMERS_JOB, REPORTS_JOB):
            assert shop_job(settings, job).execute_in_process(instance=instance).success
    html = (settings.output / "reports" / "overview-2024-11-03.en.html").read_text(encoding="utf-8")
    [note] = re.findall(r'<p class="note statuses">(.*?)</p>', html)
    assert "invoiced (counted as completed, first seen" in note and "shipped (counted as completed" in note
    assert "交易成功" not in note and "source.open_statuses" in note  # a named status is not listed
