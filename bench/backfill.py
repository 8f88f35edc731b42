"""Backfill benchmark: what Dagster itself costs when the demo shop's two years are loaded.

    python bench/backfill.py

Runs `regulars run` over the demo shop's whole history on an empty Dagster instance (the shipped
dagster.yaml) and a fresh warehouse, then again on the same instance and warehouse, each in a
process of its own. For every Dagster run it reads the run's event log and splits its wall time
(from the run's creation to its end, as the instance recorded them) into:

- data work: our code, from each step's start to its first output (the asset functions read,
  compute and write, then hand their results to Dagster);
- Dagster's own time: all the rest (planning and creating the run, starting steps, recording
  materializations, check evaluations and logs, finishing).
"""

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT  # noqa: E402

FIRST_OUTPUT = {"STEP_OUTPUT", "ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION", "STEP_SUCCESS", "STEP_FAILURE"}


def run_split(instance, run_id: str) -> dict:
    """A run's wall time, and how much of it went to data work (see the module's docstring)."""
    record = instance.get_run_record_by_id(run_id)
    stats = instance.get_run_stats(run_id)
    started, data = {}, 0.0
    for event in instance.all_logs(run_id):
        kind, step = event.dagster_event_type and event.dagster_event_type.value, event.step_key
        if kind == "STEP_START":
            started[step] = event.timestamp
        elif kind in FIRST_OUTPUT and step in started:
            data += event.timestamp - started.pop(step)
    wall = stats.end_time - record.create_timestamp.timestamp()
    return {"job": record.dagster_run.job_name, "wall": wall, "data": data}


def load(folder: Path, _orders: int) -> dict:
    """`regulars run` over the demo shop's history; the split of every run it made."""
    import os
    import shutil

    home = folder / "dagster"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ.update(
        DAGSTER_HOME=str(home), REGULARS_WAREHOUSE=str(folder / "warehouse.duckdb"), REGULARS_OUTPUT=str(folder / "out")
    )
    import dagster as dg

    from pipelines.cli import default_range, run_range
    from pipelines.settings import load_settings

    settings = load_settings(None)
    with dg.DagsterInstance.get() as instance:
        before = {record.dagster_run.run_id for record in instance.get_run_records()}
        assert run_range(settings, *default_range(settings), echo=lambda *args, **kwargs: None)
        runs = [r for r in reversed(instance.get_run_records()) if r.dagster_run.run_id not in before]
        return {"runs": [run_split(instance, record.dagster_run.run_id) for record in runs]}


def report(results: dict) -> list[tuple[str, str, str]]:
    rows = []
    totals = {}
    for phase, title in (("first", "empty instance"), ("again", "re-run on the same instance")):
        by_job = defaultdict(lambda: {"wall": 0.0, "data": 0.0, "runs": 0})
        for run in results[phase]["runs"]:
            job = by_job[run["job"]]
            job["wall"] += run["wall"]
            job["data"] += run["data"]
            job["runs"] += 1
        wall = sum(job["wall"] for job in by_job.values())
        data = sum(job["data"] for job in by_job.values())
        totals[phase] = wall
        for name, job in by_job.items():
            own = job["wall"] - job["data"]
            runs = f" ({job['runs']} runs)" if job["runs"] > 1 else ""
            rows.append(
                (f"{title}: {name}{runs}", f"{job['wall']:.1f} s = {job['data']:.1f} s data + {own:.1f} s Dagster "
                 f"({own / job['wall']:.1%})", "")
            )  # fmt: skip
        rows.append(
            (f"{title}: all {sum(job['runs'] for job in by_job.values())} runs",
             f"{wall:.1f} s = {data:.1f} s data + {wall - data:.1f} s Dagster ({(wall - data) / wall:.1%})",
             "Dagster's own time at most 20%")
        )  # fmt: skip
        rows.append((f"{title}: peak memory", f"{results[phase]['peak_gib']:.1f} GiB", ""))
    rows.append(("re-run / first run", f"{totals['again'] / totals['first']:.2f}x", "at most 1.10x"))
    return rows


if __name__ == "__main__":
    from harness import main

    main(__file__, {"first": load, "again": load}, report, 0)
