"""The ``PayloadPart`` events of InvokeEndpointWithBidirectionalStream (sans-IO).

Checking an event a caller sends, encoding an event as an event-stream message, and reading
the event (or the error) a response message carries. The stream (:mod:`smruntime.bidirectional`)
and the HTTP/2 mock client both use them.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Final

from smruntime import errors
from smruntime.eventstream import Message, encode_frame, encode_headers, encode_message
from smruntime.streaming import message_error
from smruntime.types import RequestPayloadPart, ResponsePayloadPart

__all__ = ["COMPLETION_STATES", "DATA_TYPES", "MAX_EVENT_BYTES", "encode_payload_part", "request_part", "response_part"]

LOGGER = logging.getLogger("smruntime")

MAX_EVENT_BYTES: Final = 16 * 1024 * 1024
"""The largest payload one event may carry (16 MiB, the event-stream limit AWS SDKs apply)."""

DATA_TYPES: Final = ("UTF8", "BINARY")
COMPLETION_STATES: Final = ("PARTIAL", "COMPLETE")
_MAX_PADDING: Final = 32767  # an event-stream string header value

_EVENT_HEADERS: Final = {
    ":message-type": "event",
    ":event-type": "PayloadPart",
    ":content-type": "application/octet-stream",
}

def request_part(
    data: Any, data_type: str | None, completion_state: str | None, p: str | None, operation: str
) -> RequestPayloadPart:
    """The event ``send`` was asked to send, checked; raises InvalidParamsError naming each bad field.

    ``data`` is bytes-like, or a str sent as UTF-8 (``data_type`` then defaults to ``UTF8``).
    """
    problems: list[errors.FieldProblem] = []
    if isinstance(data, str):
        data = data.encode("utf-8")
        data_type = "UTF8" if data_type is None else data_type
    elif isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        problems.append(errors.FieldProblem("data", "type", f"must be bytes, bytearray, memoryview or str, got {type(data).__name__}"))
    elif len(data) > MAX_EVENT_BYTES:
        problems.append(errors.FieldProblem("data", "size", f"must be at most {MAX_EVENT_BYTES} bytes, got {len(data)}"))
    for field, value, allowed in (("data_type", data_type, DATA_TYPES), ("completion_state", completion_state, COMPLETION_STATES)):
        if value is not None and value not in allowed:
            problems.append(errors.FieldProblem(field, "enum", f"must be one of {', '.join(allowed)}, got {value!r}"))
    if p is not None and (not isinstance(p, str) or len(p.encode("utf-8", "replace")) > _MAX_PADDING):
        problems.append(errors.FieldProblem("p", "length", f"must be a str of at most {_MAX_PADDING} UTF-8 bytes"))
    if problems:
        raise errors.InvalidParamsError(problems, operation=operation)
    return RequestPayloadPart(data, data_type, completion_state, p)


def encode_payload_part(part: RequestPayloadPart | ResponsePayloadPart) -> bytes:
    """The event-stream message of one ``PayloadPart`` event (a request event before signing;
    a response event as a server sends it)."""
    if part.p is None:  # the usual event: its headers come from a handful, encoded once each
        return encode_frame(_header_block(part.data_type, part.completion_state), part.bytes)
    return encode_message(_headers(part.data_type, part.completion_state, part.p), part.bytes)


def _headers(data_type: str | None, completion_state: str | None, p: str | None) -> dict[str, Any]:
    headers: dict[str, Any] = dict(_EVENT_HEADERS)
    if data_type is not None:
        headers["DataType"] = data_type
    if completion_state is not None:
        headers["CompletionState"] = completion_state
    if p is not None:
        headers["P"] = p
    return headers


@functools.lru_cache(maxsize=16)
def _header_block(data_type: str | None, completion_state: str | None) -> bytes:
    return encode_headers(_headers(data_type, completion_state, None))


def response_part(message: Message, operation: str, request_id: str | None) -> ResponsePayloadPart | None:
    """The event a response message carries (None for an unknown event type); raises the
    error an exception or error message carries (``ModelStreamError``, ``InternalStreamFailure``)."""
    error = message_error(message, operation, request_id)
    if error is not None:
        raise error
    if message.event_type == "PayloadPart":
        headers = message.headers
        return ResponsePayloadPart(
            message.payload, _text(headers.get("DataType")), _text(headers.get("CompletionState")), _text(headers.get("P"))
        )
    LOGGER.debug("%s: skipping unknown event type %r", operation, message.event_type)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
