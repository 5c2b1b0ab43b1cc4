"""HTTP requests and responses as plain data: no I/O happens here."""

from __future__ import annotations

from typing import IO, ItemsView, Iterable, Iterator, Mapping, MutableMapping, Protocol, Union

import attrs

Body = bytes | IO[bytes] | None
"""A request body: bytes, a binary file object (seekable for retries), or nothing."""


class Headers(MutableMapping[str, str]):
    """A case-insensitive header mapping that keeps the first spelling of each name."""

    __slots__ = ("_store",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        self._store: dict[str, tuple[str, str]] = {}
        if items is not None:
            pairs = items.items() if isinstance(items, Mapping) else items
            for name, value in pairs:
                self[name] = value

    def __setitem__(self, name: str, value: str) -> None:
        key = name.lower()
        previous = self._store.get(key)
        self._store[key] = (previous[0] if previous else name, value)

    def __getitem__(self, name: str) -> str:
        return self._store[name.lower()][1]

    def __delitem__(self, name: str) -> None:
        del self._store[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._store

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._store.values())

    def __len__(self) -> int:
        return len(self._store)

    def items(self) -> ItemsView[str, str]:
        return _HeaderItems(self)

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        item = self._store.get(name.lower())
        return item[1] if item is not None else default

    def lower_items(self) -> Iterator[tuple[str, str]]:
        """``(lowercase name, value)`` pairs, as signing wants them."""
        return ((key, item[1]) for key, item in self._store.items())

    def lower_dict(self) -> dict[str, str]:
        """``{lowercase name: value}``: a snapshot, as signing wants it."""
        return {key: item[1] for key, item in self._store.items()}

    def copy(self) -> Headers:
        clone = Headers()
        clone._store = dict(self._store)
        return clone

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self.lower_items()) == {str(k).lower(): v for k, v in other.items()}
        return NotImplemented

    def __repr__(self) -> str:
        from smruntime.redaction import redact_headers

        return f"Headers({redact_headers(self)!r})"


class _HeaderItems(ItemsView[str, str]):
    """``headers.items()`` read straight from the store: the generic view looks every name up
    again, and HTTP clients iterate the headers of every request and response."""

    _mapping: Headers

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._mapping._store.values())


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
        """Chunks as they arrive (one per transfer chunk where the server chunks)."""

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
