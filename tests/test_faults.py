"""Faults and bad input (#14): who is never contacted, the frequency cap, junk customer ids.
Every case is a small hand-made export; counts are worked from the file."""

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipelines.warehouse
from checks.suites import SuiteResult
from pipelines.definitions import CAMPAIGNS_JOB, OUTREACH_JOB, shop_job
from pipelines.settings import SettingsError, load_settings
from pipelines.warehouse import Warehouse
from tests.conftest import COLUMNS, HEADER, ROOT, file_shop, ingest, read_outbox, shop, table

CLASSES = ["important_value", "important_winback", "important_develop", "important_retain",
           "potential", "new", "general_maintain", "lost"]  # fmt: skip
# A flash sale whose warm-up (its first list) starts on 22 January 2024.
FLASH = {
    "presets": [],
    "custom": [{"id": "flash-2024", "sprint": ["2024-01-25", "2024-01-27"], "warm_up_days": 3}],
    "plan": {"warm_up": CLASSES, "sprint": [], "after_glow": []},
}


def regular_buyers(path, ids: list[str], extra: list[str] = ()) -> None:
    """Each customer buys on 1, 11 and 21 January 2024 (a 10-day cycle: due, and reminded, on 30 January),
    each order shipped the same day (a care message that day)."""
    lines = ["order_no,buyer,paid_at,total,shipped"]
    for n, customer in enumerate(ids):
        for day in (1, 11, 21):
            lines.append(f"O{n}-{day},{customer},2024-01-{day:02d} 10:00:00,50,2024-01-{day:02d} 12:00:00")
    path.write_text("\n".join([*lines, *extra]) + "\n")


def buyers_shop(tmp_path, **overrides):
    """A shop over January 2024 reading tmp_path/orders.csv, with the flash sale."""
    columns = {"order_id": "order_no", "customer_id": "buyer", "order_ts": "paid_at", "amount": "total",
               "shipped_ts": "shipped"}  # fmt: skip
    source = {"kind": "file", "path": str(tmp_path / "orders.csv"), "columns": columns}
    return shop(tmp_path, source=source, history_end="2024-01-31", **({"events": FLASH} | overrides))


def run(settings, job: str, **kwargs) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        assert shop_job(settings, job).execute_in_process(instance=instance, **kwargs).success


def outreach(settings, first: str, last: str) -> None:
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    run(settings, OUTREACH_JOB, tags=tags)


def test_opted_out_customers_in_any_spelling_are_never_contacted(tmp_path):
    # Source ids with stray spaces; opt-outs in another case and with spaces, in the file and the settings.
    regular_buyers(tmp_path / "orders.csv", ["a1 ", "A2", "\u200bb3", "keep"])
    (tmp_path / "opt_outs.csv").write_text("customer_id,note\nA1,asked by mail\n  a2 ,\n")
    settings = buyers_shop(
        tmp_path, customer_ids={"case_sensitive": False},
        outreach={"opt_out": ["B3 "], "opt_out_file": str(tmp_path / "opt_outs.csv")},
    )  # fmt: skip
    assert settings.opt_outs == {"a1", "a2", "b3"}
    ingest(settings, "2024-01-01", "2024-01-31")
    assert set(table(settings, "staging.orders")["customer_id"]) == {"a1", "a2", "b3", "keep"}
    outreach(settings, "2024-01-21", "2024-01-30")
    run(settings, CAMPAIGNS_JOB, partition_key="flash-2024")

    # The four buy alike, so each list would hold all four; it holds only the one who did not opt out.
    reminders = table(settings, "outreach.repurchase_reminders")
    care = table(settings, "outreach.care_messages")
    targets = table(settings, "outreach.campaign_targets")
    outbox = read_outbox(settings.output / "outbox" / "flash-2024" / "targets.csv")
    assert reminders.select("customer_id", "contact_date").rows() == [("keep", date(2024, 1, 30))]
    assert care.select("customer_id", "contact_date").rows() == [("keep", date(2024, 1, 21))]
    assert targets.select("customer_id", "contact_date").rows() == [("keep", date(2024, 1, 22))]
    assert outbox["customer_id"].to_list() == ["keep"]


