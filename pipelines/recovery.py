"""Recovery after a crash: runs whose process died are marked failed and their pool slots given back.

`regulars` executes its runs in its own process. Killed (kill -9, out of memory, a restart of the
machine), that process leaves its run STARTED and its step's slot in the `warehouse` pool claimed,
and every later run would wait for the slot forever. So each run `regulars` starts carries tags
naming its process (host, boot, pid), and before it runs anything `regulars` fails the runs of this
machine whose process is gone and frees the slots of runs that are over; the sensor
`clean_up_after_crashes` does the same every minute under the daemon. Runs launched by
`dagster dev` or the daemon are watched by Dagster itself (run monitoring in dagster.yaml).
"""

import os
import socket
from pathlib import Path

import dagster as dg

HOST_TAG, BOOT_TAG, PID_TAG = "regulars/host", "regulars/boot", "regulars/pid"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")  # Linux: new at every start of the machine
UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def _boot_id() -> str:
    return BOOT_ID.read_text().strip() if BOOT_ID.exists() else ""


def process_tags() -> dict[str, str]:
    """Tags naming this process, for the runs it executes."""
    return {HOST_TAG: socket.gethostname(), BOOT_TAG: _boot_id(), PID_TAG: str(os.getpid())}


def record_process(context: dg.AssetExecutionContext) -> None:
    """Tag the run with the process that executes it, once, whatever started it (`regulars`, `dagster asset
    materialize`, the UI, a schedule or sensor): a run whose process dies is then found and failed, and its
    slots freed, by `clean_up_after_crashes` (before each `regulars` run, and every minute by the daemon)."""
    if PID_TAG not in context.run.tags:
        context.instance.add_run_tags(context.run_id, process_tags())


def _process_is_gone(run: dg.DagsterRun) -> bool:
    """Whether the process that executes `run`, on this machine, has died."""
    if run.tags.get(BOOT_TAG) != _boot_id():  # the machine restarted since: its pid may be another's now
        return True
    return not _process_is_alive(int(run.tags[PID_TAG]))


def _process_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        return True
    return True


def _slots_by_run(instance: dg.DagsterInstance) -> dict[str, list[str]]:
    """Every run that holds or waits for a pool slot -> the pools where it holds one."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    slots: dict[str, list[str]] = {}
    for pool, info in storage.get_concurrency_infos(list(storage.get_concurrency_keys())).items():
        for run_id in info.pending_run_ids | info.assigned_run_ids:
            slots.setdefault(run_id, [])
        for run_id in info.active_run_ids:
            slots.setdefault(run_id, []).append(pool)
    return slots


def _their(pools: list[str]) -> str:
    return f"{' and '.join(pools)} slot{'s' if len(pools) > 1 else ''}"


def clean_up_after_crashes(instance: dg.DagsterInstance) -> list[str]:
    """Fail this machine's runs whose process is gone and free the slots of runs that are over; say what was done."""
    slots = _slots_by_run(instance)
    lines = []
    host = socket.gethostname()
    for run in instance.get_runs(dg.RunsFilter(statuses=UNFINISHED, tags={HOST_TAG: host})):
        if not _process_is_gone(run):
            continue
        pid = run.tags[PID_TAG]
        instance.report_run_failed(run, f"regulars: the process executing this run (pid {pid} on {host}) is gone")
        line = f"cleaned up run {run.run_id[:8]} ({run.job_name}): its process {pid} is gone; marked failed"
        if run.run_id in slots:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            pools = slots.pop(run.run_id)
            line += f", freed its {_their(pools)}" if pools else ""
        lines.append(line)
    for run_id, pools in slots.items():
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            continue
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        if pools:
            job = f" ({run.job_name})" if run else ""
            lines.append(f"cleaned up run {run_id[:8]}{job}: it is over but still held the {_their(pools)}, now freed")
    return lines


def waiting_for(instance: dg.DagsterInstance, run_id: str, pool: str) -> str | None:
    """What run `run_id` waits for in `pool`, in words; None when it is not waiting there."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    holders = sorted(info.active_run_ids - {run_id})
    if run_id not in info.pending_run_ids or not holders:
        return None
    names = ", ".join(_describe(instance.get_run_by_id(holder), holder) for holder in holders)
    return (
        f"waiting for the {pool}: {names} {'holds' if len(holders) == 1 else 'hold'} it"
        " (a run whose process died is failed and its slot freed by the next `regulars` run, or by the daemon within"
        " a minute; end a stuck one in the UI)"
    )


def _describe(run: dg.DagsterRun | None, run_id: str) -> str:
    if run is None:
        return f"run {run_id[:8]}"
    pid = f", pid {run.tags[PID_TAG]}" if PID_TAG in run.tags else ""
    return f"run {run_id[:8]} ({run.job_name}{pid})"
