"""`python tests/pool_racer.py NAME RUNS FOLDER`: execute RUNS tiny runs whose one step takes the
`warehouse` pool slot, each started at the same moment as the other racer's (a file barrier in
FOLDER), on the instance in DAGSTER_HOME. Prints one line per finished run."""

import sys
import time
from pathlib import Path

import dagster as dg

from pipelines.cli import dagster_instance
from pipelines.warehouse import WAREHOUSE_POOL


@dg.op(pool=WAREHOUSE_POOL)
def take_the_slot() -> None:
    pass


@dg.job(executor_def=dg.in_process_executor)
def pooled():
    take_the_slot()


def barrier(folder: Path, name: str, round_: int, racers: int = 2) -> None:
    (folder / f"{round_}-{name}").touch()
    while len(list(folder.glob(f"{round_}-*"))) < racers:
        time.sleep(0.001)


if __name__ == "__main__":
    name, runs, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    instance = dagster_instance()
    for round_ in range(runs):
        barrier(folder, name, round_)
        assert pooled.execute_in_process(instance=instance).success
        print(f"{name} {round_} done", flush=True)
