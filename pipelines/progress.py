"""Progress of long steps: a bar on a terminal, plain lines elsewhere, and the Dagster run log.

A step says what it works through (`Progress("ingest", total=rows, unit="rows", log=context.log)`)
and advances it as it goes. On a terminal that is a tqdm bar; when the output is a file or a pipe
(a scheduler's log, CI) it is a plain line every few seconds with done of total, rate and time left.
The run log gets the same line, less often, so `dagster dev` shows it too.

`heartbeat` covers steps that have no counts of their own: a line every few seconds while they work
(or wait, saying for what), so that `regulars` never goes quiet for long.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

PLAIN_EVERY_SECONDS = 5.0  # plain lines on a pipe or in a file; REGULARS_PROGRESS_SECONDS overrides it
LOG_EVERY_SECONDS = 15.0  # lines in the Dagster run log (each is an event the instance stores)
_last_output = time.monotonic()  # when anything last showed progress, for the heartbeat


def _on_terminal() -> bool:
    return sys.stderr.isatty()


def _say(line: str) -> None:
    global _last_output
    if _on_terminal():
        tqdm.write(line, file=sys.stderr)  # above any bar, not through it
    else:
        print(line, flush=True)
    _last_output = time.monotonic()


def _seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """Work done of a total, shown while it happens."""

    def __init__(self, what: str, total: int | None, unit: str = "rows", log=None):
        self.what, self.total, self.unit, self.log = what, total, unit, log
        self.done = 0
        self.plain_every = float(os.environ.get("REGULARS_PROGRESS_SECONDS") or PLAIN_EVERY_SECONDS)
        self.started = self._last_plain = self._last_log = time.monotonic()
        self._bar = (
            tqdm(total=total, desc=f"      {what}", unit=f" {unit}", unit_scale=True, file=sys.stderr, leave=False)
            if _on_terminal()
            else None
        )

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"      {self.what}: {self.done:,}"
        if self.total:
            text += f" of {self.total:,} {self.unit} ({self.done / self.total:.0%})"
        else:
            text += f" {self.unit}"
        text += f", {rate:,.0f} {self.unit}/s"
        if self.total and rate > 0:
            text += f", {_seconds((self.total - self.done) / rate)} left"
        return text

    def advance(self, count: int = 1) -> None:
        global _last_output
        self.done += count
        now = time.monotonic()
        if self._bar is not None:
            self._bar.update(count)
            _last_output = now
        elif now - self._last_plain >= self.plain_every:
            self._last_plain = now
            _say(self.line())
        if self.log is not None and now - self._last_log >= LOG_EVERY_SECONDS:
            self._last_log = now
            self.log.info(self.line().strip())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self.log is not None:
            self.log.info(self.line().strip())

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _waiting(waiting: Callable[[], str | None] | None) -> str | None:
    try:
        return waiting() if waiting else None
    except Exception:  # what we wait for is worth saying, but not worth stopping the heartbeat for
        return None


@contextmanager
def heartbeat(
    what: str, every_seconds: float = PLAIN_EVERY_SECONDS, waiting: Callable[[], str | None] | None = None
) -> Iterator[None]:
    """While the block runs, say it is still working whenever nothing else has shown progress for a while,
    or what it waits for when `waiting` says."""
    global _last_output
    started = _last_output = time.monotonic()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(1.0):
            now = time.monotonic()
            if now - _last_output >= every_seconds:
                _say(f"      ... {_waiting(waiting) or what + ': still working'} ({_seconds(now - started)})")

    thread = threading.Thread(target=beat, daemon=True, name="regulars-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
