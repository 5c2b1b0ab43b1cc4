"""Client-side validation against the service model's constraints.

Each check appends a :class:`~smruntime.errors.FieldProblem` instead of raising, so one
:class:`~smruntime.errors.InvalidParamsError` can list every problem at once.
"""

from __future__ import annotations

import io
import re
from typing import Any

from smruntime.errors import FieldProblem

MAX_BODY_BYTES = 6 * 1024 * 1024
"""InvokeEndpoint's payload limit (6 MiB), as the service model states it."""

ASCII_HEADER_PATTERN = r"[\x20-\x7e\t]*"
"""``\\p{ASCII}*`` narrowed to what a header value may carry: no CR, LF or other controls."""

Problems = list[FieldProblem]


def string(
    problems: Problems,
    field: str,
    value: Any,
    *,
    min_len: int = 0,
    max_len: int | None = None,
    pattern: str | None = None,
    pattern_text: str = "",
    sensitive: bool = False,
) -> None:
    """Check a string member: type, length bounds and a full-match ``pattern`` (a regex's text,
    compiled on first use by :mod:`re`'s cache). A pattern that refuses the empty string makes
    an empty value a length problem, as a minimum would.

    A ``sensitive`` value is never quoted in the problem it reports.
    """
    if value is None:
        return
    if not isinstance(value, str):
        problems.append(FieldProblem(field, "type", f"must be a str, got {type(value).__name__}"))
        return
    size = len(value)
    if size < min_len or (not size and pattern is not None and re.fullmatch(pattern, "") is None):
        least = max(min_len, 1)
        problems.append(FieldProblem(field, "length", f"must be at least {least} character{'s' if least > 1 else ''}, got {size}"))
        return
    if max_len is not None and size > max_len:
        problems.append(FieldProblem(field, "length", f"must be at most {max_len} characters, got {size}"))
        return
    if pattern is not None and size and re.fullmatch(pattern, value) is None:
        shown = "a value that does not" if sensitive else _show(value)
        problems.append(FieldProblem(field, "pattern", f"must match {pattern_text or pattern}, got {shown}"))


def integer(problems: Problems, field: str, value: Any, *, minimum: int, maximum: int) -> None:
    """Check an integer member and its range."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(FieldProblem(field, "type", f"must be an int, got {type(value).__name__}"))
    elif not minimum <= value <= maximum:
        problems.append(FieldProblem(field, "range", f"must be between {minimum} and {maximum}, got {value}"))


def body(problems: Problems, field: str, value: Any, *, max_bytes: int = MAX_BODY_BYTES) -> None:
    """Check a blob payload: bytes, bytearray, str (UTF-8) or a binary file, at most ``max_bytes``."""
    if value is None:
        return
    if isinstance(value, (bytes, bytearray, memoryview)):
        size = len(value)
    elif isinstance(value, str):
        size = len(value.encode("utf-8"))
    elif isinstance(value, io.TextIOBase):
        problems.append(FieldProblem(field, "type", "must be opened in binary mode, got a text file"))
        return
    elif callable(getattr(value, "read", None)):
        if getattr(value, "closed", False) is True:  # else seekable() raises a bare ValueError later
            problems.append(FieldProblem(field, "type", "is a closed file"))
            return
        remaining = _remaining_size(value)
        if remaining is None:
            return  # unseekable: measured when it is read into memory by the serializer
        size = remaining
    else:
        problems.append(
            FieldProblem(field, "type", f"must be bytes, bytearray, str or a binary file, got {type(value).__name__}")
        )
        return
    if size > max_bytes:
        problems.append(FieldProblem(field, "size", f"must be at most {max_bytes} bytes, got {size}"))


class PassedValues:
    """A bounded memo of member values that passed their checks.

    Checking is a pure function of the values, and a client repeats most members (the
    endpoint name, the content type) call after call: an operation remembers the tuples that
    passed and checks a tuple again only when one of its values changed. Only tuples of exact
    ``str`` or ``None`` values are kept, so a value of another type is never taken for one that
    passed; when full, the memo starts over.
    """

    __slots__ = ("_passed", "maxsize")

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._passed: set[tuple[str | None, ...]] = set()

    def __contains__(self, values: tuple[Any, ...]) -> bool:
        try:
            return values in self._passed
        except TypeError:  # an unhashable value (a list, say): never remembered
            return False

    def add(self, values: tuple[Any, ...]) -> None:
        """Remember ``values`` (which must have passed every check)."""
        if any(value is not None and type(value) is not str for value in values):
            return
        if len(self._passed) >= self.maxsize:
            self._passed.clear()
        self._passed.add(values)

    def __len__(self) -> int:
        return len(self._passed)


def _remaining_size(stream: Any) -> int | None:
    try:
        if not stream.seekable():
            return None
        position = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(position)
        return int(end - position)
    except (AttributeError, OSError, ValueError):
        return None


def _show(value: str, limit: int = 40) -> str:
    shown = value if len(value) <= limit else value[:limit] + "…"
    return ascii(shown)