def test_an_outbox_csv_opens_in_a_spreadsheet_as_text_with_its_chinese_intact(tmp_path):
    # Ids a spreadsheet would evaluate (a formula, a sum, a macro call), and one in Chinese.
    formulas = ['=HYPERLINK("http://x.example","点我")', "+1+2", "-3+4", "@SUM(1)"]
    regular_buyers(tmp_path / "orders.csv", [f'"{i.replace(chr(34), chr(34) * 2)}"' for i in formulas] + ["王小明"])
    settings = buyers_shop(tmp_path)
    ingest(settings, "2024-01-01", "2024-01-31")
    run(settings, CAMPAIGNS_JOB, partition_key="flash-2024")

    raw = (settings.output / "outbox" / "flash-2024" / "targets.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8's byte order mark: Excel then reads UTF-8, not GBK
    text = raw.decode("utf-8-sig")  # what Excel decodes, given the mark
    outbox = pl.read_csv(text.encode(), infer_schema=False).rename({"客户编号": "customer_id"})  # a Chinese shop
    assert sorted(outbox["customer_id"]) == sorted(["'" + i for i in formulas] + ["王小明"])
    # no cell of any column starts with what a spreadsheet evaluates
    cells = outbox.select(pl.all().cast(pl.String)).unpivot()["value"].drop_nulls()
    assert not cells.str.contains(r"^[=+\-@]").any()


def test_refused_rows_open_in_a_spreadsheet_as_text(tmp_path):
    # A refused row (negative amount on a sale) whose customer id a spreadsheet would evaluate.
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + 'A1,c1,2024-03-01 10:00:00,10,x\nA2,"=1+2",2024-03-01 11:00:00,-5,x\n')
    settings = file_shop(tmp_path, str(path), COLUMNS)
    ingest(settings, "2024-03-01")
    raw = (settings.output / "rejects" / "rejects-2024-03-01_2024-03-01.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    refused = pl.read_csv(raw.decode("utf-8-sig").encode(), schema_overrides={"customer_id": pl.String})
    assert refused.select("order_id", "customer_id", "reason").rows() == [("A2", "'=1+2", "negative_amount")]
    assert table(settings, "staging.rejects")["customer_id"].to_list() == ["=1+2"]  # kept as received


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"outreach\.opt_out_file: .*opt_outs\.csv: cannot read it"),
        ("id\nC1\n", r"outreach\.opt_out_file: .*no customer_id column"),
        ("customer_id,note\nC1,x\nC2,y,z\n", r"outreach\.opt_out_file: .*opt_outs\.csv, row 3: 3 fields"),
        ("customer_id\nC1\n\n \n", r"outreach\.opt_out_file: .*row 4: the customer_id is empty"),
    ],
)
def test_a_missing_or_malformed_opt_out_file_stops_at_settings_load(tmp_path, content, message):
    if content is not None:
        (tmp_path / "opt_outs.csv").write_text(content)
    path = tmp_path / "shop.yaml"
    path.write_text(
        "name: s\nhistory_start: 2024-01-01\nhistory_end: 2024-01-31\nsource: {kind: synthetic}\n"
        f"warehouse: {tmp_path / 'warehouse.duckdb'}\noutreach: {{opt_out_file: opt_outs.csv}}\n"
    )
    with pytest.raises(SettingsError, match=message):
        load_settings(path)
    assert not (tmp_path / "warehouse.duckdb").exists()


