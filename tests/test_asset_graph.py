"""The demo shop's asset graph against a committed snapshot, so that a change to a key, a dependency, a partitions
definition, a check, a kind, an owner or a warehouse column shows in review.

After a deliberate change, refresh the snapshot and commit it with the change:

    .venv/bin/python -m tests.test_asset_graph

The snapshot has one fact per line (`asset  facet  value`), sorted: two branches that add assets merge line by line.
"""

import difflib
from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import CUSTOMERS_JOB, build_definitions, shop_job
from pipelines.settings import SettingsError, load_settings
from pipelines.warehouse import Warehouse
from tests.conftest import ingest, shop, table

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.txt"


def _partitions(partitions: dg.PartitionsDefinition | None) -> str:
    if partitions is None:
        return "none"
    if isinstance(partitions, dg.TimeWindowPartitionsDefinition):
        end = partitions.end.date().isoformat() if partitions.end else "open"  # the end is exclusive
        return f"{partitions.cron_schedule} {partitions.start.date()} until {end} {partitions.timezone}"
    if isinstance(partitions, dg.StaticPartitionsDefinition):
        return "static " + ", ".join(partitions.get_partition_keys())
    return str(partitions)


def graph_lines(defs: dg.Definitions) -> list[str]:
    """One line per fact of each asset: group, partitions, dependencies, kinds, owners, columns, checks."""
    lines = []
    for spec in defs.resolve_all_asset_specs():
        asset = spec.key.to_user_string()
        lines += [f"{asset}  group  {spec.group_name}", f"{asset}  partitions  {_partitions(spec.partitions_def)}"]
        for dep in spec.deps:
            mapping = f"  ({type(dep.partition_mapping).__name__})" if dep.partition_mapping else ""
            lines.append(f"{asset}  dep  {dep.asset_key.to_user_string()}{mapping}")
        lines += [f"{asset}  kind  {kind}" for kind in spec.kinds]
        lines += [f"{asset}  owner  {owner}" for owner in spec.owners]
        schema = spec.metadata.get("dagster/column_schema")
        for column in schema.columns if schema else []:
            not_null = "" if column.constraints.nullable else " NOT NULL"
            lines.append(f"{asset}  column  {column.name} {column.type}{not_null}")
    for assets in defs.resolve_asset_graph().assets_defs:
        for check in assets.check_specs:
            blocking = "blocking" if check.blocking else "non-blocking"
            lines.append(f"{check.asset_key.to_user_string()}  check  {check.name} ({blocking})")
    return sorted(lines)


def demo_definitions() -> dg.Definitions:
    return build_definitions(load_settings(None))


def differences(defs: dg.Definitions) -> list[str]:
    """The unified diff of the committed snapshot against the graph of `defs` (empty when they agree)."""
    committed = SNAPSHOT.read_text(encoding="utf-8").splitlines()
    return list(
        difflib.unified_diff(committed, graph_lines(defs), "committed snapshot", "asset graph now", lineterm="", n=1)
    )


def test_the_asset_graph_matches_the_snapshot():
    diff = differences(demo_definitions())
    refresh = "the asset graph changed; if on purpose, refresh the snapshot: .venv/bin/python -m tests.test_asset_graph"
    assert not diff, refresh + "\n" + "\n".join(diff)


def test_a_dropped_dependency_shows_in_the_diff():
    # the customer facts without their one input, the clean orders: the snapshot test must fail on it
    facts, orders = dg.AssetKey(["demo", "core", "customer_facts"]), dg.AssetKey(["demo", "staging", "orders"])
    defs = demo_definitions()
    assert orders in {dep.asset_key for dep in defs.resolve_assets_def(facts).specs_by_key[facts].deps}
    dropped = defs.map_asset_specs(
        func=lambda spec: (
            spec.replace_attributes(deps=[d for d in spec.deps if d.asset_key != orders]) if spec.key == facts else spec
        )
    )
    changed = [line for line in differences(dropped) if line[0] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ["-demo/core/customer_facts  dep  demo/staging/orders"]


def test_a_shop_names_its_owners_and_a_malformed_one_is_refused(tmp_path):
    settings = shop(tmp_path, operations={"owners": ["ana@example.com", "team:crm"]})
    specs = build_definitions(settings).resolve_all_asset_specs()
    assert {tuple(spec.owners) for spec in specs} == {("ana@example.com", "team:crm")}
    with pytest.raises(SettingsError, match=r"operations\.owners\.0: .*email or team:name.*'data team'"):
        shop(tmp_path, operations={"owners": ["data team"]})


def test_a_tables_column_schema_is_the_warehouses(tmp_path):
    # the columns DuckDB reports for a warehouse file made as a run makes it, against the schema the UI shows
    settings = shop(tmp_path)
    with Warehouse(database=str(settings.warehouse)).get_connection() as conn:
        described = conn.sql("DESCRIBE staging.orders").fetchall()  # name, type, null ('YES'/'NO'), ...
    key = dg.AssetKey([settings.id, "staging", "orders"])
    spec = next(spec for spec in build_definitions(settings).resolve_all_asset_specs() if spec.key == key)
    columns = spec.metadata["dagster/column_schema"].columns
    shown = [(c.name, c.type, "YES" if c.constraints.nullable else "NO") for c in columns]
    assert shown == [row[:3] for row in described]
    assert shown[0] == ("order_id", "VARCHAR", "NO")  # the contract's first column, never null


if __name__ == "__main__":
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text("\n".join(graph_lines(demo_definitions())) + "\n", encoding="utf-8")
    print(f"wrote {SNAPSHOT}")


def test_the_tables_made_from_frames_show_their_warehouse_columns_in_the_ui(tmp_path):
    settings = shop(tmp_path, source={"kind": "synthetic", "seed": 3, "customers": 1500})
    ingest(settings, "2024-01-01", "2024-12-31")
    with dg.DagsterInstance.ephemeral() as instance:
        assert shop_job(settings, CUSTOMERS_JOB).execute_in_process(instance=instance).success
        for name in ("customer_facts", "rfm", "segment_history", "tier_history", "customer_value", "model_fits"):
            event = instance.get_latest_materialization_event(settings.key(dg.AssetKey(["core", name])))
            schema = event.asset_materialization.metadata["dagster/column_schema"].schema
            # the columns the warehouse reads back, in its order (views included)
            assert [column.name for column in schema.columns] == table(settings, f"core.{name}").columns, name
