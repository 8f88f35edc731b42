"""Messy real exports (#15): each case a small hand-made export that reproduces it."""

import json
from datetime import date

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from assets.campaigns.goals import counting_lost
from pipelines.cli import main
from pipelines.definitions import CAMPAIGNS_JOB, CUSTOMERS_JOB, shop_job
from pipelines.settings import SettingsError, load_settings
from pipelines.sources.exports import MalformedExportError, read_exports
from tests.conftest import COLUMNS, ingest, shop, table


def test_an_event_without_orders_is_never_the_comparable_one(tmp_path):
    # Double 11 in 2015 and 2017; no orders at all in 2016 (a gap in the data).
    lines = ["order_no,buyer,paid_at,total,province"]
    lines += [f"A{n},c{n},2015-11-11 10:00:00,{100 + n},x" for n in range(4)]
    lines += [f"B{n},d{n},2017-11-11 10:00:00,{200 + n},x" for n in range(6)]
    lines += ["C1,c1,2017-12-01 10:00:00,50,x"]  # loaded past the event's after-glow: it is reviewed
    (tmp_path / "orders.csv").write_text("\n".join(lines) + "\n")
    settings = shop(
        tmp_path, history_start="2015-01-01", history_end="2017-12-31", events={"presets": ["double11"]},
        source={"kind": "file", "path": str(tmp_path / "orders.csv"), "columns": COLUMNS},
    )  # fmt: skip
    ingest(settings, "2015-01-01", "2017-12-31")
    with dg.DagsterInstance.ephemeral() as instance:
        job = shop_job(settings, CAMPAIGNS_JOB)
        assert job.execute_in_process(instance=instance, partition_key="double11-2017").success

    goals = table(settings, "campaigns.goals").filter(pl.col("rfm_class").is_null())
    assert set(goals["comparable_event"]) == {"double11-2015"}
    assert {json.dumps(json.loads(i)["passed_over"]) for i in goals["inputs"]} == {'["double11-2016"]'}
    # 4 buyers then, all new, and no growth measured before either event (no orders in the trailing quarters)
    assert dict(goals.select("measure", "comparable_actual").rows())["new_buyers"] == 4
    assert dict(goals.select("measure", "goal").rows())["new_buyers"] == 4
    review = (settings.output / "reports" / "review-double11-2017.en.html").read_text()
    assert "Goals were set from Double 11 双十一 2015" in review
    assert "Not compared with Double 11 双十一 2016" in review
    assert "no earlier event" not in review
    results = table(settings, "campaigns.results").filter(pl.col("section") == "event")
    new_buyers = results.filter(pl.col("measure") == "new_buyers").select("actual", "goal", "comparable").row(0)
    assert new_buyers == (6, 4, 4)  # six new buyers against the 2015 event's four


def test_ids_as_people_type_them_are_one_customer_and_raw_keeps_them(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_no,buyer,paid_at,total,province\n"
        "A1,lily_chen,2024-03-01 10:00:00,10,x\n"
        "A2, lily_chen ,2024-03-02 10:00:00,20,x\n"
        "A3,Lily_Chen,2024-03-03 10:00:00,30,x\n"
    )
    source = {"kind": "file", "path": str(path), "columns": COLUMNS}
    exact = shop(tmp_path / "exact", source=source)
    folded = shop(tmp_path / "folded", source=source, customer_ids={"case_sensitive": False})
    for settings in (exact, folded):
        ingest(settings, "2024-03-01", "2024-03-03")
    # trimmed always: A1 and A2 are one customer; case matters unless the settings say otherwise
    assert sorted(table(exact, "staging.orders")["customer_id"]) == ["Lily_Chen", "lily_chen", "lily_chen"]
    assert set(table(folded, "staging.orders")["customer_id"]) == {"lily_chen"}
    assert sorted(table(folded, "raw.orders")["customer_id"]) == [" lily_chen ", "Lily_Chen", "lily_chen"]


