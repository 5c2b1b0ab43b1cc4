"""What each step receives and returns.

Each class is generic over what it carries, so an SDK built on the framework can give its
middleware precise types (``BuildInput[HTTPRequest]``); used bare, a field is ``Any``.
They carry one call's values from middleware to middleware and are compared by identity
(``eq=False``): value equality has no use on them, and attrs would compile it for each class
at import.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs

from smruntime.middleware.reprs import fields_repr

ParamsT = TypeVar("ParamsT")
RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")
ResultT = TypeVar("ResultT")


@attrs.define(slots=True, eq=False)
class InitializeInput(Generic[ParamsT]):
    __repr__ = fields_repr

    parameters: ParamsT


@attrs.define(slots=True, eq=False)
class InitializeOutput(Generic[ResultT]):
    __repr__ = fields_repr

    result: ResultT


@attrs.define(slots=True, eq=False)
class SerializeInput(Generic[ParamsT, RequestT]):
    __repr__ = fields_repr

    parameters: ParamsT
    request: RequestT


@attrs.define(slots=True, eq=False)
class SerializeOutput(Generic[ResultT]):
    __repr__ = fields_repr

    result: ResultT


@attrs.define(slots=True, eq=False)
class BuildInput(Generic[RequestT]):
    __repr__ = fields_repr

    request: RequestT


@attrs.define(slots=True, eq=False)
class BuildOutput(Generic[ResultT]):
    __repr__ = fields_repr

    result: ResultT


@attrs.define(slots=True, eq=False)
class FinalizeInput(Generic[RequestT]):
    __repr__ = fields_repr

    request: RequestT


@attrs.define(slots=True, eq=False)
class FinalizeOutput(Generic[ResultT]):
    __repr__ = fields_repr

    result: ResultT


@attrs.define(slots=True, eq=False)
class DeserializeInput(Generic[RequestT]):
    __repr__ = fields_repr

    request: RequestT


@attrs.define(slots=True, eq=False)
class DeserializeOutput(Generic[ResponseT, ResultT]):
    __repr__ = fields_repr

    raw_response: ResponseT
    result: ResultT | None = None
