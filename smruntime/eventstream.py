"""The AWS event-stream codec (``application/vnd.amazon.eventstream``), sans-IO.

A frame on the wire::

    total_length u32 | headers_length u32 | prelude_crc u32 | headers | payload | message_crc u32

All integers are big-endian. ``prelude_crc`` is the CRC-32 of bytes ``[0, 8)`` and
``message_crc`` the CRC-32 of bytes ``[0, total_length - 4)``. A header is
``name_len u8 | name | type u8 | value``; the ten value types are listed in :data:`HeaderValue`.

:func:`encode_message` builds frames; :class:`EventStreamDecoder` turns a byte stream, fed in
chunks of any size, into :class:`Message` objects. Neither does any I/O.

Header values keep their wire type: decoded integers always come back as :class:`Int8`,
:class:`Int16`, :class:`Int32`, :class:`Int64` or :class:`Timestamp` (never a plain ``int``),
so ``encode_message(m.headers, m.payload)`` reproduces the decoded frame byte for byte.
"""

from __future__ import annotations

import datetime as _dt
import struct
import uuid
import zlib
from typing import Any, Callable, Final, Mapping, NoReturn, TypeAlias, TypeVar

import attrs

from smruntime.errors import (  # defined with the other errors; exported here too
    ChecksumMismatchError,
    EventStreamError,
    InvalidHeaderError,
    InvalidLengthError,
    MessageChecksumError,
    PreludeChecksumError,
    TruncatedStreamError,
)
from smruntime.middleware.reprs import fields_repr

__all__ = [
    "MAX_HEADERS_LENGTH",
    "MAX_HEADER_NAME_LENGTH",
    "MAX_HEADER_VALUE_LENGTH",
    "MAX_PAYLOAD_LENGTH",
    "ChecksumMismatchError",
    "EventStreamDecoder",
    "HeaderValue",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "InvalidHeaderError",
    "InvalidLengthError",
    "Message",
    "MessageChecksumError",
    "PreludeChecksumError",
    "Timestamp",
    "TruncatedStreamError",
    "decode_all",
    "encode_frame",
    "encode_headers",
    "encode_message",
]

MAX_PAYLOAD_LENGTH: Final = 24 * 1024 * 1024
"""Largest payload accepted or produced (24 MiB), as botocore and aws-c-event-stream."""
MAX_HEADERS_LENGTH: Final = 128 * 1024
"""Largest headers section accepted or produced (128 KiB)."""
MAX_HEADER_NAME_LENGTH: Final = 255
"""A header name is 1..255 UTF-8 bytes (its length is one byte)."""
MAX_HEADER_VALUE_LENGTH: Final = 32767
"""Largest byte_array or string header value, in bytes (as aws-c-event-stream and smithy-go)."""

_PRELUDE_LENGTH: Final = 12
_MIN_TOTAL_LENGTH: Final = 16  # prelude + message CRC

_PRELUDE = struct.Struct(">III")
_LENGTHS = struct.Struct(">II")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")

_T = TypeVar("_T")

_TRUE, _FALSE, _BYTE, _SHORT, _INT, _LONG, _BYTES, _STRING, _TIMESTAMP, _UUID = range(10)
_VARIABLE_TYPES: Final = frozenset({_BYTES, _STRING})  # a u16 length, then the value


# --------------------------------------------------------------------------------------------
# Header values


