"""Check overhead: how much the quality checks add to a daily run of the demo shop.

    python bench/checks.py

Loads the demo shop's history into a temporary warehouse and Dagster home, then times the
daily job two ways, three times each, with the time spent on the checks measured on the side,
in the same run:

- in a warm process (the code and Great Expectations already loaded): what the checks cost a run,
  in the check functions and in Dagster recording their evaluations (the run's event log);
- as the schedule launches it, in a process of its own: Python, the code
  location, GX's import and set-up (paid once per run process) and the run.
"""

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import ROOT, print_table  # noqa: E402

RUNS = 3  # of each kind; the table shows the median run


def instrumented_daily_run(day: str) -> dict:
    """Run the daily job for `day` in this process (REGULARS_* and DAGSTER_HOME say where); return
    its seconds and the seconds spent on the checks: inside the check functions, and Dagster
    storing their planned and finished evaluations."""
    import dagster as dg

    import assets.customers
    import assets.orders
    from pipelines.definitions import build_definitions
    from pipelines.operations import DAILY_JOB
    from pipelines.settings import load_settings

    spent = {"checks": 0.0, "recording": 0.0}

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

    job = build_definitions(load_settings()).resolve_job_def(DAILY_JOB)
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    with (
        patch.object(assets.orders, "order_check_results", timed(assets.orders.order_check_results, "checks")),
        patch.object(assets.customers, "customer_check_results",
                     timed(assets.customers.customer_check_results, "checks")),
        dg.DagsterInstance.get() as instance,
        patch.object(instance, "handle_new_event", timed(
            instance.handle_new_event, "recording", lambda event: event.dagster_event_type in check_events)),
    ):  # fmt: skip
        started = time.perf_counter()
        assert job.execute_in_process(partition_key=day, instance=instance, run_config=quiet).success
        return {"run": time.perf_counter() - started, **spent}


def load_history() -> tuple[str, str, str]:
    """The demo shop's orders up to three days before its last day; returns the three days left."""
    from assets.orders import ingest_days
    from assets.orders.cleaning import CleaningRules
    from pipelines.settings import load_settings
    from pipelines.sources import order_source
    from pipelines.warehouse import Warehouse

    settings = load_settings()
    source = order_source(settings)
    rules = CleaningRules(source.layout, settings.timezone, settings.rules.max_amount, settings.currency)
    last = settings.history_end
    with Warehouse(database=str(settings.warehouse)).get_connection() as conn:
        ingest_days(source, rules, conn, settings.history_start, last - timedelta(days=3))
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
    return sorted(runs, key=lambda run: (run["checks"] + run["recording"]) / run[total])[len(runs) // 2]


def share(run: dict, total: str, *parts: str) -> str:
    """What `parts` of the checks add to the rest of the run."""
    cost = sum(run[part] for part in parts)
    return f"{cost / (run[total] - run['checks'] - run['recording']):.0%}"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="regulars-bench-") as tmp:
        home = Path(tmp)
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        os.environ.update(
            DAGSTER_HOME=tmp, REGULARS_WAREHOUSE=str(home / "warehouse.duckdb"), REGULARS_OUTPUT=str(home / "out")
        )  # for this process and the launched ones
        warm_up_day, warm_day, launched_day = load_history()
        instrumented_daily_run(warm_up_day)  # the first run after loading rebuilds customer history
        warm = median([instrumented_daily_run(warm_day) for _ in range(RUNS)], "run")
        own = median([launched(launched_day) for _ in range(RUNS)], "process")
    print_table(
        [
            ("daily run of the demo shop, one day, warm process (median of 3)", f"{warm['run']:.2f} s", ""),
            ("  of which inside the check functions", f"{warm['checks']:.2f} s", ""),
            ("  and Dagster recording the checks' evaluations", f"{warm['recording']:.2f} s", ""),
            ("the check functions add to the rest of the run", share(warm, "run", "checks"), "less than 20%"),
            ("the checks add, with Dagster's recording", share(warm, "run", "checks", "recording"), "less than 20%"),
            ("the same, launched in a process of its own (median of 3)", f"{own['process']:.2f} s", ""),
            ("  of which inside the check functions, GX import included", f"{own['checks']:.2f} s", ""),
            ("  and Dagster recording the checks' evaluations", f"{own['recording']:.2f} s", ""),
            (
                "the checks add, with GX's import and the recording",
                share(own, "process", "checks", "recording"),
                "less than 20%",
            ),
        ]
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--run"]:
        print(json.dumps(instrumented_daily_run(sys.argv[2])))
    else:
        main()
