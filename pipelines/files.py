"""Files people and tools read while the pipeline may be writing them (reports, outbox lists, refused rows):
each is written whole under a temporary name beside it, then renamed over the old one."""

import os
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """`write(temporary)` then rename it to `path`: a reader sees the old file or the new one, never half of one.
    A failed write (a full disk) leaves the old file as it was and no temporary behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        with temporary.open("rb+") as written:  # on disk before the rename makes it the file
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: Path, text: str) -> Path:
    return write_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))
