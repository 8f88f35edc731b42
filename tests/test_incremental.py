"""Incremental reading: a run reads the files that are new or changed and those known to hold its days;
late rows in a changed file reload the earlier days they belong to; progress shows while it works."""

import os
import subprocess
import sys
from datetime import date, timedelta

import dagster as dg
import duckdb
import polars as pl
import yaml

from assets.customers import CUSTOMER_FACTS, RFM, SEGMENT_HISTORY
from assets.customers.snapshot import customer_snapshot
from pipelines.definitions import CUSTOMERS_JOB, shop_job
from tests.conftest import COLUMNS, ROOT, file_shop, ingest, table, write_csv


def daily_file(folder, day: date, orders: int) -> None:
    """The export of one day: `orders` orders at 10:00, 11:00, ... (ids D<yyyymmdd>-<n>)."""
    write_csv(
        folder / f"{day}.csv",
        *(f"D{day:%Y%m%d}-{n},c{n},{day} {10 + n}:00:00,{10 + n},zj" for n in range(orders)),
    )


def raw_metadata(result) -> dict:
    """The metadata of the run's raw/orders (recorded once a run)."""
    raw = [e for e in result.get_asset_materialization_events() if e.asset_key.path[1:] == ["raw", "orders"]]
    assert len(raw) == 1
    return {k: v.value for k, v in raw[0].materialization.metadata.items()}


