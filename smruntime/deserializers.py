"""Deserializers: name the content types a caller accepts and turn a response body into data.

They give what the sagemaker SDK's deserializers of the same names give for the same body
(JSON, CSV, NumPy, JSON Lines, text, bytes). They take the body as bytes (the client has
read it) rather than a stream, so one deserializer also decodes each line or part of a
response stream. NumPy is optional: only :class:`NumpyDeserializer` needs it.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Protocol, runtime_checkable

import attrs

from smruntime.middleware.reprs import fields_repr

Accept = str | tuple[str, ...]


@runtime_checkable
class Deserializer(Protocol):
    """Anything with an ``accept`` value and ``deserialize(body, content_type) -> data``."""

    @property
    def accept(self) -> Accept: ...

    def deserialize(self, body: bytes, content_type: str | None) -> Any: ...


def accept_header(accept: Accept) -> str:
    """The ``Accept`` value for one media type or several (joined by ``", "``, as the SDK does)."""
    return accept if isinstance(accept, str) else ", ".join(accept)


@attrs.frozen
class BytesDeserializer:
    """The body as bytes."""

    __repr__ = fields_repr

    accept: Accept = "*/*"

    def deserialize(self, body: bytes, content_type: str | None) -> bytes:
        return body


@attrs.frozen
class StringDeserializer:
    """The body decoded as text."""

    __repr__ = fields_repr

    encoding: str = "UTF-8"
    accept: Accept = "application/json"

    def deserialize(self, body: bytes, content_type: str | None) -> str:
        return body.decode(self.encoding)


@attrs.frozen
class JSONDeserializer:
    """The body parsed as JSON (UTF-8)."""

    __repr__ = fields_repr

    accept: Accept = "application/json"

    def deserialize(self, body: bytes, content_type: str | None) -> Any:
        return json.loads(body.decode("utf-8"))


@attrs.frozen
class CSVDeserializer:
    """The body as a list of rows, each a list of strings."""

    __repr__ = fields_repr

    encoding: str = "utf-8"
    accept: Accept = "text/csv"

    def deserialize(self, body: bytes, content_type: str | None) -> list[list[str]]:
        return list(csv.reader(body.decode(self.encoding).splitlines()))


@attrs.frozen
class JSONLinesDeserializer:
    """The body as a list of JSON values, one per line (trailing blank lines ignored)."""

    __repr__ = fields_repr

    accept: Accept = "application/jsonlines"

    def deserialize(self, body: bytes, content_type: str | None) -> list[Any]:
        return [json.loads(line) for line in body.decode("utf-8").rstrip().split("\n")]


@attrs.frozen
class NumpyDeserializer:
    """A NumPy array from ``.npy`` (or an ``.npz`` archive), CSV or JSON, by the response's content type.

    Pickled object arrays load only with ``allow_pickle=True`` (loading a pickle runs code).
    Needs NumPy (``pip install 'smruntime[numpy]'``).
    """

    __repr__ = fields_repr

    dtype: Any = None
    accept: Accept = "application/x-npy"
    allow_pickle: bool = False

    def deserialize(self, body: bytes, content_type: str | None) -> Any:
        try:
            import numpy
        except ImportError as error:
            raise ImportError("NumpyDeserializer needs NumPy: pip install 'smruntime[numpy]'") from error
        if content_type == "text/csv":
            return numpy.genfromtxt(io.StringIO(body.decode("utf-8")), delimiter=",", dtype=self.dtype)
        if content_type == "application/json":
            return numpy.array(json.loads(body.decode("utf-8")), dtype=self.dtype)
        if content_type in ("application/x-npy", "application/x-npz"):
            try:
                return numpy.load(io.BytesIO(body), allow_pickle=self.allow_pickle)
            except ValueError as error:
                if self.allow_pickle:
                    raise
                raise ValueError(
                    "NumpyDeserializer: the array holds pickled objects; pass allow_pickle=True to load it"
                ) from error
        raise ValueError(f"NumpyDeserializer: cannot read content type {content_type!r}")
