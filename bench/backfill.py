"""Backfill benchmark: what Dagster itself costs when the demo shop's two years are loaded, then one day.

    git worktree add /tmp/landed <commit> && python bench/backfill.py --baseline /tmp/landed

Three deployments, each in a fresh process on an empty warehouse and Dagster home:

- the landed code (`--baseline`, a checkout of it) on its shipped dagster.yaml (SQLite, its own event log);
- this code on the shipped dagster.yaml (the embedded default: SQLite instance, in-process runs, the event log
  of pipelines/event_log.py);
- this code on Dagster's stock SQLite storage (the shipped dagster.yaml less its storage lines): what
  pipelines/event_log.py saves;
- this code on a Postgres instance (dagster-postgres, stock storage), on a throwaway Postgres on loopback.

Each runs `regulars run` over the demo shop's history less its last day (the backfill), then over the last day
alone (a daily run: for this code, the daily job and any event step due, as the daemon's morning would). For
every Dagster run it reads the run's event log and splits its wall time (from the run's creation to its end,
as the instance recorded them) into:

- data work: our code, from each step's start to its first output (the asset functions read, compute and
  write, then hand their results to Dagster);
- Dagster's own time: all the rest (planning and creating the run, starting steps, recording
  materializations, check evaluations and logs, finishing).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, print_table  # noqa: E402

FIRST_OUTPUT = {"STEP_OUTPUT", "ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION", "STEP_SUCCESS", "STEP_FAILURE"}
POSTGRES_INSTANCE = """
storage:
  postgres:
    postgres_url: {env: REGULARS_BENCH_POSTGRES_URL}
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


def stock_sqlite(shipped: str) -> str:
    """The shipped instance settings without the storage classes of pipelines/event_log.py."""
    kept, skipping = [], False
    for line in shipped.splitlines():
        if line.startswith(("event_log_storage:", "run_storage:")):
            skipping = True
        elif skipping and not line.startswith((" ", "#")):
            skipping = False
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


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


def phase() -> None:
    """In a fresh process whose PYTHONPATH is the code to measure: the backfill, then the daily run."""
    import dagster as dg

    from pipelines.cli import default_range, run_range
    from pipelines.settings import load_settings

    settings = load_settings(None)
    first, last = default_range(settings)
    results = {}
    with dg.DagsterInstance.get() as instance:
        for name, days in (("backfill", (first, last - timedelta(days=1))), ("daily", (last, last))):
            before = {record.dagster_run.run_id for record in instance.get_run_records()}
            assert run_range(settings, *days, echo=lambda *args, **kwargs: None)
            runs = [r for r in reversed(instance.get_run_records()) if r.dagster_run.run_id not in before]
            results[name] = [run_split(instance, record.dagster_run.run_id) for record in runs]
    print(json.dumps(results))


def measure(tree: Path, instance_yaml: str, folder: Path, extra_env: dict | None = None) -> dict:
    home = folder / "dagster"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(instance_yaml, encoding="utf-8")
    env = os.environ | (extra_env or {}) | {
        "DAGSTER_HOME": str(home), "REGULARS_WAREHOUSE": str(folder / "warehouse.duckdb"),
        "REGULARS_OUTPUT": str(folder / "out"), "PYTHONPATH": str(tree),
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, __file__, "--phase"], cwd=tree, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        sys.exit(f"the run from {tree} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def split_row(title: str, runs: list[dict], target: str = "") -> tuple[str, str, str]:
    wall, data = sum(r["wall"] for r in runs), sum(r["data"] for r in runs)
    own = wall - data
    return (f"{title} ({len(runs)} runs)", f"{wall:.1f} s = {data:.1f} s data + {own:.1f} s Dagster ({own / wall:.1%})",
            target)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, help="a checkout of the landed code, to measure beside this one")
    parser.add_argument("--phase", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phase()
        return
    sys.path.insert(0, str(ROOT))
    from tests.services import postgres

    shipped = (ROOT / "dagster.yaml").read_text(encoding="utf-8")
    results = {}
    with tempfile.TemporaryDirectory(prefix="regulars-backfill-") as tmp:
        if args.baseline:
            base = args.baseline.resolve()
            results["landed code, embedded"] = measure(base, (base / "dagster.yaml").read_text(), Path(tmp) / "landed")
        results["this code, embedded"] = measure(ROOT, shipped, Path(tmp) / "embedded")
        results["this code, stock SQLite"] = measure(ROOT, stock_sqlite(shipped), Path(tmp) / "stock")
        with postgres() as url:
            results["this code, Postgres"] = measure(
                ROOT, POSTGRES_INSTANCE, Path(tmp) / "postgres", {"REGULARS_BENCH_POSTGRES_URL": url}
            )
    rows = []
    for name, result in results.items():
        rows.append(split_row(f"{name}: two-year backfill", result["backfill"], "Dagster's own time at most 20%"))
        rows.append(split_row(f"{name}: daily run", result["daily"]))
    print_table(rows)


if __name__ == "__main__":
    main()