def _int_range(bits: int) -> Callable[[object, attrs.Attribute[int], int], None]:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def check(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
        # bool is an int subclass; a flag passed as a number is almost surely a mistake.
        if type(value) is not int:
            raise TypeError(f"{type(instance).__name__} needs an int, got {type(value).__name__}")
        if not low <= value <= high:
            raise ValueError(f"{type(instance).__name__} value {value} is outside [{low}, {high}]")

    return check


@attrs.frozen
class Int8:
    """A ``byte`` header value (type 2), -128..127."""

    __repr__ = fields_repr

    value: int = attrs.field(validator=_int_range(8))

    def __int__(self) -> int:
        return self.value


@attrs.frozen
class Int16:
    """A ``short`` header value (type 3)."""

    __repr__ = fields_repr

    value: int = attrs.field(validator=_int_range(16))

    def __int__(self) -> int:
        return self.value


@attrs.frozen
class Int32:
    """An ``integer`` header value (type 4)."""

    __repr__ = fields_repr

    value: int = attrs.field(validator=_int_range(32))

    def __int__(self) -> int:
        return self.value


@attrs.frozen
class Int64:
    """A ``long`` header value (type 5)."""

    __repr__ = fields_repr

    value: int = attrs.field(validator=_int_range(64))

    def __int__(self) -> int:
        return self.value


_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


@attrs.frozen
class Timestamp:
    """A ``timestamp`` header value (type 8): milliseconds since the Unix epoch.

    It holds the wire integer, not a datetime, so that every int64 round-trips exactly;
    :meth:`from_datetime` and :attr:`datetime` convert.
    """

    __repr__ = fields_repr

    millis: int = attrs.field(validator=_int_range(64))

    @classmethod
    def from_datetime(cls, when: _dt.datetime) -> Timestamp:
        """The timestamp of an aware datetime, truncated to the millisecond (floor)."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("Timestamp.from_datetime needs a timezone-aware datetime")
        # Integer arithmetic: float seconds would lose milliseconds far from the epoch.
        return cls((when - _EPOCH) // _dt.timedelta(milliseconds=1))

    @property
    def datetime(self) -> _dt.datetime:
        """The time as an aware UTC datetime (OverflowError outside years 1..9999)."""
        return _EPOCH + _dt.timedelta(milliseconds=self.millis)

    def __int__(self) -> int:
        return self.millis


HeaderValue: TypeAlias = bool | bytes | str | uuid.UUID | Int8 | Int16 | Int32 | Int64 | Timestamp
"""A header value, by wire type: 0/1 bool, 2 Int8, 3 Int16, 4 Int32, 5 Int64, 6 bytes,
7 str, 8 Timestamp, 9 uuid.UUID."""


def _short_repr(payload: bytes) -> str:
    # A 24 MiB payload must not end up whole in a log line or a test failure.
    return repr(payload) if len(payload) <= 64 else f"{payload[:64]!r}... ({len(payload)} bytes)"


@attrs.frozen
class Message:
    """One decoded (or to-be-encoded) event-stream message."""

    __repr__ = fields_repr

    headers: dict[str, HeaderValue] = attrs.field(factory=dict, hash=False)
    payload: bytes = attrs.field(default=b"", repr=_short_repr)

    def _str_header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return value if isinstance(value, str) else None

    @property
    def message_type(self) -> str | None:
        """``:message-type`` (``event``, ``exception`` or ``error``), or None."""
        return self._str_header(":message-type")

    @property
    def event_type(self) -> str | None:
        """``:event-type`` (e.g. ``PayloadPart``), or None."""
        return self._str_header(":event-type")

    @property
    def exception_type(self) -> str | None:
        """``:exception-type`` (e.g. ``ModelStreamError``), or None."""
        return self._str_header(":exception-type")

    @property
    def content_type(self) -> str | None:
        """``:content-type``, or None."""
        return self._str_header(":content-type")

    @property
    def error_code(self) -> str | None:
        """``:error-code`` of an ``error`` message, or None."""
        return self._str_header(":error-code")

    @property
    def error_message(self) -> str | None:
        """``:error-message`` of an ``error`` message, or None."""
        return self._str_header(":error-message")

    def encode(self) -> bytes:
        """This message as one frame; see :func:`encode_message`."""
        return encode_message(self.headers, self.payload)


# --------------------------------------------------------------------------------------------
# Encoding


def _encode_value(name: str, value: HeaderValue) -> bytes:
    # bool before anything int-like: True must not become an integer header.
    if value is True:
        return b"\x00"
    if value is False:
        return b"\x01"
    if isinstance(value, str):
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidHeaderError(f"header {name!r}: string value is not valid UTF-8: {exc}") from None
        return _variable(name, _STRING, raw)
    if isinstance(value, bytes):
        return _variable(name, _BYTES, value)
    if isinstance(value, Int32):
        return b"\x04" + _I32.pack(value.value)
    if isinstance(value, Int64):
        return b"\x05" + _I64.pack(value.value)
    if isinstance(value, Int16):
        return b"\x03" + _I16.pack(value.value)
    if isinstance(value, Int8):
        return b"\x02" + _I8.pack(value.value)
    if isinstance(value, Timestamp):
        return b"\x08" + _I64.pack(value.millis)
    if isinstance(value, uuid.UUID):
        return b"\x09" + value.bytes
    if isinstance(value, int):
        raise TypeError(
            f"header {name!r}: a plain int has no wire width; wrap it in Int8, Int16, Int32, "
            "Int64 or Timestamp"
        )
    raise TypeError(f"header {name!r}: unsupported value type {type(value).__name__}")


def _variable(name: str, code: int, raw: bytes) -> bytes:
    if len(raw) > MAX_HEADER_VALUE_LENGTH:
        raise InvalidHeaderError(
            f"header {name!r}: value is {len(raw)} bytes, over the {MAX_HEADER_VALUE_LENGTH}-byte limit"
        )
    return bytes((code,)) + _U16.pack(len(raw)) + raw


def encode_headers(headers: Mapping[str, HeaderValue]) -> bytes:
    """The headers section of a frame (for :func:`encode_frame`); errors as :func:`encode_message`'s."""
    parts: list[bytes] = []
    for name, value in headers.items():
        try:
            raw_name = name.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidHeaderError(f"header name {name!r} is not valid UTF-8: {exc}") from None
        if not 1 <= len(raw_name) <= MAX_HEADER_NAME_LENGTH:
            raise InvalidHeaderError(
                f"header name {name[:40]!r} is {len(raw_name)} bytes; it must be 1..{MAX_HEADER_NAME_LENGTH}"
            )
        parts.append(bytes((len(raw_name),)))
        parts.append(raw_name)
        parts.append(_encode_value(name, value))
    return b"".join(parts)


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes = b"") -> bytes:
    """One event-stream frame holding ``headers`` (in iteration order) and ``payload``.

    Raises:
        InvalidHeaderError: a name is empty, over 255 bytes or not encodable, or a value is
            over 32767 bytes.
        InvalidLengthError: the headers section is over 128 KiB or the payload over 24 MiB.
        TypeError: a value is not a :data:`HeaderValue` (a plain ``int`` included).
    """
    return encode_frame(encode_headers(headers), payload)


