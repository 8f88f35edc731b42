"""Great Expectations 1.x suites, defined in code, and one way to run them on a Polars frame.

GX has no Polars engine: a frame is handed to GX's pandas data source. `dagster-ge` targets
GX 0.x, so the Dagster checks in `checks.orders` and `checks.customers` call `validate` here.
A suite is fixed; what changes per run (the partition's days, the currency) are GX suite
parameters, so each process sets up GX once. Each run keeps its validation result as JSON and,
when a suite fails, renders it in GX Data Docs in the output folder.
"""

import json
import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path

import dagster as dg
import polars as pl
import polars.selectors as cs

from checks import order_rules
from pipelines.privacy import shown
from pipelines.settings import CLASS_CODES
from pipelines.warehouse import FIELDS

SAMPLE_SIZE = 5
SAMPLE_ROWS = 20_000  # about how many rows a suite validates when a check samples a run's rows
# BASIC: counts and a sample of unexpected values (SUMMARY's value counts would add about half)
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": SAMPLE_SIZE}


def parameter(name: str) -> dict:
    """A value given at validation time (GX's suite parameter)."""
    return {"$PARAMETER": name}


@dataclass(frozen=True, eq=False)  # hashed by identity: the suites are module constants, cached per process
class Suite:
    name: str
    expectations: tuple[dict, ...]  # GX expectation type and its arguments

    def columns(self) -> list[str] | None:
        """The columns its expectations read; None when one reads the whole table or a row condition."""
        if any("column" not in spec or "row_condition" in spec for spec in self.expectations):
            return None
        return list(dict.fromkeys(spec["column"] for spec in self.expectations))


# raw.orders: the contract's columns are there, and order times read for most rows.
RAW_ORDERS = Suite("raw_orders", (
    {"type": "expect_table_columns_to_match_set", "column_set": ["_source", "_row", *FIELDS, "order_date"],
     "exact_match": False},
    {"type": "expect_column_values_to_not_be_null", "column": "_ts", "mostly": 0.9},  # the parsed order time
    {"type": "expect_column_values_to_be_between", "column": "order_date", "min_value": parameter("first_day"),
     "max_value": parameter("last_day")},
))  # fmt: skip

CUSTOMER_FACTS = Suite("customer_facts", (
    {"type": "expect_column_values_to_be_unique", "column": "customer_id"},
    {"type": "expect_column_values_to_be_between", "column": "recency_days", "min_value": 0},
    {"type": "expect_column_values_to_be_between", "column": "orders", "min_value": 1},
))  # fmt: skip

RFM = Suite("rfm", (
    *({"type": "expect_column_values_to_be_between", "column": c, "min_value": 1, "max_value": 5}
      for c in ("r_score", "f_score", "m_score")),
    {"type": "expect_column_values_to_be_in_set", "column": "rfm_class", "value_set": list(CLASS_CODES)},
))  # fmt: skip


def clean_orders() -> Suite:
    """staging.orders' suite, made from the clean-order rules (`checks.order_rules`)."""
    return _suite_of_rules("clean_orders", order_rules.CLEAN_ORDER_RULES)


@cache  # one Suite per set of rules, which GX then sets up once per process (`_prepared`)
def _suite_of_rules(name: str, rules: tuple[order_rules.OrderRule, ...]) -> Suite:
    return Suite(name, tuple(rule.gx() for rule in rules))


def days(first: date, last: date) -> dict:
    """The days first..last as suite parameters: the first, the last and each; pandas holds dates as timestamps
    (see `_pandas`)."""
    each = [datetime.combine(first + timedelta(days=n), time()) for n in range((last - first).days + 1)]
    return {"first_day": each[0], "last_day": each[-1], "days": each}


@dataclass
class SuiteResult:
    suite: str
    success: bool
    rows: int
    failures: list[dict] = field(default_factory=list)  # expectation, column, unexpected_count, sample
    result_file: Path | None = None

    def shown_failures(self) -> list[dict]:
        """The failures as the run log and the UI show them: sampled ids and contact details masked."""
        return [f | {"sample": [shown(f["column"], v) for v in f["sample"]]} for f in self.failures]

    def summary(self) -> str:
        if self.success:
            return f"{self.suite}: all expectations met on {self.rows} rows"
        return f"{self.suite}: " + "; ".join(
            f"{f['expectation']}({f['column']}) failed on {f['unexpected_count']} rows, e.g. {f['sample']}"
            for f in self.shown_failures()
        )