@pytest.mark.parametrize("priority", ["campaign", "reminder"])
@pytest.mark.parametrize("campaign_first", [False, True])
def test_nobody_gets_a_campaign_message_and_a_reminder_inside_the_cap(tmp_path, priority, campaign_first):
    # "r1" and "r2" are due on 30 January, the first day of a warm-up whose list takes every class of
    # the baseline (9 January); so is "c3" (one order, 1 January), who is not due. "p1" (8 and 18
    # January) is due on 27 January, three days before. "late" buys on 29 January, after the baseline,
    # so that the warm-up's list can be made. The cap (7 days) holds the same day.
    extra = ["C,c3,2024-01-01 09:00:00,50,", "P1,p1,2024-01-08 10:00:00,50,", "P2,p1,2024-01-18 10:00:00,50,",
             "L,late,2024-01-29 10:00:00,50,"]  # fmt: skip
    regular_buyers(tmp_path / "orders.csv", ["r1", "r2"], extra=extra)
    flash = FLASH | {"custom": [{"id": "flash-2024", "sprint": ["2024-02-02", "2024-02-04"], "warm_up_days": 3}]}
    settings = buyers_shop(tmp_path, events=flash, outreach={"cap_priority": priority})
    ingest(settings, "2024-01-01", "2024-01-31")
    steps = [lambda: outreach(settings, "2024-01-27", "2024-01-30"),
             lambda: run(settings, CAMPAIGNS_JOB, partition_key="flash-2024")]  # fmt: skip
    for step in reversed(steps) if campaign_first else steps:
        step()

    reminders = table(settings, "outreach.repurchase_reminders").select("customer_id", "contact_date")
    targets = table(settings, "outreach.campaign_targets").select("customer_id", "contact_date")
    outbox = read_outbox(settings.output / "outbox" / "flash-2024" / "targets.csv")
    p1_reminded, warm_up = ("p1", date(2024, 1, 27)), date(2024, 1, 30)
    # The list with priority keeps r1 and r2 (same day) whichever step ran first; p1's reminder, three days
    # before the warm-up, stands once sent (the outreach ran first, or reminders have priority).
    reminded = {
        ("campaign", False): [p1_reminded],
        ("campaign", True): [],
        ("reminder", False): [p1_reminded, ("r1", warm_up), ("r2", warm_up)],
        ("reminder", True): [p1_reminded, ("r1", warm_up), ("r2", warm_up)],
    }[priority, campaign_first]
    assert reminders.rows() == reminded
    assert targets.rows() == [(c, warm_up) for c in ("c3", "p1", "r1", "r2") if c not in {r for r, _ in reminded}]
    assert sorted(outbox["customer_id"]) == targets["customer_id"].to_list()
    # the reminders' outbox follows their table, withdrawals included (lists this small hold out nobody)
    days = sorted((settings.output / "outbox" / "reminders").glob("reminders-*.csv"))
    reminded_out = pl.concat(read_outbox(day).select("customer_id", "contact_date") for day in days)
    assert sorted(reminded_out.rows()) == reminders.rows()
    contacts = pl.concat([reminders, targets]).sort("customer_id", "contact_date")
    gaps = contacts.select((pl.col("contact_date").diff().dt.total_days()).over("customer_id")).drop_nulls()
    assert gaps.is_empty() or gaps.to_series().min() >= 7  # nobody twice inside the cap


def test_junk_customer_ids_are_refused_as_missing(tmp_path):
    rows = ["NULL", "None", "nan", "-", "\u200b", " ", "", "N/A", "unknown", "C1", "null-island"]
    path = tmp_path / "orders.csv"
    path.write_text("order_no,buyer,paid_at,total\n" + "".join(
        f"O{n},{buyer},2024-03-01 10:00:00,10\n" for n, buyer in enumerate(rows)))  # fmt: skip
    columns = {"order_id": "order_no", "customer_id": "buyer", "order_ts": "paid_at", "amount": "total"}
    settings = file_shop(tmp_path, str(path), columns)
    ingest(settings, "2024-03-01")
    rejects = table(settings, "staging.rejects")
    # 8 null-like by default ("unknown" is an id unless the settings say otherwise)
    assert rejects.filter(pl.col("reason") == "missing_customer").height == 8
    assert sorted(table(settings, "staging.orders")["customer_id"]) == ["C1", "null-island", "unknown"]

    custom = shop(tmp_path, source=settings.source.model_dump(), customer_ids={"missing": ["unknown"]})
    ingest(custom, "2024-03-01")
    # with its own list, empty ids (zero-width, blank, empty) and "unknown" are missing: 4 rows
    assert table(custom, "staging.rejects").filter(pl.col("reason") == "missing_customer").height == 4
    assert sorted(table(custom, "staging.orders")["customer_id"]) == [
        "-", "C1", "N/A", "NULL", "None", "nan", "null-island"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("key", "value"), [("output", "/"), ("output", "/etc/regulars"), ("warehouse", "/usr/local/shop.duckdb")]
)
def test_settings_refuse_the_root_or_a_system_folder(tmp_path, key, value):
    path = tmp_path / "shop.yaml"
    path.write_text(f"name: s\nhistory_start: 2024-01-01\nhistory_end: 2024-01-31\nsource: {{kind: synthetic}}\n"
                    f"{key}: {value}\n")  # fmt: skip
    with pytest.raises(SettingsError, match=f"{key}: .* is the root or a system folder"):
        load_settings(path)