def encode_frame(header_block: bytes, payload: bytes = b"") -> bytes:
    """One event-stream frame around an already encoded headers section (a hot path's
    headers, encoded once and reused) and ``payload``; limits as for :func:`encode_message`."""
    if len(header_block) > MAX_HEADERS_LENGTH:
        raise InvalidLengthError(
            f"headers section is {len(header_block)} bytes, over the {MAX_HEADERS_LENGTH}-byte limit"
        )
    if len(payload) > MAX_PAYLOAD_LENGTH:
        raise InvalidLengthError(
            f"payload is {len(payload)} bytes, over the {MAX_PAYLOAD_LENGTH}-byte limit"
        )
    total = _MIN_TOTAL_LENGTH + len(header_block) + len(payload)
    lengths = _LENGTHS.pack(total, len(header_block))
    prelude_crc = zlib.crc32(lengths)
    prelude = lengths + _U32.pack(prelude_crc)
    # The message CRC continues from the prelude CRC: crc32 over [0, 12) == crc32([8, 12), crc).
    crc = zlib.crc32(payload, zlib.crc32(header_block, zlib.crc32(prelude[8:], prelude_crc)))
    return b"".join((prelude, header_block, payload, _U32.pack(crc)))


# --------------------------------------------------------------------------------------------
# Decoding

_new = object.__new__


def _trusted(cls: type[_T], field: str) -> Callable[[Any], _T]:
    """A constructor that skips ``__init__`` and its validators, for values the decoder vouches for.

    The decoder builds one object per message and header; attrs' frozen ``__init__`` (and the
    range validators of the integer wrappers, which a fixed-width field cannot fail) is a
    large share of the per-message cost. Only use it where the value is known to be valid.
    """
    setter = cls.__dict__[field].__set__  # the slot's member descriptor

    def make(value: Any) -> _T:
        obj = _new(cls)
        setter(obj, value)
        return obj

    return make


# The same shortcut for Message, inlined in the decoder's loop: the slots' member descriptors.
_set_message_headers: Callable[[Message, dict[str, HeaderValue]], None] = Message.__dict__["headers"].__set__
_set_message_payload: Callable[[Message, bytes], None] = Message.__dict__["payload"].__set__


