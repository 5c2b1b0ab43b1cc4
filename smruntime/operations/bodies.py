"""Turning the caller's body into what goes on the wire."""

from __future__ import annotations

from typing import Any

from smruntime import errors
from smruntime.http import Body
from smruntime.validation import MAX_BODY_BYTES


def to_request_body(value: Any, operation: str, *, max_bytes: int = MAX_BODY_BYTES) -> Body:
    """bytes as is; bytearray/memoryview copied; str as UTF-8; a seekable file as is.

    An unseekable stream is read into memory (bounded by the payload limit): SigV4 must
    hash the payload before sending, which consumes such a stream anyway.
    """
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if value is None:
        return None
    seekable = getattr(value, "seekable", None)
    if callable(seekable) and seekable():
        return value  # type: ignore[no-any-return]
    data = value.read(max_bytes + 1)
    if not isinstance(data, bytes):
        raise errors.InvalidParamsError(
            [errors.FieldProblem("body", "type", "file objects must be opened in binary mode")], operation=operation
        )
    if len(data) > max_bytes:
        raise errors.InvalidParamsError(
            [errors.FieldProblem("body", "size", f"must be at most {max_bytes} bytes, got more")], operation=operation
        )
    return data
