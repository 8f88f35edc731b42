"""Great Expectations 1.x suites, defined in code, and one way to run them on a Polars frame.

GX has no Polars engine: a frame is handed to GX's pandas data source. `dagster-ge` targets
GX 0.x, so the Dagster checks in `checks.orders` and `checks.customers` call `validate` here.
Each run keeps its validation result as JSON and refreshes GX Data Docs in the output folder.
"""

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

import dagster as dg
import polars as pl

from pipelines.settings import CLASS_CODES
from pipelines.warehouse import COMPLETED, FIELDS

SAMPLE_SIZE = 5


def _day(day: date) -> datetime:
    return datetime.combine(day, time())


def raw_orders(first: date, last: date) -> list[dict]:
    """raw.orders: the contract's columns are there, and order times read for most rows."""
    return [
        {"type": "expect_table_columns_to_match_set", "column_set": ["_source", "_row", *FIELDS, "order_date"],
         "exact_match": False},
        {"type": "expect_column_values_to_not_be_null", "column": "_ts", "mostly": 0.9},  # the parsed order time
        {"type": "expect_column_values_to_be_between", "column": "order_date", "min_value": _day(first),
         "max_value": _day(last)},
    ]  # fmt: skip


def clean_orders(first: date, last: date, currency: str, max_amount: float) -> list[dict]:
    """staging.orders: unique ids, a customer on every order, a completed order worth 0..max_amount,
    days inside the partition, the shop's currency."""
    return [
        {"type": "expect_column_values_to_be_unique", "column": "order_id"},
        {"type": "expect_column_values_to_not_be_null", "column": "customer_id"},
        {"type": "expect_column_values_to_be_between", "column": "amount", "min_value": 0, "max_value": max_amount,
         "row_condition": f'status=="{COMPLETED}"', "condition_parser": "pandas"},  # free orders happen
        {"type": "expect_column_values_to_be_between", "column": "order_date", "min_value": _day(first),
         "max_value": _day(last)},
        {"type": "expect_column_values_to_be_in_set", "column": "currency", "value_set": [currency]},
    ]  # fmt: skip


def customer_facts() -> list[dict]:
    return [
        {"type": "expect_column_values_to_be_unique", "column": "customer_id"},
        {"type": "expect_column_values_to_be_between", "column": "recency_days", "min_value": 0},
        {"type": "expect_column_values_to_be_between", "column": "orders", "min_value": 1},
    ]


def rfm() -> list[dict]:
    scores = [{"type": "expect_column_values_to_be_between", "column": c, "min_value": 1, "max_value": 5}
              for c in ("r_score", "f_score", "m_score")]  # fmt: skip
    return [
        *scores,
        {"type": "expect_column_values_to_be_in_set", "column": "rfm_class", "value_set": list(CLASS_CODES)},
    ]


@dataclass
class SuiteResult:
    suite: str
    success: bool
    rows: int
    failures: list[dict] = field(default_factory=list)  # expectation, column, unexpected_count, sample
    result_file: Path | None = None

    def summary(self) -> str:
        if self.success:
            return f"{self.suite}: all expectations met on {self.rows} rows"
        return f"{self.suite}: " + "; ".join(
            f"{f['expectation']}({f['column']}) failed on {f['unexpected_count']} rows, e.g. {f['sample']}"
            for f in self.failures
        )


def _gx():
    """Great Expectations, quiet: no analytics, progress bars or info logs (and a slow import)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    return gx


def validate(
    suite: str, frame: pl.DataFrame, expectations: list[dict], output: Path, run_id: str, data_docs: str = "on_failure"
) -> SuiteResult:
    """Validate `frame` against `expectations`; keep the result as JSON under `output`, and in Data Docs
    there too when the suite fails (data_docs="on_failure") or every time ("always").

    Rendering Data Docs costs most of a validation (about 0.5 s a suite here), hence on failure by default."""
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name="regulars",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(output / "data_docs")},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    batch = (
        context.data_sources.add_pandas("regulars")
        .add_dataframe_asset(suite)
        .add_batch_definition_whole_dataframe("run")
    )
    gx_suite = context.suites.add(gx.ExpectationSuite(name=suite))
    for spec in expectations:
        kind, kwargs = spec["type"], {k: v for k, v in spec.items() if k != "type"}
        class_name = "".join(part.title() for part in kind.split("_"))
        gx_suite.add_expectation(getattr(gx.expectations, class_name)(**kwargs))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=suite, data=batch, suite=gx_suite))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name=suite, validation_definitions=[definition],
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE},
    ))  # fmt: skip
    # pandas holds dates as timestamps: compare them as such (see `_day`)
    days = [c for c, t in frame.schema.items() if t == pl.Date]
    run = checkpoint.run(
        batch_parameters={"dataframe": frame.with_columns(pl.col(days).cast(pl.Datetime("us"))).to_pandas()}
    )
    result = next(iter(run.run_results.values()))
    if data_docs == "always" or not result.success:
        context.build_data_docs()
    failures = [
        {"expectation": r.expectation_config.type, "column": r.expectation_config.kwargs.get("column", ""),
         "unexpected_count": r.result.get("unexpected_count", r.result.get("observed_value")),
         "sample": [str(v) for v in r.result.get("partial_unexpected_list", [])[:SAMPLE_SIZE]]}
        for r in result.results if not r.success
    ]  # fmt: skip
    path = output / "results" / run_id / f"{suite}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json_dict(), indent=1, default=str), encoding="utf-8")
    return SuiteResult(suite, bool(result.success), frame.height, failures, path)


def suite_check(check_name: str, asset: dg.AssetKey, result: SuiteResult) -> dg.AssetCheckResult:
    """A suite's outcome as a Dagster check result: the summary, each failed expectation and a sample."""
    return dg.AssetCheckResult(
        check_name=check_name, asset_key=asset, passed=result.success,
        metadata={"summary": result.summary(), "rows": result.rows, "failures": dg.MetadataValue.json(result.failures),
                  "result_file": dg.MetadataValue.path(str(result.result_file))},
    )  # fmt: skip
