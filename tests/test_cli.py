"""The run summary `regulars` prints: one line per asset, rows where the asset counts any."""

import dagster as dg

from pipelines.cli import _summary_line, _warning_line


def test_a_summary_line_counts_rows_only_where_the_asset_has_them():
    orders = _summary_line(dg.AssetKey(["staging", "orders"]), {"rows": dg.MetadataValue.int(399)})
    report = _summary_line(dg.AssetKey(["reports", "shop_overview"]), {"path": dg.MetadataValue.path("/out/o.html")})
    assert orders.split() == ["staging/orders", "399", "rows"]
    assert report.split() == ["reports/shop_overview", "path", "/out/o.html"]


def test_a_warning_line_names_the_check_and_what_it_saw():
    check = dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(["staging", "orders"]), check_name="orders_every_day", passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"days_without_orders": dg.MetadataValue.int(2), "first_days": dg.MetadataValue.text("2024-11-29")},
    )  # fmt: skip
    assert _warning_line(check).split() == ["warning:", "staging/orders", "orders_every_day:", "days", "without",
                                            "orders", "2,", "first", "days", "2024-11-29"]  # fmt: skip
