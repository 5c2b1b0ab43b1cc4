"""HTTP requests and responses as plain data: no I/O happens here."""

from __future__ import annotations

from typing import IO, ItemsView, Iterable, Iterator, Mapping, MutableMapping, Protocol, Union

import attrs

Body = bytes | IO[bytes] | None
"""A request body: bytes, a binary file object (seekable for retries), or nothing."""

DEFAULT_MAX_RESPONSE_BODY_SIZE = 64 * 1024 * 1024
"""The longest response body an HTTP client reads whole by default: far above SageMaker's 6 MB
payloads, far below what would hurt a process."""


_KNOWN_NAMES = (
    # the protocol's
    "Accept", "Accept-Encoding", "Authorization", "Connection", "Content-Length", "Content-Type", "Date", "Host",
    "Transfer-Encoding", "User-Agent", "X-Amz-Content-SHA256", "X-Amz-Date", "X-Amz-Security-Token",
    "X-Amzn-ErrorType", "amz-sdk-invocation-id", "amz-sdk-request", "x-amz-request-id", "x-amzn-RequestId",
    # the service's members (a test keeps this list complete)
    "X-Amzn-Invoked-Production-Variant", "x-Amzn-Invoked-Production-Variant", "X-Amzn-SageMaker-Accept",
    "X-Amzn-SageMaker-Closed-Session-Id", "X-Amzn-SageMaker-Content-Type", "X-Amzn-SageMaker-Custom-Attributes",
    "X-Amzn-SageMaker-Enable-Explanations", "X-Amzn-SageMaker-FailureLocation", "X-Amzn-SageMaker-Filename",
    "X-Amzn-SageMaker-Inference-Component", "X-Amzn-SageMaker-Inference-Id", "X-Amzn-SageMaker-InputLocation",
    "X-Amzn-SageMaker-InvocationTimeoutSeconds", "X-Amzn-SageMaker-Model-Invocation-Path",
    "X-Amzn-SageMaker-Model-Query-String", "X-Amzn-SageMaker-New-Session-Id", "X-Amzn-SageMaker-OutputLocation",
    "X-Amzn-SageMaker-Prefix-Aware-Id", "X-Amzn-SageMaker-RequestTTLSeconds",
    "X-Amzn-SageMaker-S3OutputPathExtension", "X-Amzn-SageMaker-Session-Id",
    "X-Amzn-SageMaker-Target-Container-Hostname", "X-Amzn-SageMaker-Target-Model", "X-Amzn-SageMaker-Target-Variant",
)
_LOWERCASE: Mapping[str, str] = {
    spelling: lowered
    for name in _KNOWN_NAMES
    for lowered in (name.lower(),)
    for spelling in (name, lowered)
}
"""The lower-case form of the header names every call sets or reads, computed once. ``str.lower``
makes a new string each time, whose hash every dict then computes again, so the methods below
read this first (``_LOWERCASE.get(name) or name.lower()``); it is never written to."""


class Headers(MutableMapping[str, str]):
    """A case-insensitive header mapping that keeps the first spelling of each name."""

    # Two dicts keyed by lower-case name, always with the same keys in the same order: the
    # values, and each name's first spelling. Lookups, and the lower-case snapshots signing and
    # deserializing take, are then plain dict operations (a request makes some twenty of them).
    __slots__ = ("_names", "_values")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        self._names: dict[str, str] = {}
        self._values: dict[str, str] = {}
        if items is not None:
            pairs = items.items() if isinstance(items, Mapping) else items
            for name, value in pairs:
                self[name] = value

    @classmethod
    def received(cls, fields: Iterable[tuple[str, str]]) -> Headers:
        """The headers of a response, from its ``(name, value)`` fields as they arrived: a
        repeated name's values joined with ``", "``, as HTTP allows."""
        headers = cls()
        names, values = headers._names, headers._values
        for name, value in fields:
            key = _LOWERCASE.get(name) or name.lower()
            known = values.get(key)
            if known is None:
                values[key] = value
                names[key] = name
            else:
                values[key] = f"{known}, {value}"
        return headers

    def __setitem__(self, name: str, value: str) -> None:
        key = _LOWERCASE.get(name) or name.lower()
        self._values[key] = value
        self._names.setdefault(key, name)

    def __getitem__(self, name: str) -> str:
        return self._values[_LOWERCASE.get(name) or name.lower()]

    def __delitem__(self, name: str) -> None:
        key = _LOWERCASE.get(name) or name.lower()
        del self._values[key]
        del self._names[key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (_LOWERCASE.get(name) or name.lower()) in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._names.values())

    def __len__(self) -> int:
        return len(self._values)

    def items(self) -> ItemsView[str, str]:
        return _HeaderItems(self)

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._values.get(_LOWERCASE.get(name) or name.lower(), default)

    def names_and_values(self) -> tuple[list[str], list[str]]:
        """The names as first spelled and their values, in order, as two lists (to write a head)."""
        return list(self._names.values()), list(self._values.values())

    def lower_items(self) -> Iterator[tuple[str, str]]:
        """``(lowercase name, value)`` pairs, as signing wants them."""
        return iter(self._values.items())

    def lower_dict(self) -> dict[str, str]:
        """``{lowercase name: value}``: a snapshot, as signing wants it."""
        return self._values.copy()

    def copy(self) -> Headers:
        clone = object.__new__(Headers)  # both dicts are copied in: skip __init__'s empty ones
        clone._names = self._names.copy()
        clone._values = self._values.copy()
        return clone

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._values == {str(k).lower(): v for k, v in other.items()}
        return NotImplemented

    def __repr__(self) -> str:
        from smruntime.redaction import redact_headers

        return f"Headers({redact_headers(self)!r})"


