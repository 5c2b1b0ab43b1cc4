"""What an HTTP/2 peer's RST_STREAM and GOAWAY frames become: :class:`ConnectionClosedError`\\ s
that carry the frame's error code and its RFC 9113 name.

Both say whether the request may have been processed (``request_sent``): a stream the server
refused (``REFUSED_STREAM``) or one above the ``last_stream_id`` of its GOAWAY was not, and
so is safe to send again. No h2 import here, so these can be caught without the ``http2`` extra.
"""

from __future__ import annotations

from smruntime.errors import ConnectionClosedError

__all__ = ["ERROR_CODE_NAMES", "ConnectionTerminatedError", "StreamResetError", "error_code_name", "stream_cancelled"]

ERROR_CODE_NAMES = {
    0x0: "NO_ERROR",
    0x1: "PROTOCOL_ERROR",
    0x2: "INTERNAL_ERROR",
    0x3: "FLOW_CONTROL_ERROR",
    0x4: "SETTINGS_TIMEOUT",
    0x5: "STREAM_CLOSED",
    0x6: "FRAME_SIZE_ERROR",
    0x7: "REFUSED_STREAM",
    0x8: "CANCEL",
    0x9: "COMPRESSION_ERROR",
    0xA: "CONNECT_ERROR",
    0xB: "ENHANCE_YOUR_CALM",
    0xC: "INADEQUATE_SECURITY",
    0xD: "HTTP_1_1_REQUIRED",
}
"""The error codes of RFC 9113 §7, by value."""

REFUSED_STREAM = 0x7


def stream_cancelled(operation: str | None = None) -> ConnectionClosedError:
    """What a stream says once a task waiting on it was cancelled (a time limit, Ctrl-C): part
    of an event may be written or unread, so it was reset and cannot go on."""
    return ConnectionClosedError(
        "the HTTP/2 stream was cancelled: a task waiting on it (to send, for the response or for its data) "
        "was cancelled, which resets the stream",
        request_sent=True,
        operation=operation,
    )


def error_code_name(code: int) -> str:
    """``CANCEL`` for 8; an unknown code as ``0x2a``."""
    return ERROR_CODE_NAMES.get(code, f"{code:#x}")


class StreamResetError(ConnectionClosedError):
    """The server reset the stream (RST_STREAM); ``error_name`` is the code's RFC 9113 name."""

    def __init__(self, error_code: int, *, operation: str | None = None) -> None:
        self.error_code = error_code
        self.error_name = error_code_name(error_code)
        if error_code == REFUSED_STREAM:
            message = "the server refused the HTTP/2 stream (RST_STREAM REFUSED_STREAM) before processing it"
        else:
            message = f"the server reset the HTTP/2 stream (RST_STREAM {self.error_name})"
        super().__init__(message, request_sent=error_code != REFUSED_STREAM, operation=operation)


class ConnectionTerminatedError(ConnectionClosedError):
    """The server closed the HTTP/2 connection (GOAWAY) with this stream still open.

    ``processed`` is false when the stream is above the GOAWAY's ``last_stream_id``: the server
    never acted on it.
    """

    def __init__(
        self, error_code: int, last_stream_id: int, stream_id: int, detail: str = "", *, operation: str | None = None
    ) -> None:
        self.error_code = error_code
        self.error_name = error_code_name(error_code)
        self.last_stream_id = last_stream_id
        self.processed = stream_id <= last_stream_id
        outcome = "after it began this stream" if self.processed else "before processing this stream"
        message = f"the server closed the HTTP/2 connection (GOAWAY {self.error_name}) {outcome}"
        if detail:
            message += f": {detail}"
        super().__init__(message, request_sent=self.processed, operation=operation)
