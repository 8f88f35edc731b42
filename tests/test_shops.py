"""Many shops, one deployment: each shop's assets under its own prefix, with its own partitions, runs and checks."""

import os
import subprocess
import sys
from datetime import date

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.definitions import build_definitions, daily_partitions, shops_of_deployment
from pipelines.operations import SHOP_TAG
from pipelines.settings import SettingsError, load_settings
from tests.conftest import ROOT

# Two shops in different zones, with different first days
SHOPS = {
    "north": {"timezone": "Asia/Shanghai", "history_start": "2024-01-01", "history_end": "2024-02-10", "seed": 4},
    "west": {"timezone": "America/New_York", "history_start": "2024-01-15", "history_end": "2024-02-20", "seed": 9},
}


def write_shop(folder, shop_id: str) -> str:
    given = SHOPS[shop_id]
    raw = {
        "id": shop_id, "name": f"{shop_id} shop", "timezone": given["timezone"],
        "history_start": given["history_start"], "history_end": given["history_end"],
        "warehouse": f"{shop_id}/warehouse.duckdb", "output": f"{shop_id}/out", "events": {"presets": []},
        "source": {"kind": "synthetic", "seed": given["seed"], "customers": 300},
    }  # fmt: skip
    path = folder / f"{shop_id}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def two_shops(tmp_path_factory):
    """Both shops run with `regulars run --config`, one after the other, with one Dagster home."""
    folder = tmp_path_factory.mktemp("shops")
    home = folder / "dagster"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(home))
        env.delenv("REGULARS_SHOPS", raising=False)
        env.delenv("REGULARS_CONFIG", raising=False)
        configs = {shop_id: write_shop(folder, shop_id) for shop_id in SHOPS}
        for config in configs.values():
            result = CliRunner().invoke(main, ["run", "--config", config])
            assert result.exit_code == 0, result.output
        shops = shops_of_deployment()  # what `dagster dev` in that home loads
    return folder, configs, shops


def test_dagster_dev_shows_each_shop_run_from_the_cli_with_its_own_assets_partitions_runs_and_checks(
    two_shops, monkeypatch
):
    folder, configs, shops = two_shops
    monkeypatch.setenv("DAGSTER_HOME", str(folder / "dagster"))
    assert [s.id for s in shops] == ["demo", "north", "west"]  # the demo shop, then the shops run here
    defs = build_definitions(*shops)
    jobs = {job.name for job in defs.resolve_all_job_defs()}  # every shop's jobs resolve beside the others'
    assert {f"{s.id}__daily" for s in shops} | {f"{s.id}__campaigns" for s in shops} <= jobs
    defs.resolve_implicit_global_asset_job_def()  # what `dagster asset materialize` and the UI run
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    for shop_id, given in SHOPS.items():
        settings = load_settings(configs[shop_id])
        orders = dg.AssetKey([shop_id, "staging", "orders"])
        assert orders in keys
        partitions = defs.resolve_assets_def(orders).partitions_def
        assert partitions == daily_partitions(settings)
        assert (partitions.timezone, partitions.start.date()) == (given["timezone"], settings.history_start)
        checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys if key.asset_key == orders}
        assert {"rows_reconcile", "clean_orders_suite"} <= checks

    with dg.DagsterInstance.get() as instance:
        for shop_id, given in SHOPS.items():
            days = instance.get_materialized_partitions(dg.AssetKey([shop_id, "staging", "orders"]))
            first, last = date.fromisoformat(given["history_start"]), date.fromisoformat(given["history_end"])
            assert sorted(days) == [d.isoformat() for d in _days(first, last)]  # its own days, no other shop's
            runs = instance.get_runs(dg.RunsFilter(tags={SHOP_TAG: shop_id}))
            assert runs and all(run.job_name.startswith(f"{shop_id}__") for run in runs)
            checked = {
                event.dagster_event.event_specific_data.asset_key.path[0]
                for run in runs
                for event in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
            }
            assert checked == {shop_id}  # its runs checked its assets only
        assert not instance.get_runs(dg.RunsFilter(tags={SHOP_TAG: "demo"}))  # registered, never run


def test_the_code_location_dagster_dev_loads_lists_both_shops_assets(two_shops):
    folder, _, _ = two_shops
    env = os.environ | {"DAGSTER_HOME": str(folder / "dagster")}
    for variable in ("REGULARS_SHOPS", "REGULARS_CONFIG"):
        env.pop(variable, None)
    listed = subprocess.run([sys.executable, "-m", "dagster", "asset", "list", "-m", "pipelines.definitions"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    keys = set(listed.stdout.split())
    assert {"north/staging/orders", "west/staging/orders", "demo/staging/orders"} <= keys, listed.stdout[-2000:]


def test_a_deployment_lists_its_shops_in_a_folder_and_refuses_two_with_one_id(tmp_path, monkeypatch):
    for shop_id in SHOPS:
        write_shop(tmp_path, shop_id)
    monkeypatch.setenv("REGULARS_SHOPS", str(tmp_path))
    assert [s.id for s in shops_of_deployment()] == ["north", "west"]
    (tmp_path / "copy.yaml").write_text((tmp_path / "west.yaml").read_text(), encoding="utf-8")
    with pytest.raises(SettingsError, match="two shops have the id 'west'"):
        build_definitions(*(load_settings(p) for p in sorted(tmp_path.glob("*.yaml"))))


def test_a_shop_without_an_id_takes_its_settings_file_name(tmp_path):
    path = tmp_path / "My Shop-2.yaml"
    raw = yaml.safe_load(open(write_shop(tmp_path, "north"), encoding="utf-8"))
    del raw["id"]
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert load_settings(path).id == "my_shop_2"


def _days(first: date, last: date) -> list[date]:
    return [date.fromordinal(n) for n in range(first.toordinal(), last.toordinal() + 1)]
