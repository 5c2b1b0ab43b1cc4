"""Function adapters: a middleware from an ID and a plain function.

A plain ``fn(ctx, in_, next)`` makes a sync middleware (for ``Client``); an ``async def``
one makes an async middleware (for ``AsyncClient``), whose class lives in
:mod:`smruntime.middleware.async_adapters` and loads when first used.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar, cast

import attrs

from smruntime.middleware.context import Context
from smruntime.middleware.reprs import fields_repr
from smruntime.middleware.step import Next
from smruntime.middleware.types import (
    BuildInput,
    BuildOutput,
    DeserializeInput,
    DeserializeOutput,
    FinalizeInput,
    FinalizeOutput,
    InitializeInput,
    InitializeOutput,
    SerializeInput,
    SerializeOutput,
)

InT = TypeVar("InT")
OutT = TypeVar("OutT")

HandleFunc = Callable[[Context[Any], InT, Next[InT, OutT]], OutT]

if TYPE_CHECKING:
    from smruntime.middleware.async_adapters import AsyncHandleFunc, AsyncMiddlewareFunc


@attrs.frozen(eq=False)
class MiddlewareFunc(Generic[InT, OutT]):
    """A middleware made of an ID and a function ``fn(ctx, in_, next)``."""

    __repr__ = fields_repr

    id: str
    fn: HandleFunc[InT, OutT]

    def handle(self, ctx: Context[Any], in_: InT, next: Next[InT, OutT]) -> OutT:
        return self.fn(ctx, in_, next)


if TYPE_CHECKING:
    AnyFunc = HandleFunc[InT, OutT] | AsyncHandleFunc[InT, OutT]
    AnyMiddlewareFunc = MiddlewareFunc[InT, OutT] | AsyncMiddlewareFunc[InT, OutT]


def _adapt(id: str, fn: AnyFunc[InT, OutT]) -> AnyMiddlewareFunc[InT, OutT]:
    if inspect.iscoroutinefunction(fn):
        from smruntime.middleware.async_adapters import AsyncHandleFunc, AsyncMiddlewareFunc

        return AsyncMiddlewareFunc(id, cast(AsyncHandleFunc[InT, OutT], fn))
    return MiddlewareFunc(id, cast(HandleFunc[InT, OutT], fn))


def initialize_middleware(
    id: str, fn: AnyFunc[InitializeInput[Any], InitializeOutput[Any]]
) -> AnyMiddlewareFunc[InitializeInput[Any], InitializeOutput[Any]]:
    return _adapt(id, fn)


def serialize_middleware(
    id: str, fn: AnyFunc[SerializeInput[Any, Any], SerializeOutput[Any]]
) -> AnyMiddlewareFunc[SerializeInput[Any, Any], SerializeOutput[Any]]:
    return _adapt(id, fn)


def build_middleware(
    id: str, fn: AnyFunc[BuildInput[Any], BuildOutput[Any]]
) -> AnyMiddlewareFunc[BuildInput[Any], BuildOutput[Any]]:
    return _adapt(id, fn)


def finalize_middleware(
    id: str, fn: AnyFunc[FinalizeInput[Any], FinalizeOutput[Any]]
) -> AnyMiddlewareFunc[FinalizeInput[Any], FinalizeOutput[Any]]:
    return _adapt(id, fn)


def deserialize_middleware(
    id: str, fn: AnyFunc[DeserializeInput[Any], DeserializeOutput[Any, Any]]
) -> AnyMiddlewareFunc[DeserializeInput[Any], DeserializeOutput[Any, Any]]:
    return _adapt(id, fn)
