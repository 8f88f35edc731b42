"""What the benchmarks share: each phase in a fresh process (so that its peak memory is its
own, read from the kernel), and the table they print."""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def clock() -> tuple[float, float]:
    """Now, as wall time and CPU time of this process (user + system, all its threads)."""
    return time.perf_counter(), time.process_time()


def since(started: tuple[float, float]) -> dict:
    """`seconds` and `cpu_seconds` since `clock()`: on a shared machine the CPU time moves least."""
    return {"seconds": time.perf_counter() - started[0], "cpu_seconds": time.process_time() - started[1]}


def print_table(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    print(f"{'measure':<{width}}  {'value':>{value_width}}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>{value_width}}  {target}")


def main(
    script: str,
    phases: dict[str, Callable] | Callable[..., dict[str, Callable]],
    report: Callable,
    default_orders: int,
    options: dict[str, int] | None = None,
) -> None:
    """`python SCRIPT [--orders N]` runs every phase in its own process and prints report(results);
    `--phase NAME --dir D` runs one phase (phases take the folder and the order count). With `options` (further
    whole-number options and their defaults, passed on to every phase's process), `phases` is a function of
    them that returns the phases."""
    options = options or {}
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=default_orders)
    for name, default in options.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--phase")
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    chosen = {name: getattr(args, name) for name in options}
    if options:
        phases = phases(**chosen)
    if args.phase is not None and args.phase not in phases:
        parser.error(f"--phase: expected one of {', '.join(phases)}")
    if args.phase:
        sys.path.insert(0, str(ROOT))
        result = phases[args.phase](args.dir, args.orders)
        result["peak_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(json.dumps(result))
        return
    passed_on = [part for name, value in chosen.items() for part in (f"--{name}", str(value))]
    with tempfile.TemporaryDirectory(prefix="regulars-bench-") as tmp:
        results = {}
        for name in phases:
            command = [sys.executable, script, "--phase", name, "--dir", tmp, "--orders", str(args.orders), *passed_on]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"{name} failed:\n{done.stderr}")
            results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    print_table(report(results))
