"""Recording request and response bodies on a span, only when asked, and redacted first."""

from __future__ import annotations

from typing import Any, Callable

Redactor = Callable[[str], str]
"""``redact(text) -> text``: what may be recorded of a body already decoded and shortened (the
default: :func:`smruntime.redaction.redact_json`)."""

STREAM_CAPTURE_LIMIT = 1024 * 1024
"""Bytes of a streamed answer kept for recording; past it the capture stops at a line's end."""


def stream_capture(captured: bytearray, data: bytes) -> bool:
    """Add a part of a streamed answer to what is kept; False once the capture is complete.

    At most :data:`STREAM_CAPTURE_LIMIT` bytes are kept, and a capture cut short ends at its
    last complete line, so every line kept can be redacted whole.
    """
    room = STREAM_CAPTURE_LIMIT - len(captured)
    if len(data) < room:
        captured += data
        return True
    cut = data.rfind(b"\n", 0, room)
    if cut >= 0:
        captured += data[: cut + 1]
    else:  # the line in progress may have begun in earlier parts: keep only whole lines
        del captured[captured.rfind(b"\n") + 1 :]
    return False


def body_text(body: Any, limit: int, redact: Redactor) -> str:
    """What a span records of a body: UTF-8 text redacted, then cut to ``limit`` characters;
    binary or file bodies as their size or kind only."""
    if isinstance(body, str):
        text = body
    elif isinstance(body, (bytes, bytearray)):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(body)} bytes, not UTF-8>"
    elif body is None:
        return ""
    else:
        return f"<{type(body).__name__}>"  # a file body is never read here: it is sent as is
    text = redact(text)
    if len(text) > limit:
        return text[:limit] + f"…<{len(text) - limit} more chars>"
    return text
