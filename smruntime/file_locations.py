"""Reading async inference locations safely: ``file://`` only inside given folders, regular
files only, everything bounded in size.

Async inference names its input and results by location; a ``file://`` one is a path on the
machine that reads it. Whoever names it (a caller of the local endpoint, or an endpoint
answering the client) must not get to read any file that machine can read, so a path is
read only if, with symlinks and ``..`` resolved, it lies inside one of the folders the
reader trusts; only a regular file is read (a FIFO or a device would block or never end),
and at most ``max_bytes`` of it (of an S3 object too, :func:`read_stream_bounded`).
:func:`in_daemon_thread` lets a caller give up on a read
that hangs (a stale network mount) without that thread holding the process at exit.
"""

from __future__ import annotations

import concurrent.futures
import os
import stat
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

__all__ = [
    "MAX_ASYNC_PAYLOAD_BYTES",
    "UnsafeFileError",
    "file_path",
    "in_daemon_thread",
    "read_confined",
    "read_stream_bounded",
    "resolve_within",
]

MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024 * 1024
"""Async inference's payload limit on the service (1 GB): the most read from one location."""

T = TypeVar("T")


class UnsafeFileError(Exception):
    """A ``file://`` location that may not be read: outside the trusted folders, not a regular file, too large."""


def file_path(location: str) -> str:
    """The path of a ``file:///path`` location (percent-decoded)."""
    return unquote(urlsplit(location).path)


def resolve_within(path: str | os.PathLike[str], roots: Iterable[str | os.PathLike[str]]) -> Path | None:
    """``path`` resolved (symlinks, ``..``) if that lies inside one of ``roots`` (resolved too), else None.

    A path not inside a root even as written (``..`` folded) is refused without touching the
    file system, so a caller's path elsewhere (a hung mount, say) is never even looked at.
    """
    written = os.path.normpath(path)
    roots = [root for root in roots
             if _inside(written, os.path.normpath(root)) or _inside(written, os.path.realpath(root))]
    if not roots:
        return None
    resolved = os.path.realpath(written)
    if any(_inside(resolved, os.path.realpath(root)) for root in roots):
        return Path(resolved)
    return None


def _inside(path: str, folder: str) -> bool:
    return Path(path).is_relative_to(folder)


def read_confined(path: str | os.PathLike[str], roots: Iterable[str | os.PathLike[str]], *, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``, which must lie inside one of ``roots``.

    Raises :class:`UnsafeFileError` for a path outside the roots, a file that is not regular
    or is larger than ``max_bytes``; FileNotFoundError if it does not exist; OSError otherwise.
    """
    roots = tuple(roots)
    resolved = resolve_within(path, roots)
    if resolved is None:
        raise UnsafeFileError(f"{os.fspath(path)} is outside the folders allowed for file:// locations")
    # O_NOFOLLOW: the last component cannot be swapped for a symlink after the check above;
    # O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(resolved, flags)
    with os.fdopen(descriptor, "rb", buffering=0) as handle:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFileError(f"{os.fspath(path)} is not a regular file")
        opened = _opened_path(descriptor)
        if opened is not None and resolve_within(opened, roots) is None:  # a folder on the way was swapped
            raise UnsafeFileError(f"{os.fspath(path)} is outside the folders allowed for file:// locations")
        if info.st_size > max_bytes:
            raise UnsafeFileError(f"{os.fspath(path)} holds {info.st_size} bytes, more than the {max_bytes} allowed")
        data = handle.read(max_bytes + 1)  # a file still growing is caught here
        if len(data) > max_bytes:
            raise UnsafeFileError(f"{os.fspath(path)} holds more than the {max_bytes} bytes allowed")
        return data


def read_stream_bounded(stream: Any, declared: object, max_bytes: int) -> bytes:
    """All of ``stream`` (anything with ``read(n)``, like botocore's body), at most ``max_bytes``.

    ``declared`` is the length the sender announced, if any: over the limit, nothing is read.
    """
    if isinstance(declared, int) and declared > max_bytes:
        raise UnsafeFileError(f"the object holds {declared} bytes, more than the {max_bytes} allowed")
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(min(_CHUNK, max_bytes + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:  # a sender giving more than it declared
            raise UnsafeFileError(f"the object holds more than the {max_bytes} bytes allowed")
    return b"".join(chunks)


_CHUNK = 1024 * 1024


def _opened_path(descriptor: int) -> str | None:
    # Where the kernel says the open file is (Linux); None where that cannot be asked.
    try:
        return os.readlink(f"/proc/self/fd/{descriptor}")
    except OSError:
        return None


def in_daemon_thread(function: Callable[[], T], *, name: str) -> concurrent.futures.Future[T]:
    """Run ``function`` in a new daemon thread; its future has the outcome.

    Unlike an executor's worker, a daemon thread stuck in a read does not keep the process
    from exiting, so a caller may stop waiting for it (and the process may stop) at any time.
    """
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function())
        except BaseException as error:  # handed to whoever waits on the future
            future.set_exception(error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future