def _gx():
    """Great Expectations, quiet: no analytics, progress bars or info logs (and a slow import)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # before the import, which logs too
    import great_expectations as gx

    # this module sets its own logger to INFO when imported, and says where it put temporary Data Docs
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    return gx


@cache
def _context(output: Path):
    """One ephemeral GX context per process and output folder, with its Data Docs site and pandas
    data source: setting GX up costs more than validating a suite."""
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    # Data Docs render from GX's results store and delete the pages whose result it lacks: keep
    # the rendered results on disk, so that each run's pages stay for the next runs to list.
    context.add_store("regulars_results", {
        "class_name": "ValidationResultsStore",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(output / "gx_results")},
    })  # fmt: skip
    context.variables.validation_results_store_name = "regulars_results"
    context.add_data_docs_site(
        site_name="regulars",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(output / "data_docs")},
            # the index reads each result it lists: the latest 200 keep a build quick after years of runs
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "validation_results_limit": 200},
        },
    )
    context.data_sources.add_pandas("regulars")
    return context


@cache
def _prepared(output: Path, suite: Suite):
    """The suite as GX objects: its batch definition (a whole data frame) and expectation suite."""
    gx = _gx()
    batches = (
        _context(output).data_sources.get("regulars")
        .add_dataframe_asset(suite.name)
        .add_batch_definition_whole_dataframe("run")
    )  # fmt: skip
    gx_suite = gx.ExpectationSuite(name=suite.name)
    for spec in suite.expectations:
        kind, kwargs = spec["type"], {k: v for k, v in spec.items() if k != "type"}
        gx_suite.add_expectation(getattr(gx.expectations, "".join(part.title() for part in kind.split("_")))(**kwargs))
    return batches, gx_suite


def set_up_in_background(output: Path, *suites: Suite) -> Future:
    """Set GX up for `suites` in a thread of its own (its import alone takes seconds of one core), for a
    caller with other work meanwhile: validate once the future is done."""
    pool = ThreadPoolExecutor(max_workers=1)
    ready = pool.submit(lambda: [_prepared(output, suite) for suite in suites])
    pool.shutdown(wait=False)
    return ready


def _pandas(frame: pl.DataFrame):
    """The frame in the dtypes GX's pandas engine compares vectorized (int64, float64, datetime64[ns]);
    it checks any other column row by row in Python."""
    return frame.with_columns(
        cs.date().cast(pl.Datetime("ns")),
        cs.datetime().dt.cast_time_unit("ns"),
        cs.integer().cast(pl.Int64),
        cs.float().cast(pl.Float64),
    ).to_pandas()


def _render_data_docs(output: Path, suite: Suite, result, run_id: str, batch_id: str) -> None:
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = _context(output)
    key = ValidationResultIdentifier(ExpectationSuiteIdentifier(suite.name), RunIdentifier(run_name=run_id), batch_id)
    context.validation_results_store.set(key, result)
    context.build_data_docs(site_names=["regulars"], resource_identifiers=[key])


def validate(
    suite: Suite, frame: pl.DataFrame, output: Path, run_id: str, parameters: dict | None = None,
    data_docs: str = "on_failure",
) -> SuiteResult:  # fmt: skip
    """Validate `frame` against `suite` with its `parameters`; keep the result as JSON under `output`,
    and in Data Docs there too when the suite fails (data_docs="on_failure") or every time ("always").

    Rendering Data Docs costs more than the validation (about 0.4 s a suite), hence on failure by default."""
    batches, gx_suite = _prepared(output, suite)
    columns = suite.columns()  # GX hashes every column it is given to name the batch
    batch = batches.get_batch(batch_parameters={"dataframe": _pandas(frame.select(columns) if columns else frame)})
    result = batch.validate(gx_suite, result_format=RESULT_FORMAT, expectation_parameters=parameters)
    if data_docs == "always" or not result.success:
        _render_data_docs(output, suite, result, run_id, batch.id)
    failures = [
        {"expectation": r.expectation_config.type, "column": r.expectation_config.kwargs.get("column", ""),
         "unexpected_count": r.result.get("unexpected_count", r.result.get("observed_value")),
         "sample": [str(v) for v in r.result.get("partial_unexpected_list", [])[:SAMPLE_SIZE]]}
        for r in result.results if not r.success
    ]  # fmt: skip
    path = output / "results" / run_id / f"{suite.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json_dict(), indent=1, default=str), encoding="utf-8")
    return SuiteResult(suite.name, bool(result.success), frame.height, failures, path)


def suite_check(check_name: str, asset: dg.AssetKey, result: SuiteResult) -> dg.AssetCheckResult:
    """A suite's outcome as a Dagster check result: the summary, each failed expectation and a sample."""
    return dg.AssetCheckResult(
        check_name=check_name, asset_key=asset, passed=result.success,
        metadata={"summary": result.summary(), "rows": result.rows,
                  "failures": dg.MetadataValue.json(result.shown_failures()),
                  "result_file": dg.MetadataValue.path(str(result.result_file))},
    )  # fmt: skip