# Fixed-width value types: type code -> (width, unpacker, wrapper).
_FIXED: Final[dict[int, tuple[int, Callable[[bytes, int], tuple[Any, ...]], Callable[[Any], HeaderValue]]]] = {
    _BYTE: (1, _I8.unpack_from, _trusted(Int8, "value")),
    _SHORT: (2, _I16.unpack_from, _trusted(Int16, "value")),
    _INT: (4, _I32.unpack_from, _trusted(Int32, "value")),
    _LONG: (8, _I64.unpack_from, _trusted(Int64, "value")),
    _TIMESTAMP: (8, _I64.unpack_from, _trusted(Timestamp, "millis")),
}

# Header sections repeat verbatim in real streams (every SageMaker PayloadPart carries the same
# three strings), so each decoder keeps a small cache of parsed sections keyed by their bytes.
# Header values are immutable, so only the dict is copied per message.
_HEADER_CACHE_MAX_ENTRIES: Final = 64
_HEADER_CACHE_MAX_BLOCK: Final = 1024

# Up to this frame size, slicing bytes for the CRC is cheaper than making a memoryview; above
# it, the memoryview saves copying the frame.
_SLICE_CRC_MAX: Final = 64 * 1024

# A frame at least this large is checked as it arrives: each chunk is folded into the message
# CRC when fed, and the complete frame is decoded from the chunks themselves (see
# EventStreamDecoder._drain_split_frame) instead of from their join.
_SPLIT_FRAME_MIN: Final = 256 * 1024


def _overrun(name: str, what: str, at: int, end: int) -> InvalidHeaderError:
    return InvalidHeaderError(
        f"header {name!r}: {what} at stream offset {at} overruns the headers section ending at {end}"
    )


def _parse_headers(buf: bytes, start: int, end: int, where: int) -> dict[str, HeaderValue]:
    """Parse the headers section ``buf[start:end]`` strictly.

    ``where`` is the stream offset of ``buf[0]``, used only in error messages.
    """
    headers: dict[str, HeaderValue] = {}
    i = start
    while i < end:
        name_len = buf[i]
        if name_len == 0:
            raise InvalidHeaderError(f"header at stream offset {where + i} has an empty name")
        i += 1
        j = i + name_len
        if j >= end:  # the name and the type byte must both fit
            raise InvalidHeaderError(
                f"header name of {name_len} bytes at stream offset {where + i - 1} overruns the "
                f"headers section ending at {where + end}"
            )
        try:
            name = buf[i:j].decode()  # strict UTF-8; the default codec is the fastest call
        except UnicodeDecodeError:
            raise InvalidHeaderError(
                f"header name at stream offset {where + i} is not valid UTF-8: {buf[i:j]!r}"
            ) from None
        if name in headers:
            raise InvalidHeaderError(f"duplicate header {name!r} at stream offset {where + i - 1}")
        code = buf[j]
        i = j + 1
        value: HeaderValue
        if code in _VARIABLE_TYPES:
            if i + 2 > end:
                raise _overrun(name, "value length", where + i, where + end)
            value_len = (buf[i] << 8) | buf[i + 1]
            i += 2
            if value_len > MAX_HEADER_VALUE_LENGTH:
                raise InvalidHeaderError(
                    f"header {name!r}: value length {value_len} at stream offset {where + i - 2} is "
                    f"over the {MAX_HEADER_VALUE_LENGTH}-byte limit"
                )
            k = i + value_len
            if k > end:
                raise _overrun(name, f"{value_len}-byte value", where + i, where + end)
            if code == _STRING:
                try:
                    value = buf[i:k].decode()
                except UnicodeDecodeError:
                    raise InvalidHeaderError(
                        f"header {name!r}: string value at stream offset {where + i} is not valid UTF-8"
                    ) from None
            else:
                value = buf[i:k]
            i = k
        elif code == _TRUE:
            value = True
        elif code == _FALSE:
            value = False
        elif code == _UUID:
            if i + 16 > end:
                raise _overrun(name, "uuid", where + i, where + end)
            value = uuid.UUID(bytes=buf[i : i + 16])
            i += 16
        else:
            fixed = _FIXED.get(code)
            if fixed is None:
                raise InvalidHeaderError(f"header {name!r}: unknown value type {code} at stream offset {where + j}")
            width, unpack, wrap = fixed
            if i + width > end:
                raise _overrun(name, f"{width}-byte value", where + i, where + end)
            value = wrap(unpack(buf, i)[0])
            i += width
        headers[name] = value
    return headers