class _HeaderItems(ItemsView[str, str]):
    """``headers.items()`` read straight from the dicts: the generic view looks every name up
    again, and HTTP clients iterate the headers of every request and response."""

    _mapping: Headers

    def __iter__(self) -> Iterator[tuple[str, str]]:
        headers = self._mapping
        return zip(headers._names.values(), headers._values.values(), strict=True)


HeadersInput = Union["Headers", Mapping[str, str], Iterable[tuple[str, str]], None]


def to_headers(value: HeadersInput) -> Headers:
    return value if isinstance(value, Headers) else Headers(value)


# Converters run in __init__ only (on_setattr=NO_OP): attrs' per-assignment hook is a Python
# __setattr__ that cost ~0.5 µs on every field a middleware sets, several times per call.
# Assign a Headers (or use item access) when replacing ``headers`` after construction.
@attrs.define(slots=True, eq=False, on_setattr=attrs.setters.NO_OP)
class HTTPRequest:
    """An HTTP request: ``url`` is the full URL (scheme, host, path, query)."""

    method: str = "POST"
    url: str = ""
    headers: Headers = attrs.field(factory=Headers, converter=to_headers)
    body: Body = None

    def copy(self) -> HTTPRequest:
        """A copy for one attempt: its own headers, the same body."""
        # Built without __init__: the fields are already converted (this runs per attempt).
        clone = object.__new__(HTTPRequest)
        clone.method = self.method
        clone.url = self.url
        clone.headers = self.headers.copy()
        clone.body = self.body
        return clone

    def __repr__(self) -> str:
        from smruntime.redaction import redact_headers

        size = len(self.body) if isinstance(self.body, bytes) else None
        body = f"<{size} bytes>" if size is not None else ("<stream>" if self.body is not None else "None")
        return f"HTTPRequest(method={self.method!r}, url={self.url!r}, headers={redact_headers(self.headers)!r}, body={body})"


class ResponseBody(Protocol):
    """A response body that may still be arriving."""

    def read(self) -> bytes:
        """The rest of the body; the connection is released once it is all read."""

    def iter_chunks(self) -> Iterator[bytes]:
        """Pieces as they arrive; where the server chunks, one per chunk up to 1 MiB (longer
        chunks come in pieces, so a declared size never makes the client buffer more)."""

    def close(self) -> None:
        """Idempotent: release the connection (back to the pool only if fully read)."""


class BytesBody:
    """A response body that is already in memory."""

    __slots__ = ("_closed", "_data")

    def __init__(self, data: bytes = b"") -> None:
        self._data = data
        self._closed = False

    def read(self) -> bytes:
        data, self._data = self._data, b""
        self._closed = True
        return data

    def iter_chunks(self) -> Iterator[bytes]:
        data = self.read()
        if data:
            yield data

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed


def to_response_body(value: ResponseBody | bytes | bytearray) -> ResponseBody:
    return BytesBody(bytes(value)) if isinstance(value, (bytes, bytearray)) else value


@attrs.define(slots=True, eq=False, on_setattr=attrs.setters.NO_OP)  # see HTTPRequest
class HTTPResponse:
    """An HTTP response; ``body`` may be a live stream until read or closed."""

    status_code: int
    headers: Headers = attrs.field(factory=Headers, converter=to_headers)
    body: ResponseBody = attrs.field(factory=BytesBody, converter=to_response_body)
    reason: str = ""

    def read(self) -> bytes:
        """Read the whole body and release the connection."""
        try:
            return self.body.read()
        finally:
            self.body.close()

    def close(self) -> None:
        self.body.close()

    def __repr__(self) -> str:
        from smruntime.redaction import redact_headers

        return f"HTTPResponse(status_code={self.status_code!r}, headers={redact_headers(self.headers)!r})"
