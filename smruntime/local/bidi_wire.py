"""The wire format of InvokeEndpointWithBidirectionalStream on the local endpoint (sans-IO).

Inbound, the request body is a byte stream of signed outer frames (``:date``,
``:chunk-signature``), each wrapping one encoded ``PayloadPart`` event; a signed frame with an
empty payload ends the input. :class:`InboundEvents` turns the bytes, fed as they arrive, into
:class:`Part` values: it decodes the outer frames, checks every chain signature with
:class:`~smruntime.local.event_verify.EventVerifier`, bounds the size of a frame, and decodes
the inner event. Missing ``DataType`` is ``BINARY`` and missing ``CompletionState`` is
``COMPLETE``; ``PARTIAL`` parts are passed on as they are, never joined.

Outbound, :func:`part_frame` encodes a ``PayloadPart`` event and :func:`exception_frame` an
exception event; neither is signed (the service signs nothing it sends).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from smruntime.errors import EventStreamError
from smruntime.eventstream import EventStreamDecoder, HeaderValue, Message, encode_frame, encode_headers, encode_message
from smruntime.local.event_verify import EventSignatureError, EventVerifier
from smruntime.local.sigv4_verify import MAX_SKEW_SECONDS
from smruntime.middleware.reprs import fields_repr

__all__ = [
    "BINARY",
    "COMPLETE",
    "COMPLETION_STATES",
    "DATA_TYPES",
    "PARTIAL",
    "UTF8",
    "InboundEvents",
    "InputRejected",
    "Part",
    "decode_part",
    "exception_frame",
    "part_frame",
]

BINARY: Final = "BINARY"
UTF8: Final = "UTF8"
COMPLETE: Final = "COMPLETE"
PARTIAL: Final = "PARTIAL"
DATA_TYPES: Final = frozenset({BINARY, UTF8})
COMPLETION_STATES: Final = frozenset({COMPLETE, PARTIAL})
MAX_P_LENGTH: Final = 32767
"""The padding header is an event-stream string: at most 32,767 bytes."""


def _data_type(_instance: object, _attribute: object, value: str) -> None:
    if value not in DATA_TYPES:
        raise ValueError(f"Part.data_type must match ^(UTF8)$|^(BINARY)$, not {value[:40]!r}")


def _completion_state(_instance: object, _attribute: object, value: str) -> None:
    if value not in COMPLETION_STATES:
        raise ValueError(f"Part.completion_state must match ^(PARTIAL)$|^(COMPLETE)$, not {value[:40]!r}")


@attrs.frozen
class Part:
    """One ``PayloadPart`` in either direction: bytes and the three event headers."""

    __repr__ = fields_repr

    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")
    data_type: str = attrs.field(default=BINARY, validator=_data_type)
    completion_state: str = attrs.field(default=COMPLETE, validator=_completion_state)
    p: str | None = attrs.field(default=None, repr=False)
    """Padding the sender may add to hide the true size; carries no meaning."""

    @property
    def text(self) -> str:
        """The bytes as text (UTF-8, undecodable bytes replaced)."""
        return self.data.decode("utf-8", errors="replace")

    @property
    def complete(self) -> bool:
        return self.completion_state == COMPLETE


class InputRejected(Exception):
    """The input stream broke a rule; ``code`` is the exception event's type to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def frame(self) -> bytes:
        """The exception event that tells the client."""
        key = "Message" if self.code == VALIDATION else "message"
        return exception_frame(self.code, {key: self.message})


VALIDATION: Final = "ValidationError"
INVALID_SIGNATURE: Final = "InvalidSignatureException"


def _invalid(message: str) -> InputRejected:
    return InputRejected(VALIDATION, message)


def decode_part(message: Message) -> Part:
    """The PayloadPart an inner event carries; InputRejected (ValidationError) for anything else."""
    if message.message_type != "event":
        raise _invalid(f"an input event must have :message-type 'event', not {str(message.message_type)[:40]!r}")
    if message.event_type != "PayloadPart":
        raise _invalid(f"the only input event is PayloadPart, not {str(message.event_type)[:40]!r}")
    headers = message.headers
    data_type = _string_header(headers, "DataType", BINARY)
    if data_type not in DATA_TYPES:
        raise _invalid(f"Value '{data_type[:40]}' at 'DataType' failed to satisfy constraint: "
                       "Member must satisfy regular expression pattern: ^(UTF8)$|^(BINARY)$")
    state = _string_header(headers, "CompletionState", COMPLETE)
    if state not in COMPLETION_STATES:
        raise _invalid(f"Value '{state[:40]}' at 'CompletionState' failed to satisfy constraint: "
                       "Member must satisfy regular expression pattern: ^(PARTIAL)$|^(COMPLETE)$")
    padding = headers.get("P")
    if padding is not None and not isinstance(padding, str):
        raise _invalid("the P header must be a string")
    return Part(message.payload, data_type, state, padding)


def _string_header(headers: Mapping[str, HeaderValue], name: str, default: str) -> str:
    value = headers.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _invalid(f"the {name} header must be a string")
    return value


