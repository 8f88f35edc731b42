"""Demo benchmark: `regulars demo`, this code beside a baseline checkout (say, the last landed commit).

    git worktree add /tmp/landed <commit> && python bench/demo.py --baseline /tmp/landed [--rounds 2]

Each round runs the demo once with each code, alternating, each in a fresh process on an empty
warehouse, output folder and Dagster home (the shipped dagster.yaml), and times it: wall time, and the
CPU time of the process and its children, which moves least on a shared machine. The table gives the
median of each and the ratio this code / baseline.
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, print_table  # noqa: E402

DEMO_SECONDS_BEFORE = 19  # the figure for the landed code on a quiet 2-core machine


def run_demo(tree: Path, folder: Path) -> tuple[float, float]:
    """Wall and CPU seconds of `regulars demo` run from `tree`'s code in a fresh folder."""
    home = folder / "dagster"
    home.mkdir(parents=True)
    shutil.copy(tree / "dagster.yaml", home / "dagster.yaml")
    env = os.environ | {
        "DAGSTER_HOME": str(home), "REGULARS_WAREHOUSE": str(folder / "warehouse.duckdb"),
        "REGULARS_OUTPUT": str(folder / "out"), "PYTHONPATH": str(tree),
    }  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    command = [sys.executable, "-c", "from pipelines.cli import main; main()", "demo"]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"the demo from {tree} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the code to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    times = {"this code": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="regulars-demo-") as tmp:
        for round_number in range(args.rounds):
            for name, tree in (("baseline", args.baseline.resolve()), ("this code", ROOT)):
                times[name].append(run_demo(tree, Path(tmp) / f"{name.replace(' ', '_')}-{round_number}"))
    median = {
        name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for name, t in times.items()
    }
    ours, base = median["this code"], median["baseline"]
    print_table([
        ("regulars demo, baseline", f"{base[0]:.1f} s (CPU {base[1]:.1f} s)", ""),
        ("regulars demo, this code", f"{ours[0]:.1f} s (CPU {ours[1]:.1f} s)", ""),
        ("  this code / baseline", f"{ours[0] / base[0]:.2f}x (CPU {ours[1] / base[1]:.2f}x)", "at most 1.2x"),
        ("  this code on a quiet machine, from the ratio", f"{DEMO_SECONDS_BEFORE * ours[0] / base[0]:.1f} s",
         f"at most {1.2 * DEMO_SECONDS_BEFORE:.0f} s"),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
