"""Check overhead: how much the quality checks add to a daily run of the demo shop.

    python bench/checks.py

Loads the demo shop's history, runs the daily job once to warm up (the first run rebuilds
customer history), then times the daily job for the last day with the time spent inside the
check functions measured on the side, in the same run. GX's import, paid once per run
process, is measured on its own.
"""

import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg  # noqa: E402

import assets.customers  # noqa: E402
import assets.orders  # noqa: E402
from assets.orders import ingest_days  # noqa: E402
from assets.orders.cleaning import CleaningRules  # noqa: E402
from pipelines.definitions import build_definitions  # noqa: E402
from pipelines.operations import DAILY_JOB  # noqa: E402
from pipelines.settings import load_settings  # noqa: E402
from pipelines.sources import order_source  # noqa: E402
from pipelines.warehouse import Warehouse  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import print_table  # noqa: E402

spent = {"checks": 0.0}


def timed(function):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent["checks"] += time.perf_counter() - started

    return wrapper


def gx_import_seconds() -> float:
    code = "import time, dagster; t = time.perf_counter(); import great_expectations; print(time.perf_counter() - t)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="regulars-bench-") as tmp:
        demo = load_settings()
        settings = demo.model_copy(update={"warehouse": Path(tmp) / "warehouse.duckdb", "output": Path(tmp) / "out"})
        last = settings.history_end
        source = order_source(settings)
        rules = CleaningRules(source.layout, settings.timezone, settings.rules.max_amount, settings.currency)
        with Warehouse(database=str(settings.warehouse)).get_connection() as conn:
            ingest_days(source, rules, conn, settings.history_start, last - timedelta(days=2))
        job = build_definitions(settings).resolve_job_def(DAILY_JOB)
        quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
        with dg.DagsterInstance.ephemeral() as instance:
            warm = job.execute_in_process(
                partition_key=str(last - timedelta(days=1)), instance=instance, run_config=quiet
            )
            assert warm.success
            assets.orders.order_check_results = timed(assets.orders.order_check_results)
            assets.customers.customer_check_results = timed(assets.customers.customer_check_results)
            started = time.perf_counter()
            run = job.execute_in_process(partition_key=str(last), instance=instance, run_config=quiet)
            total = time.perf_counter() - started
        assert run.success
    checks, gx_import = spent["checks"], gx_import_seconds()
    print_table(
        [
            ("daily run of the demo shop, one day (checks included)", f"{total:.2f} s", ""),
            ("  of which inside the checks", f"{checks:.2f} s", ""),
            ("checks add to the run", f"{checks / (total - checks):.0%}", "less than 20%"),
            ("GX import, once per run process", f"{gx_import:.2f} s", ""),
            ("checks add, counting that import", f"{(checks + gx_import) / (total - checks):.0%}", ""),
        ]
    )


if __name__ == "__main__":
    main()
