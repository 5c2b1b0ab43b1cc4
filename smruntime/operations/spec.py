"""What an operation contributes to its stack, and the member tables it is built from."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

import attrs

from smruntime import middleware as _mw
from smruntime.http import HTTPRequest
from smruntime.middleware import Middleware
from smruntime.middleware.reprs import fields_repr
from smruntime.shapes import Shape
from smruntime.stack_types import DeserializeInput, DeserializeOutput, SerializeOutput

InT = TypeVar("InT")
OutT = TypeVar("OutT")


@attrs.frozen(eq=False)
class Operation(Generic[InT, OutT]):
    """One API operation: its member tables, and the validator, serializer and deserializer(s)
    derived from them.

    ``OutT`` is what a call returns (the deserializer's result); the clients' methods read it
    from here, so a call's input and output are typed end to end.
    """

    __repr__ = fields_repr

    name: str
    input_type: type[InT]
    input: Shape
    output: Shape
    validate: Callable[[InT, str], None]
    new_serializer: Callable[[], Middleware[_mw.SerializeInput[InT, HTTPRequest], SerializeOutput]]
    deserializer: Middleware[DeserializeInput, DeserializeOutput]
    event_stream_deserializer: Middleware[DeserializeInput, DeserializeOutput] | None = None
    streams_response: bool = False
