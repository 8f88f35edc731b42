"""The run summary `regulars` prints: one line per asset (its table, without the shop's prefix), rows where the asset
counts any."""

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from pipelines.cli import _summary_line, _warning_line, main


def test_a_summary_line_counts_rows_only_where_the_asset_has_them():
    orders = _summary_line(dg.AssetKey(["demo", "staging", "orders"]), {"rows": dg.MetadataValue.int(399)})
    report = _summary_line(
        dg.AssetKey(["demo", "reports", "shop_overview"]), {"path": dg.MetadataValue.path("/out/o.html")}
    )
    assert orders.split() == ["staging/orders", "399", "rows"]
    assert report.split() == ["reports/shop_overview", "path", "/out/o.html"]


def test_a_warning_line_names_the_check_and_what_it_saw():
    check = dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(["demo", "staging", "orders"]), check_name="orders_every_day", passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"days_without_orders": dg.MetadataValue.int(2), "first_days": dg.MetadataValue.text("2024-11-29")},
    )  # fmt: skip
    assert _warning_line(check).split() == ["warning:", "staging/orders", "orders_every_day:", "days", "without",
                                            "orders", "2,", "first", "days", "2024-11-29"]  # fmt: skip


def _shop_file(tmp_path, **overrides) -> str:
    raw = {
        "id": "tiny", "name": "tiny shop", "history_start": "2024-01-01", "history_end": "2024-01-31",
        "warehouse": "warehouse.duckdb", "output": "out", "events": {"presets": []},
        "source": {"kind": "synthetic", "seed": 2, "customers": 100},
    } | overrides  # fmt: skip
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return str(path)


def test_to_past_the_last_day_of_history_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    result = CliRunner().invoke(main, ["run", "--config", _shop_file(tmp_path), "--to", "2024-02-15"])
    assert result.exit_code == 2
    [line] = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert "2024-02-15 is after the last day of history (2024-01-31)" in line
    assert not (tmp_path / "warehouse.duckdb").exists()  # nothing ran


def test_run_renders_its_reports_in_the_language_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    result = CliRunner().invoke(main, ["run", "--config", _shop_file(tmp_path), "--language", "zh"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "reports" / "overview-2024-01-31.zh.html").exists()
    assert not (tmp_path / "out" / "reports" / "overview-2024-01-31.en.html").exists()  # the shop's own: en
    assert "--language" in CliRunner().invoke(main, ["demo", "--help"]).output


def test_a_missing_column_is_named_among_the_files_columns_only(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "orders.csv").write_text("order_no,buyer,total\n1,a,10\n", encoding="utf-8")
    columns = {"order_id": "order_no", "customer_id": "buyer", "order_ts": "paid_at", "amount": "total"}
    source = {"kind": "file", "path": "orders.csv", "columns": columns}
    result = CliRunner().invoke(main, ["run", "--config", _shop_file(tmp_path, source=source)])
    assert result.exit_code == 1
    assert "column 'paid_at': mapped column not found; the file has: order_no, buyer, total" in result.output


@pytest.mark.parametrize(
    "damage, cause",
    [
        ("history/runs.db", "a run history database there is damaged ("),
        ("dagster.yaml", "its dagster.yaml cannot be read"),
    ],
)
def test_a_damaged_dagster_home_stops_in_one_line_naming_it_and_the_fix(tmp_path, monkeypatch, damage, cause):
    home = tmp_path / "dagster"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    config = _shop_file(tmp_path)
    assert CliRunner().invoke(main, ["run", "--config", config, "--to", "2024-01-02"]).exit_code == 0
    (home / damage).write_text("run_storage: [\n", encoding="utf-8")  # neither a database nor YAML
    result = CliRunner().invoke(main, ["run", "--config", config, "--to", "2024-01-02"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(f"Error: the Dagster home {home} cannot be used: {cause}")
    assert "Traceback" not in result.output


def test_a_dagster_home_that_cannot_be_created_stops_in_one_line(tmp_path, monkeypatch):
    home = "/sys/regulars-home"  # sysfs takes no new folder, not even from root (read-only in a container)
    monkeypatch.setenv("DAGSTER_HOME", home)
    result = CliRunner().invoke(main, ["run", "--config", _shop_file(tmp_path), "--to", "2024-01-02"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(f"Error: the Dagster home {home} cannot be used: ")
    assert "choose another folder (DAGSTER_HOME)" in result.output
    assert "Traceback" not in result.output


def _no_file_over(size: int):
    """For a child process: files cannot grow past `size` bytes, as on a full disk (EFBIG, not SIGXFSZ)."""

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_a_full_dagster_home_stops_in_one_line_and_a_run_with_room_fixes_it(tmp_path):
    home, config = tmp_path / "dagster", _shop_file(tmp_path)
    command = [str(Path(sys.executable).parent / "regulars"), "run", "--config", config, "--to", "2024-01-02"]
    env = os.environ | {"DAGSTER_HOME": str(home)}
    # 20 kB: less than the home's new run database takes
    full = subprocess.run(command, env=env, capture_output=True, text=True, preexec_fn=_no_file_over(20_000))
    assert full.returncode == 1
    assert full.stderr.splitlines()[-1].startswith(
        f"Error: the Dagster home {home} cannot be used: it cannot be written (disk I/O error); free some space"
    )
    assert "Traceback" not in full.stderr
    room = subprocess.run(command, env=env, capture_output=True, text=True)
    assert room.returncode == 0, room.stderr
