"""The deployment's services on loopback, for tests: Postgres and Redis from Debian's packages, Celery
workers and the Dagster daemon, each a context manager that stops what it started.

Every process starts in a session of its own and is stopped by its process group (its PID), so that what it
spawned (Celery's pool processes, the daemon's code server) stops with it, whether the test passed or not.
Nothing is installed here: a missing binary fails with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

INSTALL = "apt-get install -y postgresql redis-server (the README's test command does it)"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _binary(name: str) -> str:
    """A server's program: on the PATH, else (Postgres on Debian) in the newest /usr/lib/postgresql/*/bin."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda folder: int(folder.parent.name))
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(map(str, reversed(debian))))
    if not found:
        raise RuntimeError(f"{name} is missing: {INSTALL}")
    return found


def _wait_until(ready, what: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}: {_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s: {_tail(log)}")
        time.sleep(0.2)


def _tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def stop(process: subprocess.Popen, first: int = signal.SIGTERM, grace: float = 15) -> None:
    """Stop a process started in a session of its own, and everything in its process group: `first`
    (a clean shutdown), then SIGKILL for whatever is left (the leader, or a child it left behind)."""
    _signal_group(process.pid, first)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def started(command: list[str], log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            first_signal: int = signal.SIGTERM):  # fmt: skip
    """A process in its own session (process group = its PID), output to `log`, stopped on exit."""
    with open(log, "ab") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    try:
        yield process
    finally:
        stop(process, first_signal)


def _as_postgres_user(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as Debian's `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres(database: str = "dagster") -> Iterator[str]:
    """A throwaway Postgres on 127.0.0.1 at a free port, its data in a temporary folder; yields its URL
    (user `postgres`, no password: `trust`, on loopback only)."""
    initdb, server, isready, createdb = map(_binary, ("initdb", "postgres", "pg_isready", "createdb"))
    port, address = free_port(), ["-h", "127.0.0.1", "-p"]
    # not under pytest's tmp_path: the `postgres` user must be able to reach it
    folder = Path(tempfile.mkdtemp(prefix="regulars-postgres-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        data, log = str(folder / "data"), folder / "postgres.log"
        new_cluster = [initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        subprocess.run(_as_postgres_user(new_cluster), check=True, capture_output=True)
        # fsync off: a test's database need not survive a power cut; SIGINT is postgres' fast shutdown
        command = [server, "-D", data, *address, str(port), "-k", str(folder), "-c", "fsync=off"]
        with started(_as_postgres_user(command), log, first_signal=signal.SIGINT) as process:
            ready = [isready, "-q", *address, str(port)]
            _wait_until(lambda: subprocess.run(ready).returncode == 0, "postgres", process, log)
            subprocess.run([createdb, *address, str(port), "-U", "postgres", database], check=True)
            yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{database}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def redis(folder: Path) -> Iterator[str]:
    """A throwaway Redis on 127.0.0.1 at a free port, nothing saved to disk; yields its URL."""
    port = free_port()
    command = [_binary("redis-server"), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder),
               "--save", "", "--appendonly", "no", "--protected-mode", "yes"]  # fmt: skip
    log = folder / "redis.log"
    with started(command, log) as process:
        _wait_until(lambda: _accepts(port), "redis-server", process, log)
        yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def celery_workers(count: int, config_yaml: Path, env: Mapping[str, str], folder: Path, cwd: Path):
    """`count` Celery workers for dagster-celery's run launcher, one run at a time each; yields their
    processes once each has said it is ready."""
    command = [str(VENV_BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
               "-y", str(config_yaml), "-q", "dagster", "--loglevel", "INFO"]  # fmt: skip
    # `dagster-celery worker start` runs `celery` from the PATH
    env = {**env, "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"}
    with ExitStack() as stack:
        workers = []
        for number in range(1, count + 1):
            log = folder / f"worker{number}.log"
            extra = ["-n", f"worker{number}", "--", "--concurrency=1", "--without-gossip", "--without-mingle"]
            workers.append((stack.enter_context(started(command + extra, log, env, cwd)), log))
        for process, log in workers:
            _wait_until(lambda log=log: "ready." in log.read_text(errors="replace"), log.stem, process, log, 120)
        yield [process for process, _ in workers]


@contextmanager
def code_server(module: str, location: str, env: Mapping[str, str], folder: Path, cwd: Path) -> Iterator[Path]:
    """`dagster code-server start` serving `module` on a free port; yields a workspace file that points at
    it, so that the daemon and each `dagster` command ask it instead of loading the code themselves."""
    port, log = free_port(), folder / "code-server.log"
    command = [str(VENV_BIN / "dagster"), "code-server", "start", "-m", module, "--location-name", location,
               "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    workspace = folder / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - grpc_server: {{host: 127.0.0.1, port: {port}, location_name: {location}}}\n")
    with started(command, log, env, cwd) as process:
        _wait_until(lambda: "Started Dagster code server" in log.read_text(errors="replace"), "the code server",
                    process, log, 120)  # fmt: skip
        yield workspace


@contextmanager
def dagster_daemon(workspace: Path, env: Mapping[str, str], folder: Path, cwd: Path):
    """`dagster-daemon run` on a workspace; yields once its run queue is being served."""
    log = folder / "daemon.log"
    command = [str(VENV_BIN / "dagster-daemon"), "run", "-w", str(workspace)]
    with started(command, log, env, cwd) as process:
        _wait_until(lambda: "QueuedRunCoordinatorDaemon" in log.read_text(errors="replace"), "dagster-daemon",
                    process, log, 120)  # fmt: skip
        yield process


@contextmanager
def webserver(workspace: Path, port: int, env: Mapping[str, str], folder: Path, cwd: Path):
    """`dagster-webserver` (the UI and its GraphQL API) on a workspace at 127.0.0.1:`port`; yields once it answers."""
    log = folder / "webserver.log"
    command = [str(VENV_BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]
    with started(command, log, env, cwd) as process:
        _wait_until(lambda: _accepts(port), "dagster-webserver", process, log, 120)
        yield process


def descendants(pid: int) -> set[int]:
    """The processes below `pid` (Linux /proc), e.g. a Celery worker's pool processes."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        children.setdefault(int(fields["PPid"]), []).append(int(fields["Pid"]))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def wait_for(condition, timeout: float, what: str, every: float = 0.5):
    """The first true value of `condition()`, asked every `every` seconds for at most `timeout`."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(every)
    return value