def test_a_daily_run_after_a_year_reads_only_the_new_days_file(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    first, last = date(2024, 1, 1), date(2024, 12, 30)
    for n in range((last - first).days + 1):
        daily_file(folder, first + timedelta(days=n), 2)
    settings = file_shop(tmp_path, str(folder), COLUMNS)
    settings = settings.model_copy(update={"history_start": first})
    history = raw_metadata(ingest(settings, str(first), str(last)))
    assert (history["files_read"], history["rows_read"]) == (365, 730)  # 365 days (2024 is a leap year) of 2 orders

    daily_file(folder, date(2024, 12, 31), 3)
    daily = raw_metadata(ingest(settings, "2024-12-31"))
    assert (daily["files_read"], daily["rows_read"], daily["rows"]) == (1, 3, 3)
    assert table(settings, "staging.orders").height == 730 + 3


def test_a_changed_old_file_is_read_again_and_its_day_reloaded(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    for day in (1, 2, 3):
        daily_file(folder, date(2024, 3, day), 2)
    settings = file_shop(tmp_path, str(folder), COLUMNS)
    ingest(settings, "2024-03-01", "2024-03-03")

    # The export of the 1st is sent again with a late order; the 4th arrives.
    write_csv(folder / "2024-03-01.csv", "D20240301-0,c0,2024-03-01 10:00:00,10,zj",
              "D20240301-1,c1,2024-03-01 11:00:00,11,zj", "LATE-1,c9,2024-03-01 23:00:00,99,zj")  # fmt: skip
    daily_file(folder, date(2024, 3, 4), 2)
    daily = raw_metadata(ingest(settings, "2024-03-04"))
    assert (daily["files_read"], daily["rows_read"]) == (2, 3 + 2)  # the changed 1st and the new 4th
    assert daily["late_days"] == "2024-03-01"
    orders = table(settings, "staging.orders")
    per_day = dict(orders.group_by(pl.col("order_date").dt.day()).len().iter_rows())
    assert per_day == {1: 3, 2: 2, 3: 2, 4: 2}
    assert "LATE-1" in orders["order_id"].to_list()

    unchanged = raw_metadata(ingest(settings, "2024-03-04"))  # nothing changed since: the 4th's file alone
    assert (unchanged["files_read"], unchanged["late_days"]) == (1, "")


def test_regulars_run_prints_ingest_progress_when_its_output_is_not_a_terminal(tmp_path):
    config = tmp_path / "shop.yaml"
    config.write_text(yaml.safe_dump({
        "name": "progress shop", "history_start": "2024-01-01", "history_end": "2024-03-31",
        "warehouse": "warehouse.duckdb", "output": "out", "source": {"kind": "synthetic", "seed": 3, "customers": 300},
    }))  # fmt: skip
    env = {**os.environ, "REGULARS_PROGRESS_SECONDS": "0", "DAGSTER_HOME": str(tmp_path / "dagster")}
    env.pop("REGULARS_WAREHOUSE", None)
    env.pop("REGULARS_OUTPUT", None)
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--config", str(config), "--from", "2024-03-01",
         "--to", "2024-03-07"],
        capture_output=True, text=True, cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    orders_step = next(n for n, line in enumerate(lines) if line.startswith("[1] Orders"))
    progress = [line for line in lines[orders_step:] if line.strip().startswith("ingest: ")]
    assert progress and "rows" in progress[0], done.stdout


def two_days_loaded(tmp_path):
    """A shop of two days' CSV exports (ann buys on both, bo and cy on one each), both loaded: its export folder
    and settings."""
    folder = tmp_path / "exports"
    folder.mkdir()
    write_csv(folder / "2024-03-01.csv", "A1,ann,2024-03-01 10:00:00,100,zj", "A2,bo,2024-03-01 11:00:00,40,zj")
    write_csv(folder / "2024-03-02.csv", "B1,ann,2024-03-02 10:00:00,60,zj", "B2,cy,2024-03-02 11:00:00,30,zj")
    settings = file_shop(tmp_path, str(folder), COLUMNS)
    ingest(settings, "2024-03-01", "2024-03-02")
    return folder, settings


def test_a_reissued_earlier_day_with_a_changed_amount_reaches_the_next_daily_snapshot(tmp_path):
    folder, settings = two_days_loaded(tmp_path)
    snapshot(settings, "2024-03-02")
    assert revenue(settings) == {"ann": 160.0, "bo": 40.0, "cy": 30.0}

    # The 1st is re-issued with A1 at 1000 instead of 100 (same orders, same items: totals that still add up), and
    # the 3rd arrives; the daily run loads the 3rd, reloads the 1st, and starts from the facts of the 2nd.
    write_csv(folder / "2024-03-01.csv", "A1,ann,2024-03-01 10:00:00,1000,zj", "A2,bo,2024-03-01 11:00:00,40,zj")
    write_csv(folder / "2024-03-03.csv", "C1,di,2024-03-03 10:00:00,20,zj")
    ingest(settings, "2024-03-03")
    snapshot(settings, "2024-03-03")
    # ann: 1000 + 60 (by hand); the others as they were, and di new
    assert revenue(settings) == {"ann": 1060.0, "bo": 40.0, "cy": 30.0, "di": 20.0}
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        orders = conn.sql("SELECT * FROM staging.orders").pl()
        assert conn.execute("SELECT count(*) FROM raw.reloads").fetchone() == (0,)  # taken in by the snapshot
    full = customer_snapshot(orders, date(2024, 3, 3), settings).facts
    assert table(settings, "core.customer_facts").equals(full.sort(pl.all()))  # what a full snapshot gives

    # an order removed from a re-issued day: its customer's facts lose it (bo has no order left)
    write_csv(folder / "2024-03-01.csv", "A1,ann,2024-03-01 10:00:00,1000,zj")
    write_csv(folder / "2024-03-04.csv", "D1,di,2024-03-04 10:00:00,5,zj")
    ingest(settings, "2024-03-04")
    snapshot(settings, "2024-03-04")
    assert revenue(settings) == {"ann": 1060.0, "cy": 30.0, "di": 25.0}


def test_a_daily_snapshot_writes_the_rows_that_changed_and_the_views_age_the_rest(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    write_csv(folder / "2024-03-01.csv", *(f"A{n},c{n},2024-03-01 10:00:00,{10 * n},zj" for n in range(1, 9)))
    write_csv(folder / "2024-03-02.csv", "B1,c1,2024-03-02 10:00:00,30,zj", "B2,c2,2024-03-02 11:00:00,20,zj")
    settings = file_shop(tmp_path, str(folder), COLUMNS)
    ingest(settings, "2024-03-01", "2024-03-02")
    snapshot(settings, "2024-03-02", alone=True)
    before = {name: table(settings, name) for name in ("core.customer_facts", "core.rfm")}

    # the 5th: c3 orders again and c9 for the first time; nobody else did since the 2nd
    write_csv(folder / "2024-03-05.csv", "E1,c3,2024-03-05 10:00:00,50,zj", "E2,c9,2024-03-05 11:00:00,15,zj")
    ingest(settings, "2024-03-05")
    written = {
        event.asset_key.path[-1]: event.materialization.metadata["rows_written"].value
        for event in snapshot(settings, "2024-03-05", alone=True).get_asset_materialization_events()
        if event.asset_key.path[-2:] in (["core", "customer_facts"], ["core", "rfm"])
    }
    after = {name: table(settings, name) for name in ("core.customer_facts", "core.rfm")}
    assert written["customer_facts"] == 2  # c3's facts and c9's (by hand): the others' stored facts only age
    # core.rfm: the rows that differ in what does not age (scores and classes move with the shop's cuts), counted
    # from what the views show before and after
    aged = ["as_of_date", "recency_days"]
    changed = after["core.rfm"].drop(aged).join(before["core.rfm"].drop(aged), on=after["core.rfm"].drop(aged).columns,
                                                 how="anti", nulls_equal=True)  # fmt: skip
    assert written["rfm"] == changed.height > 0
    # the aged columns as of the 5th for everyone, by hand: c5 last ordered on the 1st, c1 on the 2nd
    recency = dict(after["core.customer_facts"].select("customer_id", "recency_days").iter_rows())
    assert (recency["c5"], recency["c1"], recency["c3"]) == (4, 3, 0)
    assert set(after["core.rfm"]["as_of_date"]) == {date(2024, 3, 5)}
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        orders = conn.sql("SELECT * FROM staging.orders").pl()
    full = customer_snapshot(orders, date(2024, 3, 5), settings)
    assert after["core.customer_facts"].equals(full.facts.sort(pl.all()))


def test_a_warehouse_whose_customer_tables_are_tables_gets_the_views_and_the_same_snapshot(tmp_path):
    folder, settings = two_days_loaded(tmp_path)
    snapshot(settings, "2024-03-01", alone=True)
    with duckdb.connect(str(settings.warehouse)) as conn:  # as a warehouse of the code before the views has them
        for name in ("core.customer_facts", "core.rfm"):
            conn.execute(f"CREATE TABLE {name}_copy AS FROM {name}")
            conn.execute(f"DROP VIEW {name}")
            conn.execute(f"DROP TABLE {name}_stored")
            conn.execute(f"ALTER TABLE {name}_copy RENAME TO {name.split('.')[1]}")
        conn.execute("DROP TABLE core.snapshot_day")
    snapshot(settings, "2024-03-02", alone=True)  # from the day before's facts, read from the tables
    with duckdb.connect(str(settings.warehouse), read_only=True) as conn:
        orders = conn.sql("SELECT * FROM staging.orders").pl()
        kinds = conn.sql("SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'core'")
        kinds = dict(kinds.fetchall())
    assert (kinds["customer_facts"], kinds["rfm"], kinds["customer_facts_stored"]) == ("VIEW", "VIEW", "BASE TABLE")
    full = customer_snapshot(orders, date(2024, 3, 2), settings)
    assert table(settings, "core.customer_facts").equals(full.facts.sort(pl.all()))
    assert table(settings, "core.rfm").equals(full.rfm.sort(pl.all()))


def snapshot(settings, as_of: str, alone: bool = False):
    """The customers job as of a day (`alone`: its snapshot step only)."""
    job = shop_job(settings, CUSTOMERS_JOB)
    config = {"ops": {f"{settings.id}__customer_snapshot": {"config": {"as_of": as_of}}}}
    selection = [settings.key(asset) for asset in (CUSTOMER_FACTS, RFM, SEGMENT_HISTORY)] if alone else None
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, run_config=config, asset_selection=selection)
    assert result.success
    return result


def revenue(settings) -> dict[str, float]:
    return dict(table(settings, "core.customer_facts").select("customer_id", "net_revenue").iter_rows())