def _prelude_error(buf: bytes, pos: int, where: int) -> EventStreamError:
    """The error for a prelude that failed the decoder's combined fast check."""
    total, headers_length, prelude_crc = _PRELUDE.unpack_from(buf, pos)
    computed = zlib.crc32(buf[pos : pos + 8])
    frame = f"frame at stream offset {where}"
    if computed != prelude_crc:
        return PreludeChecksumError(
            f"prelude CRC mismatch in the {frame}: the frame says 0x{prelude_crc:08x}, "
            f"its first 8 bytes give 0x{computed:08x}",
            expected=prelude_crc,
            computed=computed,
        )
    if total < _MIN_TOTAL_LENGTH:
        return InvalidLengthError(f"{frame}: total_length {total} is below the minimum of {_MIN_TOTAL_LENGTH}")
    if headers_length > total - _MIN_TOTAL_LENGTH:
        return InvalidLengthError(
            f"{frame}: headers_length {headers_length} is over total_length - 16 = {total - _MIN_TOTAL_LENGTH}"
        )
    if headers_length > MAX_HEADERS_LENGTH:
        return InvalidLengthError(
            f"{frame}: headers_length {headers_length} is over the {MAX_HEADERS_LENGTH}-byte limit"
        )
    payload_length = total - _MIN_TOTAL_LENGTH - headers_length
    return InvalidLengthError(
        f"{frame}: payload length {payload_length} is over the {MAX_PAYLOAD_LENGTH}-byte limit"
    )


