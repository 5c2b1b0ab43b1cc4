"""Function adapters: a middleware from an ID and a plain function."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

import attrs

from smruntime.middleware.context import Context
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

HandleFunc = Callable[[Context, InT, Next[InT, OutT]], OutT]


@attrs.frozen
class MiddlewareFunc(Generic[InT, OutT]):
    """A middleware made of an ID and a function ``fn(ctx, in_, next)``."""

    id: str
    fn: HandleFunc[InT, OutT]

    def handle(self, ctx: Context, in_: InT, next: Next[InT, OutT]) -> OutT:
        return self.fn(ctx, in_, next)


def initialize_middleware(
    id: str, fn: HandleFunc[InitializeInput, InitializeOutput]
) -> MiddlewareFunc[InitializeInput, InitializeOutput]:
    return MiddlewareFunc(id, fn)


def serialize_middleware(
    id: str, fn: HandleFunc[SerializeInput, SerializeOutput]
) -> MiddlewareFunc[SerializeInput, SerializeOutput]:
    return MiddlewareFunc(id, fn)


def build_middleware(
    id: str, fn: HandleFunc[BuildInput, BuildOutput]
) -> MiddlewareFunc[BuildInput, BuildOutput]:
    return MiddlewareFunc(id, fn)


def finalize_middleware(
    id: str, fn: HandleFunc[FinalizeInput, FinalizeOutput]
) -> MiddlewareFunc[FinalizeInput, FinalizeOutput]:
    return MiddlewareFunc(id, fn)


def deserialize_middleware(
    id: str, fn: HandleFunc[DeserializeInput, DeserializeOutput]
) -> MiddlewareFunc[DeserializeInput, DeserializeOutput]:
    return MiddlewareFunc(id, fn)
