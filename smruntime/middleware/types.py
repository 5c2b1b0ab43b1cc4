"""What each step receives and returns.

Each class is generic over what it carries, so an SDK built on the framework can give its
middleware precise types (``BuildInput[HTTPRequest]``); used bare, a field is ``Any``.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs

ParamsT = TypeVar("ParamsT")
RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")
ResultT = TypeVar("ResultT")


@attrs.define(slots=True)
class InitializeInput(Generic[ParamsT]):
    parameters: ParamsT


@attrs.define(slots=True)
class InitializeOutput(Generic[ResultT]):
    result: ResultT


@attrs.define(slots=True)
class SerializeInput(Generic[ParamsT, RequestT]):
    parameters: ParamsT
    request: RequestT


@attrs.define(slots=True)
class SerializeOutput(Generic[ResultT]):
    result: ResultT


@attrs.define(slots=True)
class BuildInput(Generic[RequestT]):
    request: RequestT


@attrs.define(slots=True)
class BuildOutput(Generic[ResultT]):
    result: ResultT


@attrs.define(slots=True)
class FinalizeInput(Generic[RequestT]):
    request: RequestT


@attrs.define(slots=True)
class FinalizeOutput(Generic[ResultT]):
    result: ResultT


@attrs.define(slots=True)
class DeserializeInput(Generic[RequestT]):
    request: RequestT


@attrs.define(slots=True)
class DeserializeOutput(Generic[ResponseT, ResultT]):
    raw_response: ResponseT
    result: ResultT | None = None