class EventStreamDecoder:
    """An incremental decoder: :meth:`feed` it bytes, get back the messages they complete.

    Frames are checked in this order: with 12 bytes, the prelude CRC, then the lengths and
    limits (so a corrupt length never makes it wait for data that will not come); with the
    whole frame, the message CRC; then the headers. Any failure raises an
    :class:`EventStreamError` subclass and leaves the decoder failed, since a byte stream
    cannot be resynchronised after a bad frame.

    Chunks are kept in a list and joined once, when a prelude or a whole frame is in, so
    decoding is linear in the stream size whatever the chunk sizes. A large frame's chunks are
    CRC'd as they arrive and only its payload is joined.
    """

    __slots__ = (
        "_chunks",
        "_crc",
        "_crc_end",
        "_deferred",
        "_ended",
        "_failed",
        "_head",
        "_header_cache",
        "_headers_length",
        "_need",
        "_offset",
        "_pending",
        "_prelude_crc",
        "_total",
    )

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._head = 0  # read position inside _chunks[0]
        self._pending = 0  # bytes buffered after _head
        self._need = _PRELUDE_LENGTH  # _pending must reach this before decoding can progress
        # The current frame's prelude fields once checked; _total is 0 before that.
        self._total = 0
        self._headers_length = 0
        self._prelude_crc = 0
        # While a large frame arrives: the CRC of its bytes [8, min(_pending, _crc_end)), and
        # _crc_end = total - 4, the end of what its message CRC covers. _crc_end is 0 otherwise.
        self._crc = 0
        self._crc_end = 0
        self._offset = 0  # stream offset of the current frame's first byte
        self._deferred: EventStreamError | None = None
        self._failed: EventStreamError | None = None
        self._ended = False
        self._header_cache: dict[bytes, dict[str, HeaderValue]] = {}

    @property
    def buffered(self) -> int:
        """How many bytes of an incomplete frame are held."""
        return self._pending

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Add ``data``; return the messages it completes, in stream order (often none).

        When good frames precede a corrupt one in the same chunk, their messages are returned
        and the error is raised by the next call to :meth:`feed` or :meth:`end`, so that no
        good message is lost.

        Raises:
            EventStreamError: a subclass for a corrupt or oversized frame; a plain
                EventStreamError after :meth:`end` or after an earlier failure.
        """
        if self._failed is not None:
            self._raise_failure()
        if self._ended:
            raise EventStreamError("feed() called after end()")
        # Keep an immutable copy: a caller may reuse its bytearray for the next read.
        chunk = data if type(data) is bytes else bytes(data)
        size = len(chunk)  # in bytes, even for a memoryview whose items are wider
        if not size:
            return []
        self._chunks.append(chunk)
        covered = self._pending
        if covered < self._crc_end:
            # Checking a large frame as it arrives reads each chunk while it is still in cache,
            # and leaves only the payload join for when the frame is complete.
            if covered + size <= self._crc_end:
                self._crc = zlib.crc32(chunk, self._crc)
            else:
                self._crc = zlib.crc32(memoryview(chunk)[: self._crc_end - covered], self._crc)
        self._pending = covered + size
        if self._pending < self._need:
            return []  # most chunks of a large frame stop here: O(1), nothing joined
        return self._drain()

    def end(self) -> None:
        """Declare the end of the stream; a no-op when it ended between frames.

        Raises:
            TruncatedStreamError: part of a frame is buffered.
            EventStreamError: a deferred error from the last :meth:`feed`.
        """
        if self._failed is not None:
            self._raise_failure()
        self._ended = True
        if self._pending:
            if self._total:
                what = f"{self._pending} of the {self._total} bytes of a frame"
            else:
                what = f"{self._pending} of the 12 bytes of a frame's prelude"
            err = TruncatedStreamError(
                f"event stream ended inside a frame: got {what} starting at stream offset {self._offset}"
            )
            self._failed = err
            raise err

    def _raise_failure(self) -> NoReturn:
        deferred = self._deferred
        if deferred is not None:
            self._deferred = None
            raise deferred
        raise EventStreamError(f"the event stream failed earlier: {self._failed}") from self._failed

    def _drain(self) -> list[Message]:
        if self._crc_end:
            return self._drain_split_frame()
        chunks = self._chunks
        if len(chunks) == 1:
            buf = chunks[0]
            pos = self._head
        elif self._head:
            # Skip the consumed start of the first chunk without copying it.
            buf = b"".join([memoryview(chunks[0])[self._head :], *chunks[1:]])
            pos = 0
        else:
            buf = b"".join(chunks)
            pos = 0
        chunks.clear()  # buf holds it all now; freeing the pieces early lowers peak memory
        end = len(buf)
        messages: list[Message] = []
        append = messages.append
        crc32 = zlib.crc32
        unpack_prelude = _PRELUDE.unpack_from
        unpack_u32 = _U32.unpack_from
        new = _new
        set_headers = _set_message_headers
        set_payload = _set_message_payload
        cache = self._header_cache
        offset = self._offset
        total = self._total
        headers_length = self._headers_length
        prelude_crc = self._prelude_crc
        # The loop is inlined on purpose: it runs once per message, and attribute lookups and
        # method calls would cost more than the checks themselves for small events.
        try:
            while True:
                if not total:
                    if end - pos < _PRELUDE_LENGTH:
                        break
                    total, headers_length, prelude_crc = unpack_prelude(buf, pos)
                    # A negative payload length covers both total_length < 16 and
                    # headers_length > total_length - 16; _prelude_error says which.
                    if (
                        crc32(buf[pos : pos + 8]) != prelude_crc
                        or not 0 <= total - _MIN_TOTAL_LENGTH - headers_length <= MAX_PAYLOAD_LENGTH
                        or headers_length > MAX_HEADERS_LENGTH
                    ):
                        raise _prelude_error(buf, pos, offset)
                frame_end = pos + total
                if frame_end > end:
                    break
                body_end = frame_end - 4
                # The message CRC covers [0, total - 4); continuing from the prelude CRC (the
                # CRC of [0, 8)) means only [8, total - 4) has to be read again.
                if total <= _SLICE_CRC_MAX:
                    computed = crc32(buf[pos + 8 : body_end], prelude_crc)
                else:
                    computed = crc32(memoryview(buf)[pos + 8 : body_end], prelude_crc)
                (expected,) = unpack_u32(buf, body_end)
                if computed != expected:
                    raise MessageChecksumError(
                        f"message CRC mismatch in the {total}-byte frame at stream offset {offset}: "
                        f"the frame says 0x{expected:08x}, its bytes give 0x{computed:08x}",
                        expected=expected,
                        computed=computed,
                    )
                headers_end = pos + _PRELUDE_LENGTH + headers_length
                headers: dict[str, HeaderValue]
                if not headers_length:
                    headers = {}
                elif headers_length <= _HEADER_CACHE_MAX_BLOCK:
                    block = buf[pos + _PRELUDE_LENGTH : headers_end]
                    parsed = cache.get(block)
                    if parsed is None:
                        parsed = _parse_headers(block, 0, headers_length, offset + _PRELUDE_LENGTH)
                        if len(cache) >= _HEADER_CACHE_MAX_ENTRIES:
                            cache.clear()
                        cache[block] = parsed
                    headers = parsed.copy()
                else:
                    headers = _parse_headers(buf, pos + _PRELUDE_LENGTH, headers_end, offset - pos)
                message: Message = new(Message)
                set_headers(message, headers)
                set_payload(message, buf[headers_end:body_end])
                append(message)
                offset += total
                pos = frame_end
                total = 0
        except EventStreamError as err:
            self._offset = offset
            self._failed = err
            self._chunks = []
            self._pending = 0
            if messages:
                self._deferred = err
                return messages
            raise
        self._offset = offset
        self._total = total
        self._headers_length = headers_length
        self._prelude_crc = prelude_crc
        self._need = total or _PRELUDE_LENGTH
        if total >= _SPLIT_FRAME_MIN:
            # From here on feed() extends this CRC chunk by chunk.
            self._crc_end = total - 4
            self._crc = crc32(memoryview(buf)[pos + 8 : min(end, pos + self._crc_end)], prelude_crc)
        rest = end - pos
        self._pending = rest
        if not rest:
            self._chunks = []
            self._head = 0
        elif rest <= pos:
            # Copying the tail costs no more than what was just consumed, so this stays linear,
            # and the consumed part of a large buffer can be freed.
            self._chunks = [buf[pos:]]
            self._head = 0
        else:
            self._chunks = [buf]
            self._head = pos
        return messages

    def _drain_split_frame(self) -> list[Message]:
        """The current large frame, whole and already CRC'd by :meth:`feed`, decoded from its chunks.

        Joining the frame and then slicing its payload out would copy (and page in) the payload
        twice; here the payload is joined once, straight from the chunks.
        """
        total = self._total
        headers_end = _PRELUDE_LENGTH + self._headers_length
        offset = self._offset
        chunks = self._chunks
        head = self._head
        computed = self._crc
        self._crc_end = 0
        (expected,) = _U32.unpack(b"".join(_span(chunks, head, total - 4, total)))
        try:
            if computed != expected:
                raise MessageChecksumError(
                    f"message CRC mismatch in the {total}-byte frame at stream offset {offset}: "
                    f"the frame says 0x{expected:08x}, its bytes give 0x{computed:08x}",
                    expected=expected,
                    computed=computed,
                )
            block = b"".join(_span(chunks, head, _PRELUDE_LENGTH, headers_end))
            headers = _parse_headers(block, 0, len(block), offset + _PRELUDE_LENGTH)
        except EventStreamError as err:
            self._failed = err
            self._chunks = []
            self._pending = 0
            raise
        message: Message = _new(Message)
        _set_message_headers(message, headers)
        _set_message_payload(message, b"".join(_span(chunks, head, headers_end, total - 4)))
        # Every chunk before the last left the frame incomplete, so what follows the frame is
        # the last chunk's tail: keep that chunk and start reading there, copying nothing.
        last = chunks[-1]
        rest = self._pending - total
        self._chunks = [last] if rest else []
        self._head = len(last) - rest if rest else 0
        self._pending = rest
        self._offset = offset + total
        self._total = 0
        self._need = _PRELUDE_LENGTH
        if rest < _PRELUDE_LENGTH:
            return [message]
        try:
            return [message, *self._drain()]
        except EventStreamError as err:
            # _drain has failed the decoder; this good message still comes first, as in _drain.
            self._deferred = err
            return [message]


def _span(chunks: list[bytes], head: int, start: int, stop: int) -> list[bytes | memoryview]:
    """The bytes ``[start, stop)`` of a frame that begins at ``chunks[0][head]``, in pieces.

    A chunk wholly inside the range is returned as it is, so that ``b"".join`` copies it on
    its fast path; only the chunks at the two edges become views.
    """
    pieces: list[bytes | memoryview] = []
    position = -head  # the frame offset of the current chunk's first byte
    for chunk in chunks:
        end = position + len(chunk)
        if end > start:
            if position >= start and end <= stop:
                pieces.append(chunk)
            else:
                pieces.append(memoryview(chunk)[max(start - position, 0) : min(stop, end) - position])
        if end >= stop:
            break
        position = end
    return pieces


def decode_all(data: bytes | bytearray | memoryview) -> list[Message]:
    """Every message in ``data``, which must end on a frame boundary.

    Raises:
        EventStreamError: a corrupt frame, or a truncated one at the end.
    """
    decoder = EventStreamDecoder()
    messages = decoder.feed(data)
    decoder.end()
    return messages
