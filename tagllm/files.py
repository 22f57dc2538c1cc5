"""Files a user names, read defensively, and files written so that no reader sees half of one.

Reading: only regular files (a FIFO or a device named by mistake or by a hostile list would
hang a run or never end), at most a size, UTF-8 where text, JSON without the non-standard
NaN/Infinity and with finite numbers only. Every failure is an `InputFileError` whose message
names the file and the problem, for a one-line CLI error.

Writing: `atomic_write` writes a temporary file beside the target, fsyncs it and renames it
over the target, so an interrupted run (Ctrl-C, a crash, a full disk) leaves the old file or
none, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

# Label and result files: COCO's largest instances file is about 450 MB.
MAX_INPUT_BYTES = 2 * 1024**3


class InputFileError(ValueError):
    """A file that cannot be used; the message names it and says why."""


def read_bytes(path: str | Path, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """The whole of a regular file of at most `max_bytes`, or InputFileError."""
    try:
        # Non-blocking: opening a FIFO for reading must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError(f"{path}: not a regular file (FIFOs, devices and sockets are never read)")
        raise InputFileError(f"{path}: {info.st_size} bytes; the limit is {max_bytes} bytes")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise InputFileError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > max_bytes:  # grew while being read
        raise InputFileError(f"{path}: more than {max_bytes} bytes")
    return data


def read_text(path: str | Path, max_bytes: int = MAX_INPUT_BYTES) -> str:
    data = read_bytes(path, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputFileError(f"{path}: not UTF-8 text (line {line}, byte {exc.start})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:32]} is out of range")
    return value


def parse_json(text: str, where: str) -> Any:
    """JSON as `json.loads` reads it, less NaN, Infinity and out-of-range numbers; InputFileError
    naming `where` (a file, or a file and line) otherwise."""
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise InputFileError(
            f"{where}: not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise InputFileError(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:  # a constant, an infinite number, an integer of too many digits
        raise InputFileError(f"{where}: not valid JSON: {str(exc)[:200]}") from None


def read_json(path: str | Path, max_bytes: int = MAX_INPUT_BYTES) -> Any:
    return parse_json(read_text(path, max_bytes), str(path))


def check_regular(path: str | Path) -> None:
    """InputFileError unless `path` is a regular file (for readers that stream it)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise InputFileError(f"{path}: cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise InputFileError(f"{path}: not a regular file (FIFOs, devices and sockets are never read)")


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", newline: str | None = None) -> Iterator[IO[Any]]:
    """A handle on a temporary file that replaces `path` when the block ends without error; on any
    error or interruption the temporary file is removed and `path` is untouched."""
    target = Path(path)
    binary = "b" in mode
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, mode, encoding=None if binary else "utf-8", newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o666 & ~_UMASK)  # as open() would have made it, not mkstemp's 0600
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | Path, text: str) -> None:
    with atomic_write(path) as handle:
        handle.write(text)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# Read once, at import: os.umask can only be read by setting it, which other threads would see.
_UMASK = _umask()