@pytest.mark.parametrize(
    ("key", "target", "under"),
    [("output", "/var", ""), ("output", "/var/log", "regulars"), ("warehouse", "/root", "shop.duckdb"),
     ("warehouse", "/etc", "regulars/shop.duckdb"), ("output", "/tmp", "")],
)  # fmt: skip
def test_settings_refuse_a_system_folder_reached_through_dots_or_a_link(tmp_path, key, target, under):
    up = "/..".join([""] * len(tmp_path.parts))  # from tmp_path back up to /
    link = tmp_path / "link"
    link.symlink_to(target)
    for value in (f"{tmp_path}{up}{target}/{under}".rstrip("/"), f"{link}/{under}".rstrip("/")):
        path = tmp_path / "shop.yaml"
        path.write_text(f"name: s\nhistory_start: 2024-01-01\nhistory_end: 2024-01-31\nsource: {{kind: synthetic}}\n"
                        f"{key}: {value}\n")  # fmt: skip
        with pytest.raises(SettingsError, match=f"{key}: .* \\(that is {target}.*\\) is the root or a system folder"):
            load_settings(path)


def test_settings_take_a_folder_of_ones_own_under_a_shared_or_program_folder(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text("name: s\nhistory_start: 2024-01-01\nhistory_end: 2024-01-31\nsource: {kind: synthetic}\n"
                    "warehouse: /var/lib/regulars/shop.duckdb\noutput: /home/shop/out\n")  # fmt: skip
    settings = load_settings(path)
    assert (settings.warehouse, settings.output) == (Path("/var/lib/regulars/shop.duckdb"), Path("/home/shop/out"))


FULL_DISK_RUN = """
import resource, signal, sys
from pathlib import Path
from tests.conftest import ingest, shop
settings = shop(Path(sys.argv[1]), source={"kind": "synthetic", "seed": 7, "customers": 5000})
# no file may grow beyond the warehouse's size: a write that would stops as on a full disk (EFBIG, not a signal)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (settings.warehouse.stat().st_size, resource.RLIM_INFINITY))
result = ingest(settings, "2024-01-02", "2024-12-31", raise_on_error=False)
print(*(e.event_specific_data.error.message for e in result.all_events if e.is_step_failure), sep="|")
"""


def test_a_warehouse_that_cannot_grow_stops_the_step_in_one_line_and_keeps_what_it_held(tmp_path):
    settings = shop(tmp_path, source={"kind": "synthetic", "seed": 7, "customers": 5000})
    ingest(settings, "2024-01-01")
    before = {name: table(settings, name) for name in ("raw.orders", "staging.orders", "staging.rejects")}
    done = subprocess.run([sys.executable, "-c", FULL_DISK_RUN, str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)  # fmt: skip
    # a year of orders does not fit: the step fails in one line naming the warehouse, the file and the cause, and
    # what to do (it was "connection is busy" after a traceback), which a run's summary shows
    assert done.returncode == 0, done.stderr[-2000:]
    [message] = done.stdout.strip().splitlines()
    assert message.endswith(
        f"warehouse {settings.warehouse}: {settings.warehouse}.wal could not be written (File too large); the "
        "warehouse keeps what it held before this step: free space on its disk, or set warehouse to a folder on a "
        "disk with room"
    )
    assert all(table(settings, name).equals(frame) for name, frame in before.items())


def test_run_metadata_masks_customer_ids_and_contact_details(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_no,buyer,paid_at,total,province\n"
        "A1,jane.doe@example.com,2024-03-01 10:00:00,10,call 13812345678\n"
        "A2,C0001234,2024-03-01 11:00:00,20,Zhejiang\n"
    )
    settings = file_shop(tmp_path, str(path), COLUMNS)
    result = ingest(settings, "2024-03-01")
    shown = "".join(
        str(event.materialization.metadata) for event in result.get_asset_materialization_events()
    )  # every preview and figure the UI shows
    assert "jane.doe" not in shown and "C0001234" not in shown and "13812345678" not in shown
    assert "****1234" in shown  # the preview is there, masked as reports mask ids
    failure = SuiteResult("s", False, 2, [{"expectation": "e", "column": "customer_id", "unexpected_count": 1,
                                           "sample": ["C0001234"]},
                                          {"expectation": "e", "column": "region", "unexpected_count": 1,
                                           "sample": ["mail jane.doe@example.com"]}])  # fmt: skip
    assert "C0001234" not in failure.summary() and "jane.doe" not in failure.summary()
    assert [f["sample"] for f in failure.shown_failures()] == [["****1234"], ["mail ****.doe@example.com"]]


@pytest.mark.parametrize(
    ("decimal", "expected"),
    [
        # auto: each value tells, and '1,250' (a thousand and 250, or 1.25) is refused
        ("auto", {"A1": 12.5, "A2": 1234.5, "A3": 1234.5, "A5": 7.0, "A6": 1234567.0}),
        # stated: '1,250' is 1.25, and '1,234.50' (a dot after the decimal comma) is refused as malformed
        (",", {"A1": 12.5, "A2": 1234.5, "A4": 1.25, "A5": 7.0, "A6": 1234567.0}),
    ],
)
def test_amounts_follow_the_stated_or_evident_decimal_mark(tmp_path, decimal, expected):
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_no,buyer,paid_at,total,province\n"
        'A1,c1,2024-03-01 10:00:00,"12,50",x\n'
        'A2,c2,2024-03-01 10:00:00,"1.234,50",x\n'
        'A3,c3,2024-03-01 10:00:00,"1,234.50",x\n'
        'A4,c4,2024-03-01 10:00:00,"1,250",x\n'
        "A5,c5,2024-03-01 10:00:00,¥7,x\n"
        "A6,c6,2024-03-01 10:00:00,1.234.567,x\n"
    )
    source = {"kind": "file", "path": str(path), "columns": COLUMNS, "decimal": decimal}
    settings = shop(tmp_path, source=source, rules={"max_amount": 1e7}, quality={"max_order_amount": 1e7})
    ingest(settings, "2024-03-01")
    assert dict(table(settings, "staging.orders").select("order_id", "amount").rows()) == expected
    refused = table(settings, "staging.rejects").select("order_id", "reason").rows()
    assert refused == ([("A4", "ambiguous_amount")] if decimal == "auto" else [("A3", "malformed_amount")])


def test_a_utf8_file_declared_gbk_stops_naming_the_file_row_and_column(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("order_no,buyer,paid_at,total,province\nA1,c1,2024-03-01 10:00:00,10,浙江\n", encoding="utf-8")
    settings = file_shop(tmp_path, str(path), COLUMNS, encoding="gbk")
    result = ingest(settings, "2024-03-01", raise_on_error=False)
    assert not result.success
    failure = "".join(str(event.event_specific_data) for event in result.all_events if event.is_step_failure)
    assert "orders.csv" in failure and "row 1" in failure and "province" in failure and "UTF-8" in failure
    assert table(settings, "raw.orders").is_empty()


def test_times_with_a_zone_offset_land_on_the_shops_clock(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_no,buyer,paid_at,total,province\n"
        "A1,c1,2024-11-05T10:00:00+08:00,10,x\n"
        "A2,c2,2024-11-05T02:00:00Z,10,x\n"
        "A3,c3,2024-11-04T21:00:00-05:00,10,x\n"
        "A4,c4,2024-11-05 10:00:00,10,x\n"
    )
    settings = file_shop(tmp_path, str(path), COLUMNS)
    ingest(settings, "2024-11-05")
    times = table(settings, "staging.orders")["order_ts"].to_list()
    assert times == [datetime(2024, 11, 5, 10)] * 4  # Shanghai is UTC+8
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    pl.DataFrame({"order_no": ["P1"], "buyer": ["c1"], "total": [10.0], "province": ["x"],
                  "paid_at": [datetime(2024, 11, 5, 2, tzinfo=UTC)]}).write_parquet(parquet / "o.parquet")  # fmt: skip
    zoned = file_shop(tmp_path / "parquet", str(parquet / "o.parquet"), COLUMNS)
    ingest(zoned, "2024-11-05")
    assert table(zoned, "staging.orders")["order_ts"].to_list() == [datetime(2024, 11, 5, 10)]


def test_rows_outside_history_or_without_any_readable_time_are_refused_not_lost(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "a.csv").write_text(
        "order_no,buyer,paid_at,total,province\n"
        "A1,c1,2024-03-01 10:00:00,10,x\n"
        "A2,c2,2204-03-01 10:00:00,10,x\n"  # a year typed 2204
        "A3,c3,2023-12-31 10:00:00,10,x\n"  # before history_start
        "A4,c4,2025-01-02 10:00:00,10,x\n"  # after history_end
        + "".join(f"G{n},g{n},2024-04-{n:02d} 10:00:00,10,x\n" for n in range(1, 21))  # 20 good rows
    )
    (folder / "b.csv").write_text("order_no,buyer,paid_at,total,province\nB1,c5,,10,x\nB2,c6,,20,x\n")
    rows_in = sum(len(f.read_text().splitlines()) - 1 for f in folder.iterdir())  # 26, from the files
    settings = file_shop(tmp_path, str(folder), COLUMNS)  # history 2024-01-01 .. 2024-12-31
    ingest(settings, "2024-12-31")  # a daily run for the last day: the year typo and the late row land here
    assert table(settings, "staging.rejects").select("order_id", "order_date", "reason", "order_ts").rows() == [
        ("A2", date(2024, 12, 31), "outside_history", "2204-03-01 10:00:00"),
        ("A4", date(2024, 12, 31), "outside_history", "2025-01-02 10:00:00"),
    ]
    result = ingest(settings, "2024-01-01", "2024-12-31")
    reconciled = next(c for c in result.get_asset_check_evaluations() if c.check_name == "rows_reconcile")
    assert reconciled.passed and reconciled.metadata["rows_read_from_source"].value == rows_in  # read, not written
    rejects = table(settings, "staging.rejects").select("order_id", "order_date", "reason")
    assert rejects.rows() == [
        ("A2", date(2024, 12, 31), "outside_history"),
        ("A3", date(2024, 1, 1), "outside_history"),
        ("A4", date(2024, 12, 31), "outside_history"),
        ("B1", date(2024, 1, 1), "bad_timestamp"),
        ("B2", date(2024, 1, 1), "bad_timestamp"),
    ]
    kept = table(settings, "staging.order_lines").height
    assert table(settings, "raw.orders").height == rows_in == kept + rejects.height == 26


CUSTOMERS = ["ann", "bo", "cy", "di"]
SPELLINGS = st.sampled_from([str.upper, str.lower, lambda i: f" {i} ", lambda i: f"\u200b{i}", lambda i: f"{i}\t"])
BAD_ROWS = st.sampled_from([
    "{n},NULL,2024-01-05 10:00:00,10", "{n},-,2024-01-05 10:00:00,10", "{n},zz,not a time,10",
    "{n},zz,2204-01-05 10:00:00,10", "{n},zz,2024-01-05 10:00:00,\"1,250\"", "{n},zz,2024-01-05 10:00:00,-5",
    "{n},zz,2024-01-05T02:00:00Z,\"12,50\"", "{n},zz,2024-01-05 10:00:00,abc",
])  # fmt: skip


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    spellings=st.lists(SPELLINGS, min_size=4, max_size=4),
    opted=st.lists(st.tuples(st.sampled_from(CUSTOMERS), SPELLINGS), max_size=3),
    bad=st.lists(BAD_ROWS, max_size=8),
    repeats=st.lists(st.integers(0, 11), max_size=3),
)
def test_every_row_lands_once_and_no_opted_out_customer_is_reached(tmp_path_factory, spellings, opted, bad, repeats):
    folder = tmp_path_factory.mktemp("mixture")
    good = [
        f"O{n}-{day},{spell(customer)},2024-01-{day:02d} 10:00:00,50"
        for n, (customer, spell) in enumerate(zip(CUSTOMERS, spellings, strict=True))
        for day in (1, 11, 21)
    ]
    rows = good + [good[i] for i in repeats] + [line.format(n=f"X{n}") for n, line in enumerate(bad)]
    (folder / "orders.csv").write_text("order_no,buyer,paid_at,total\n" + "\n".join(rows) + "\n")
    (folder / "opt_outs.csv").write_text("customer_id\n" + "".join(f"{spell(c)}\n" for c, spell in opted))
    columns = {"order_id": "order_no", "customer_id": "buyer", "order_ts": "paid_at", "amount": "total"}
    config = shop(folder, source={"kind": "file", "path": str(folder / "orders.csv"), "columns": columns},
                  history_end="2024-01-31", events=FLASH, customer_ids={"case_sensitive": False},
                  outreach={"opt_out_file": str(folder / "opt_outs.csv")})  # fmt: skip
    ingest(config, "2024-01-01", "2024-01-31")  # bad rows are refused, not a reason to fail the run
    outreach(config, "2024-01-21", "2024-01-30")
    run(config, CAMPAIGNS_JOB, partition_key="flash-2024")

    raw, lines, rejects = (table(config, name) for name in ("raw.orders", "staging.order_lines", "staging.rejects"))
    # every row of the file, each in exactly one place
    assert raw.height == len(rows)
    assert rejects.select("_source", "_row").n_unique() == rejects.height
    assert lines.height + rejects.height == len(rows)
    kept = raw.filter(~pl.col("_row").is_in(list(rejects["_row"])))
    assert set(kept["order_id"]) == set(lines["order_id"])
    blocked = {c for c, _ in opted}
    reached = set()
    for name in ("outreach.repurchase_reminders", "outreach.campaign_targets", "outreach.care_messages"):
        reached |= set(table(config, name)["customer_id"])
    outbox = config.output / "outbox" / "flash-2024" / "targets.csv"
    if outbox.exists():
        reached |= set(read_outbox(outbox)["customer_id"])
    assert not reached & blocked


def test_an_order_moved_to_another_day_is_stored_once(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    header = "order_no,buyer,paid_at,total,province\n"
    (folder / "november.csv").write_text(
        header + "A1,c1,2024-11-10 10:00:00,10,x\nA2,c2,2024-11-10 11:00:00,20,x\nA3,c3,2024-11-15 09:00:00,30,x\n"
    )
    settings = file_shop(tmp_path, str(folder), COLUMNS)
    ingest(settings, "2024-11-01", "2024-11-30")

    # Re-issued in place, with A1 moved to 15 November: re-running that day alone reloads 10 November too.
    (folder / "november.csv").write_text(
        header + "A1,c1,2024-11-15 10:00:00,10,x\nA2,c2,2024-11-10 11:00:00,20,x\nA3,c3,2024-11-15 09:00:00,30,x\n"
    )
    ingest(settings, "2024-11-15")
    stored = table(settings, "staging.orders").select("order_id", "order_date").rows()
    assert stored == [("A1", date(2024, 11, 15)), ("A2", date(2024, 11, 10)), ("A3", date(2024, 11, 15))]

    # A correction in a file of its own, the old export kept: loading its day alone would store A1 twice.
    (folder / "correction.csv").write_text(header + "A2,c2,2024-11-16 11:00:00,20,x\n")
    before = {name: table(settings, name) for name in ("raw.orders", "staging.orders", "staging.rejects")}
    result = ingest(settings, "2024-11-16", raise_on_error=False)
    failure = "".join(str(event.event_specific_data) for event in result.all_events if event.is_step_failure)
    assert "correction.csv: row 1, column 'order_no': order A2 of 2024-11-16 is already stored on 2024-11-10" in failure
    assert "regulars run --from 2024-11-10 --to 2024-11-16" in failure
    assert all(table(settings, name).equals(frame) for name, frame in before.items())  # nothing written
    ingest(settings, "2024-11-10", "2024-11-16")
    a2 = table(settings, "staging.orders").filter(pl.col("order_id") == "A2")
    assert a2.select("order_date").rows() == [(date(2024, 11, 10),)]
    assert table(settings, "staging.rejects").select("_source", "reason").rows() == [
        ("correction.csv", "duplicate_order")
    ]


def test_a_warehouse_whose_creation_is_cut_short_is_not_left_half_made(tmp_path, monkeypatch):
    # A run killed while DuckDB wrote a new file's first blocks left a file that no longer opened ("Could not
    # read enough bytes"); the file is now made under another name and linked into place once whole.
    path = tmp_path / "warehouse.duckdb"
    real = pipelines.warehouse.create_tables

    def cut_short(conn):
        conn.execute("CREATE SCHEMA raw")
        raise KeyboardInterrupt  # as a kill would stop it, halfway

    monkeypatch.setattr(pipelines.warehouse, "create_tables", cut_short)
    with pytest.raises(KeyboardInterrupt):
        with Warehouse(database=str(path)).get_connection():
            pass
    assert not path.exists() and list(tmp_path.iterdir()) == []  # nothing half made, no scratch file left
    monkeypatch.setattr(pipelines.warehouse, "create_tables", real)
    with Warehouse(database=str(path)).get_connection() as conn:
        assert conn.sql("SELECT count(*) FROM staging.orders").fetchall() == [(0,)]