def test_identical_rows_without_an_order_id_are_purchases_unless_the_settings_drop_them(tmp_path):
    # One row per purchase, no order id: bo bought the same thing twice on 1 March.
    path = tmp_path / "purchases.csv"
    path.write_text(
        "customer,date,qty,total\n"
        "ann,2024-03-01 00:00:00,1,10\nbo,2024-03-01 00:00:00,2,25\nbo,2024-03-01 00:00:00,2,25\n"
        "bo,2024-03-02 00:00:00,2,25\n"
    )
    columns = {"customer_id": "customer", "order_ts": "date", "items": "qty", "amount": "total"}
    kept = shop(tmp_path / "keep", source={"kind": "file", "path": str(path), "columns": columns})
    dropped = shop(tmp_path / "drop", source={"kind": "file", "path": str(path), "columns": columns,
                                              "duplicates": "drop"})  # fmt: skip
    result = ingest(kept, "2024-03-01", "2024-03-02")
    ingest(dropped, "2024-03-01", "2024-03-02")
    bo = pl.col("customer_id") == "bo"
    assert table(kept, "staging.orders").filter(bo).height == 3  # two purchases on 1 March, one on 2 March
    assert table(kept, "staging.rejects").is_empty()
    assert table(dropped, "staging.orders").filter(bo).height == 2
    assert table(dropped, "staging.rejects").select("reason").rows() == [("duplicate",)]
    lines = next(
        e for e in result.get_asset_materialization_events() if e.asset_key.path[1:] == ["staging", "order_lines"]
    )
    assert lines.materialization.metadata["identical_rows"].value == 1  # the run says how many it saw


