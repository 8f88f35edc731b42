"""Check overhead: how much the quality checks add to a daily run of the demo shop, and who spends it.

    python bench/check_overhead.py [--customers N]

Loads the demo shop's history (or, with --customers, that of the same shop with N customers)
into a temporary warehouse and Dagster home, then times the daily job two ways, three times
each, with the time spent on the checks measured on the side, in the same run, and split by
who spends it: our check code, Great Expectations (importing, setting up, validating) and
Dagster (recording each check's planned and finished evaluation):

- in a warm process (the code and GX already loaded);
- as the schedule launches it, in a process of its own: Python, the code location, GX's import
  and set-up (paid once per run process) and the run.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from unittest.mock import patch

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import ROOT, print_table  # noqa: E402

RUNS = 3  # of each kind; the table shows the median run
PARTS = {  # the checks' cost, by who spends it
    "ours": "our check code (frames to pandas, SQL, result files)",
    "gx_validate": "GX validating the four suites",
    "gx_setup": "GX setting up its context and suites",
    "gx_import": "GX's import",
    "recording": "Dagster recording the 8 checks' evaluations",
}


def instrumented_daily_run(day: str) -> dict:
    """Run the daily job for `day` in this process (REGULARS_* and DAGSTER_HOME say where); return
    its seconds and, of them, the checks' seconds by part (see PARTS)."""
    import dagster as dg

    import assets.customers
    import assets.orders
    from checks import suites
    from pipelines.definitions import shop_job
    from pipelines.operations import DAILY_JOB
    from pipelines.settings import load_settings

    spent = dict.fromkeys(("checks", "gx_validate", "gx_setup", "recording"), 0.0)
    started = time.perf_counter()
    suites._gx()  # what the first check would pay in a new process: timed apart, with the code already loaded
    spent["gx_import"] = time.perf_counter() - started
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.datasource.fluent.interfaces import Batch

    def timed(function, on: str, counts=lambda *args: True):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                if counts(*args):
                    spent[on] += time.perf_counter() - started

        return wrapper

    check_events = {dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED}

    job = shop_job(load_settings(), DAILY_JOB)
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    with (
        patch.object(assets.orders, "order_check_results", timed(assets.orders.order_check_results, "checks")),
        patch.object(assets.customers, "customer_check_results",
                     timed(assets.customers.customer_check_results, "checks")),
        # GX's own calls inside the check functions
        patch.object(suites, "_prepared", timed(suites._prepared, "gx_setup")),
        patch.object(BatchDefinition, "get_batch", timed(BatchDefinition.get_batch, "gx_validate")),
        patch.object(Batch, "validate", timed(Batch.validate, "gx_validate")),
        dg.DagsterInstance.get() as instance,
        patch.object(instance, "handle_new_event", timed(
            instance.handle_new_event, "recording", lambda event: event.dagster_event_type in check_events)),
    ):  # fmt: skip
        started = time.perf_counter()
        assert job.execute_in_process(partition_key=day, instance=instance, run_config=quiet).success
        run = time.perf_counter() - started
    return {
        "run": run + spent["gx_import"],
        **spent,
        "ours": spent["checks"] - spent["gx_validate"] - spent["gx_setup"],
    }


def load_history() -> tuple[str, str, str]:
    """The demo shop's orders up to three days before its last day; returns the three days left."""
    from assets.orders import ingest_days
    from pipelines.settings import load_settings
    from pipelines.sources import order_source
    from pipelines.warehouse import Warehouse

    settings = load_settings()
    last = settings.history_end
    with Warehouse(database=str(settings.warehouse)).get_connection() as conn:
        ingest_days(order_source(settings), settings, conn, settings.history_start, last - timedelta(days=3), "history")
    return tuple(str(last - timedelta(days=n)) for n in (2, 1, 0))


def launched(day: str) -> dict:
    """The daily run in a process of its own, timed from its start to its end."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--run", day], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the daily run of {day} failed:\n{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "process": time.perf_counter() - started}


def median(runs: list[dict], total: str) -> dict:
    """The run whose checks' share is the median (a day run again replaces the same rows)."""
    return sorted(runs, key=lambda run: sum(run[part] for part in PARTS) / run[total])[len(runs) // 2]


def rows(run: dict, total: str, kind: str) -> list[tuple[str, str, str]]:
    """The run, the checks' cost by part, and what each part adds to the rest of the run."""
    rest = run[total] - sum(run[part] for part in PARTS)
    return [
        (f"{kind}: daily run of the demo shop, one day (median of {RUNS})", f"{run[total]:.2f} s", ""),
        *((f"  {name}", f"{run[part]:.2f} s", "") for part, name in PARTS.items()),
        ("  the rest of the run", f"{rest:.2f} s", ""),
        (f"{kind}: the checks add to the rest", f"{sum(run[part] for part in PARTS) / rest:.0%}", "less than 20%"),
        ("  our code", f"{run['ours'] / rest:.0%}", ""),
        ("  GX", f"{(run['gx_validate'] + run['gx_setup'] + run['gx_import']) / rest:.0%}", ""),
        ("  Dagster", f"{run['recording'] / rest:.0%}", ""),
    ]


def main(customers: int | None) -> None:
    with tempfile.TemporaryDirectory(prefix="regulars-bench-") as tmp:
        home = Path(tmp)
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        shop = yaml.safe_load((ROOT / "shop.yaml").read_text(encoding="utf-8"))
        shop["source"]["customers"] = customers or shop["source"]["customers"]
        (home / "shop.yaml").write_text(yaml.safe_dump(shop, allow_unicode=True), encoding="utf-8")
        os.environ.update(
            DAGSTER_HOME=tmp,
            REGULARS_CONFIG=str(home / "shop.yaml"),
            REGULARS_WAREHOUSE=str(home / "warehouse.duckdb"),
            REGULARS_OUTPUT=str(home / "out"),
        )  # for this process and the launched ones
        print(f"the demo shop with {shop['source']['customers']:,} customers", flush=True)
        warm_up_day, warm_day, launched_day = load_history()
        instrumented_daily_run(warm_up_day)  # the first run after loading rebuilds customer history
        warm = median([instrumented_daily_run(warm_day) for _ in range(RUNS)], "run")
        own = median([launched(launched_day) for _ in range(RUNS)], "process")
    print_table(rows(warm, "run", "warm process") + rows(own, "process", "launched in a process of its own"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, help="the demo shop's size (default: as in shop.yaml)")
    parser.add_argument("--run", metavar="DAY", help=argparse.SUPPRESS)  # one launched run, in this process
    args = parser.parse_args()
    if args.run:
        print(json.dumps(instrumented_daily_run(args.run)))
    else:
        main(args.customers)