_PART_HEADERS: Final = {":message-type": "event", ":event-type": "PayloadPart",
                        ":content-type": "application/octet-stream"}


def _part_headers(data_type: str, completion_state: str) -> dict[str, HeaderValue]:
    return {**_PART_HEADERS, "DataType": data_type, "CompletionState": completion_state}


_PART_HEADER_BLOCKS: Final = {
    (data_type, state): encode_headers(_part_headers(data_type, state))
    for data_type in sorted(DATA_TYPES)
    for state in sorted(COMPLETION_STATES)
}
"""The encoded headers of every unpadded part (a Part's two headers take two values each)."""


def part_frame(part: Part) -> bytes:
    """The response ``PayloadPart`` event for ``part`` (DataType and CompletionState always spelled out)."""
    if part.p is None:
        return encode_frame(_PART_HEADER_BLOCKS[part.data_type, part.completion_state], part.data)
    headers = _part_headers(part.data_type, part.completion_state)
    headers["P"] = part.p
    return encode_message(headers, part.data)


def exception_frame(exception_type: str, document: Mapping[str, Any]) -> bytes:
    """An exception event (``ModelStreamError``, ``InternalStreamFailure``, ...) with its JSON document."""
    headers = {":message-type": "exception", ":exception-type": exception_type, ":content-type": "application/json"}
    return encode_message(headers, json.dumps(dict(document)).encode())


class InboundEvents:
    """The request body of one bidirectional stream, checked frame by frame as it arrives.

    ``verifier`` None accepts unsigned-but-framed input (``verify_signatures = false``): each
    outer frame's payload is taken as it is, and the end frame is not required. With a
    ``clock`` (Unix seconds), a signed event's ``:date`` must also be within
    ``MAX_SKEW_SECONDS`` of it, as the opening request's ``X-Amz-Date`` must.
    """

    __slots__ = ("_clock", "_decoder", "_inner", "_max_frame_bytes", "_verifier", "ended")

    def __init__(self, verifier: EventVerifier | None, *, max_frame_bytes: int,
                 clock: Callable[[], float] | None = None) -> None:
        self._decoder = EventStreamDecoder()
        self._inner = EventStreamDecoder()  # each frame's payload: one whole event
        self._verifier = verifier
        self._max_frame_bytes = max_frame_bytes
        self._clock = clock
        self.ended = False
        """Whether the signed end frame arrived (no more parts are accepted)."""

    def feed(self, data: bytes) -> list[Part]:
        """The parts ``data`` completes, in order; InputRejected for the first rule broken."""
        try:
            frames = self._decoder.feed(data)
        except EventStreamError as error:
            raise _invalid(f"the input is not a valid event stream: {error}") from None
        parts = [part for part in map(self._open, frames) if part is not None]
        if self._decoder.buffered > self._max_frame_bytes:
            # Checked while the frame still arrives: no more than the limit (and one read) is held.
            raise _invalid(f"an input event is over the {self._max_frame_bytes}-byte limit")
        return parts

    def finish(self) -> None:
        """The client ended its side: the input must end between frames, after the end frame."""
        try:
            self._decoder.end()
        except EventStreamError as error:
            raise _invalid(f"the input is not a valid event stream: {error}") from None
        if self._verifier is not None:
            try:
                self._verifier.finish()
            except EventSignatureError as error:
                raise InputRejected(INVALID_SIGNATURE, str(error)) from None

    def _open(self, frame: Message) -> Part | None:
        if len(frame.payload) + _FRAME_OVERHEAD > self._max_frame_bytes:
            raise _invalid(f"an input event is over the {self._max_frame_bytes}-byte limit")
        if self._verifier is not None:
            try:
                payload = self._verifier.verify(frame)
            except EventSignatureError as error:
                raise InputRejected(INVALID_SIGNATURE, str(error)) from None
            if self._clock is not None:
                _check_date(frame.headers[":date"], self._clock())
        elif self.ended:
            raise _invalid("an event arrived after the end frame")
        else:
            payload = frame.payload or None
        if payload is None:
            self.ended = True
            return None
        return decode_part(_one_event(self._inner, payload))


def _check_date(date: HeaderValue, now: float) -> None:
    signed_at = int(date) / 1000  # a Timestamp once verified
    if abs(signed_at - now) > MAX_SKEW_SECONDS:
        shown = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(signed_at))
        server = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        raise InputRejected(INVALID_SIGNATURE, f"Signature expired: the event's :date {shown} is more than 5 min "
                                               f"from the server's time {server}.")


_FRAME_OVERHEAD: Final = 16
"""Prelude and message CRC around every frame."""


def _one_event(decoder: EventStreamDecoder, payload: bytes) -> Message:
    """The one event ``payload`` holds (``decoder`` starts and ends each payload empty)."""
    try:
        messages = decoder.feed(payload)
    except EventStreamError as error:
        raise _invalid(f"an input event's payload must be one encoded event: {error}") from None
    if decoder.buffered:
        raise _invalid("an input event's payload must be one encoded event: it ends inside one")
    if len(messages) != 1:
        raise _invalid(f"an input event's payload must be one encoded event, not {len(messages)}")
    return messages[0]