def test_ragged_rows_are_refused_and_a_cut_last_line_is_named(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes(
        b"order_no,buyer,paid_at,total,province\n"
        b"A1,c1,2024-03-01 10:00:00,10,x\n"
        b"A2,c2,2024-03-01 11:00:00,20\n"  # a field short
        b'A3,c3,2024-03-01 12:00:00,30,"Zhejiang, Hangzhou",extra\n'  # one too many (the quoted comma is one field)
        b'A4,c4,2024-03-01 13:00:00,40,"Zhejiang, Hangzhou"\n'
        b"A5,c5,2024-03-01 14:00:00,5"  # cut off in its last field, no line end
    )
    settings = shop(tmp_path, source={"kind": "file", "path": str(path), "columns": COLUMNS})
    ingest(settings, "2024-03-01")
    rejects = table(settings, "staging.rejects").select("order_id", "reason", "detail").rows()
    assert [(order, reason) for order, reason, _ in rejects] == [
        ("A2", "ragged_row"), ("A3", "ragged_row"), ("A5", "ragged_row")
    ]  # fmt: skip
    details = {order: detail for order, _, detail in rejects}
    assert "4 fields where the header has 5" in details["A2"] and "6 fields" in details["A3"]
    assert "possibly cut off" in details["A5"]
    assert sorted(table(settings, "staging.orders")["order_id"]) == ["A1", "A4"]
    assert table(settings, "raw.orders").height == 5  # 5 rows in = 2 kept + 3 refused


def test_messages_say_what_went_wrong_in_the_users_terms(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    exports = tmp_path / "exports"
    exports.mkdir()
    header = "order_no,buyer,paid_at,total,province\n"
    (exports / "november.csv").write_text(header + "A1,c1,2024-11-10 10:00:00,10,x\nA2,c2,2024-11-10 11:00:00,20,x\n")
    config = tmp_path / "my shop.yaml"
    config.write_text(
        "name: s\nhistory_start: 2024-11-01\nhistory_end: 2024-11-30\nevents: {presets: []}\n"
        "warehouse: warehouse.duckdb\noutput: out\n"
        "source: {kind: file, path: exports, columns: {order_id: order_no, customer_id: buyer, order_ts: paid_at,"
        " amount: total, region: province}}\n"
    )
    runner = CliRunner()
    first = runner.invoke(main, ["run", "--config", str(config), "--from", "2024-11-01", "--to", "2024-11-30"])
    assert first.exit_code == 0, first.output
    refused = next(line for line in first.output.splitlines() if "staging/rejects" in line)
    assert "kept in staging.rejects" in refused and "rejects-2024-11-01_2024-11-30.csv" in refused
    assert (tmp_path / "out" / "rejects" / "rejects-2024-11-01_2024-11-30.csv").exists()

    (exports / "correction.csv").write_text(header + "A2,c2,2024-11-16 11:00:00,20,x\n")
    second = runner.invoke(main, ["run", "--config", str(config), "--from", "2024-11-16", "--to", "2024-11-16"])
    assert second.exit_code == 1
    error = next(line for line in second.output.splitlines() if line.startswith("error:"))
    assert error.startswith("error: correction.csv: row 1, column 'order_no': order A2")  # no class name first
    assert f"regulars run --config {config} --from 2024-11-10 --to 2024-11-16" in error  # their --config kept


def test_settings_messages_name_impossible_dates_and_near_misses(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text("name: s\nhistory_strat: 2024-01-01\nhistory_end: 2025-11-31\nsource: {kind: synthetic}\n")
    with pytest.raises(SettingsError) as error:
        load_settings(path)
    assert "history_end: 2025-11-31 is an impossible date" in str(error.value)
    assert "history_strat: not a setting; did you mean 'history_start'?" in str(error.value)


def test_an_undecodable_header_says_so_without_a_made_up_column(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes("订单号,buyer,paid_at,total,province\nA1,c1,2024-03-01 10:00:00,10,x\n".encode("gbk"))
    with pytest.raises(MalformedExportError) as error:
        read_exports(shop(tmp_path, source={"kind": "file", "path": str(path), "columns": COLUMNS}).source)
    assert "in the header is not utf-8" in str(error.value) and "#1" not in str(error.value)


def test_orders_still_open_are_not_sales(tmp_path):
    # A marketplace export: delivered orders are sales; shipped, invoiced, processing, created and approved
    # are still open; canceled and unavailable are cancelled.
    statuses = ["delivered", "shipped", "invoiced", "processing", "created", "approved", "canceled", "unavailable"]
    lines = ["order_no,buyer,paid_at,total,status"]
    lines += [f"M{n},m{n},2024-03-01 1{n}:00:00,{10 * (n + 1)},{status}" for n, status in enumerate(statuses)]
    lines += ["D2,m0,2024-03-05 10:00:00,5,delivered"]  # m0 buys again, delivered
    (tmp_path / "orders.csv").write_text("\n".join(lines) + "\n")
    columns = {"order_id": "order_no", "customer_id": "buyer", "order_ts": "paid_at", "amount": "total",
               "status": "status"}  # fmt: skip
    source = {"kind": "file", "path": str(tmp_path / "orders.csv"), "columns": columns,
              "cancellation": {"status_in": ["canceled", "unavailable"]},
              "open_statuses": ["shipped", "invoiced", "processing", "created", "approved"]}  # fmt: skip
    settings = shop(tmp_path, source=source)
    ingest(settings, "2024-03-01", "2024-03-05")
    orders = table(settings, "staging.orders")
    assert dict(orders.group_by("status").len().iter_rows()) == {"completed": 2, "open": 5, "cancelled": 2}
    assert orders["amount"].sum() == 10 + 5  # only delivered orders are revenue (open and cancelled: 0)
    assert table(settings, "staging.order_lines").height == 9  # every row kept: nothing refused
    with dg.DagsterInstance.ephemeral() as instance:
        job = shop_job(settings, CUSTOMERS_JOB)
        assert job.execute_in_process(instance=instance).success
    facts = table(settings, "core.customer_facts")
    assert facts.select("customer_id", "orders", "net_revenue").rows() == [("m0", 2, 15.0)]  # the one who bought
    # the other seven stay visible, in an audience of their own
    never = table(settings, "analysis.never_completed").select("customer_id", "open_orders", "cancelled_orders")
    assert never.rows() == [(f"m{n}", 1, 0) for n in range(1, 6)] + [("m6", 0, 1), ("m7", 0, 1)]


def test_orders_open_too_long_count_as_lost():
    # The last day loaded is 03-31; with 20 days, an order still open from before 03-11 is lost.
    orders = pl.DataFrame({
        "order_date": [date(2024, 3, 1), date(2024, 3, 10), date(2024, 3, 11), date(2024, 3, 20), date(2024, 3, 31)],
        "status": ["open", "open", "open", "completed", "cancelled"],
    })  # fmt: skip
    assert counting_lost(orders, None)["status"].to_list() == orders["status"].to_list()
    assert counting_lost(orders, 20)["status"].to_list() == ["cancelled", "cancelled", "open", "completed", "cancelled"]


def test_a_gap_inside_a_backfill_is_flagged(tmp_path):
    # Five orders a day from 01-01 to 03-31 but none from 02-10 to 02-19: one backfill loads it all.
    days = [d for d in pl.date_range(date(2024, 1, 1), date(2024, 3, 31), eager=True)
            if not date(2024, 2, 10) <= d <= date(2024, 2, 19)]  # fmt: skip
    lines = ["order_no,buyer,paid_at,total,province"]
    lines += [f"{d}-{n},c{n},{d} 1{n}:00:00,10,x" for d in days for n in range(5)]
    (tmp_path / "orders.csv").write_text("\n".join(lines) + "\n")
    settings = shop(tmp_path, source={"kind": "file", "path": str(tmp_path / "orders.csv"), "columns": COLUMNS})
    checks = {c.check_name: c for c in ingest(settings, "2024-01-01", "2024-03-31").get_asset_check_evaluations()}
    quiet = checks["orders_every_day"]
    assert not quiet.passed and quiet.metadata["days_without_orders"].value == 10
    assert quiet.metadata["first_days"].value == ", ".join(f"2024-02-{d}" for d in range(10, 15))
