"""Many shops in one code location: the time and memory of loading the definitions of N copies of the demo shop
(each with its own id), as the code server, the daemon and every run process load them.

    python bench/shops.py [--shops 1 10 30 100]

For each count, in a fresh process: building the definitions (every shop's assets, jobs, schedule, sensor), the
asset graph, and the jobs resolved (what the code server does before it answers), with the process's peak.
"""

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load() -> dict:
    """The definitions of REGULARS_SHOPS' shops, timed part by part."""
    import pipelines.definitions as definitions

    started = time.perf_counter()
    defs = definitions.defs()
    built = time.perf_counter()
    assets = len(list(defs.resolve_asset_graph().get_all_asset_keys()))
    graph = time.perf_counter()
    jobs = len(list(defs.resolve_all_job_defs()))
    resolved = time.perf_counter()
    return {
        "build": built - started, "graph": graph - built, "jobs_seconds": resolved - graph, "assets": assets,
        "jobs": jobs, "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }  # fmt: skip


def copies(folder: Path, shops: int) -> None:
    """`shops` settings files: the demo shop's, each with an id of its own."""
    demo = (ROOT / "shop.yaml").read_text()
    for number in range(shops):
        (folder / f"shop{number}.yaml").write_text(re.sub(r"(?m)^id: demo\b", f"id: shop{number}", demo))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shops", type=int, nargs="+", default=[1, 10, 30, 100])
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(load()))
        return
    print(f"{'shops':>6} {'assets':>7} {'jobs':>6} {'build s':>8} {'graph s':>8} {'jobs s':>8} {'peak GiB':>9}")
    for shops in args.shops:
        with tempfile.TemporaryDirectory(prefix="regulars-shops-") as tmp:
            copies(Path(tmp), shops)
            env = os.environ | {"REGULARS_SHOPS": tmp}
            done = subprocess.run([sys.executable, __file__, "--load"], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{shops} shops failed:\n{done.stderr}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{shops:>6} {r['assets']:>7} {r['jobs']:>6} {r['build']:>8.2f} {r['graph']:>8.2f} "
            f"{r['jobs_seconds']:>8.2f} {r['peak_gib']:>9.2f}"
        )


if __name__ == "__main__":
    main()
