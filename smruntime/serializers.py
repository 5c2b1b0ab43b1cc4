"""Serializers: turn Python data into a request body and name its content type.

They produce what the sagemaker SDK's serializers of the same names produce on the same
input (JSON, CSV, NumPy ``.npy``, JSON Lines, raw bytes and text), so code moving from its
``Predictor`` sends the same bytes. NumPy is optional: only :class:`NumpySerializer` needs it,
and arrays are recognised without importing it.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import attrs

from smruntime.middleware.reprs import fields_repr
from smruntime.types import BodyInput


@runtime_checkable
class Serializer(Protocol):
    """Anything with a ``content_type`` and ``serialize(data) -> body``."""

    @property
    def content_type(self) -> str: ...

    def serialize(self, data: Any) -> BodyInput: ...


def _ndarray_type() -> type | None:
    """numpy.ndarray if NumPy is loaded (an array cannot exist otherwise), else None."""
    numpy = sys.modules.get("numpy")
    return getattr(numpy, "ndarray", None) if numpy is not None else None


def _is_ndarray(data: Any) -> bool:
    ndarray = _ndarray_type()
    return ndarray is not None and isinstance(data, ndarray)


def _is_dataframe(data: Any) -> bool:
    return type(data).__module__.startswith("pandas.") and type(data).__name__ == "DataFrame"


def _is_file(data: Any) -> bool:
    return callable(getattr(data, "read", None))


def _read(data: Any) -> Any:
    """A file-like input is sent as what it reads (as the sagemaker SDK does)."""
    return data.read()


@attrs.frozen
class JSONSerializer:
    """JSON text: NumPy arrays (also as a dict's values) become lists; a file is sent as read."""

    __repr__ = fields_repr

    content_type: str = "application/json"

    def serialize(self, data: Any) -> BodyInput:
        if isinstance(data, dict):
            return json.dumps({key: value.tolist() if _is_ndarray(value) else value for key, value in data.items()})
        if _is_file(data):
            return _read(data)  # type: ignore[no-any-return]
        if _is_ndarray(data):
            return json.dumps(data.tolist())
        return json.dumps(data)


@attrs.frozen
class CSVSerializer:
    """CSV text: a row (list, tuple, 1-D array) or rows (a list of rows, a 2-D array, a DataFrame).

    As in the sagemaker SDK, a string is sent as it is, rows are joined by ``\\n`` with no final
    newline, and a list of strings is a list of rows.
    """

    __repr__ = fields_repr

    content_type: str = "text/csv"

    def serialize(self, data: Any) -> BodyInput:
        if _is_file(data):
            return _read(data)  # type: ignore[no-any-return]
        if _is_dataframe(data):
            return data.to_csv(header=False, index=False)  # type: ignore[no-any-return]
        if _sequence_like(data) and hasattr(data, "__setitem__") and len(data) > 0 and _sequence_like(data[0]):
            return "\n".join(_csv_row(row) for row in data)
        return _csv_row(data)


def _sequence_like(data: Any) -> bool:
    return hasattr(data, "__iter__") and hasattr(data, "__getitem__")


def _csv_row(data: Any) -> str:
    if isinstance(data, str):
        return data
    if _is_ndarray(data):
        data = data.flatten()
    if not hasattr(data, "__len__"):
        raise ValueError(f"CSVSerializer: cannot write a {type(data).__name__} as a CSV row")
    if len(data) == 0:
        raise ValueError("CSVSerializer: cannot write an empty row")
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=",").writerow(data)
    return buffer.getvalue().rstrip("\r\n")


@attrs.frozen
class NumpySerializer:
    """NumPy ``.npy`` bytes of an array, a list (as ``dtype``), or anything ``numpy.array`` takes.

    Needs NumPy (``pip install 'smruntime[numpy]'``).
    """

    __repr__ = fields_repr

    dtype: Any = None
    content_type: str = "application/x-npy"

    def serialize(self, data: Any) -> BodyInput:
        numpy = _numpy("NumpySerializer")
        if isinstance(data, numpy.ndarray):
            if data.size == 0:
                raise ValueError("NumpySerializer: cannot write an empty array")
            return _npy(numpy, data)
        if isinstance(data, list):
            if not data:
                raise ValueError("NumpySerializer: cannot write an empty list")
            return _npy(numpy, numpy.array(data, self.dtype))
        if _is_file(data):
            return _read(data)  # type: ignore[no-any-return]  # assumed to hold .npy bytes
        return _npy(numpy, numpy.array(data))


def _npy(numpy: Any, array: Any) -> bytes:
    buffer = io.BytesIO()
    numpy.save(buffer, array)
    return buffer.getvalue()


def _numpy(user: str) -> Any:
    try:
        import numpy
    except ImportError as error:
        raise ImportError(f"{user} needs NumPy: pip install 'smruntime[numpy]'") from error
    return numpy


@attrs.frozen
class JSONLinesSerializer:
    """JSON Lines: one JSON value per element of an iterable, joined by ``\\n``; a string as is."""

    __repr__ = fields_repr

    content_type: str = "application/jsonlines"

    def serialize(self, data: Any) -> BodyInput:
        if isinstance(data, str):
            return data
        if _is_file(data):
            return _read(data)  # type: ignore[no-any-return]
        if isinstance(data, Iterable):
            return "\n".join(json.dumps(element) for element in data)
        raise ValueError(f"JSONLinesSerializer: a {type(data).__name__} is not an iterable of JSON values")


@attrs.frozen
class IdentitySerializer:
    """The data as it is: bytes, str (sent as UTF-8) or a binary file."""

    __repr__ = fields_repr

    content_type: str = "application/octet-stream"

    def serialize(self, data: Any) -> BodyInput:
        return data  # type: ignore[no-any-return]


@attrs.frozen
class StringSerializer:
    """A str as UTF-8 bytes."""

    __repr__ = fields_repr

    content_type: str = "text/plain"

    def serialize(self, data: Any) -> BodyInput:
        if not isinstance(data, str):
            raise ValueError(f"StringSerializer: expected a str, got a {type(data).__name__}")
        return data.encode("utf-8")
