"""The asyncio function adapter: a middleware from an ID and a coroutine function.

Loaded when first used, so a program that only uses ``Client`` does not create its class.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Generic, TypeVar

import attrs

from smruntime.middleware.context import Context
from smruntime.middleware.reprs import fields_repr
from smruntime.middleware.step import AsyncNext

InT = TypeVar("InT")
OutT = TypeVar("OutT")

AsyncHandleFunc = Callable[[Context[Any], InT, AsyncNext[InT, OutT]], Awaitable[OutT]]


@attrs.frozen(eq=False)
class AsyncMiddlewareFunc(Generic[InT, OutT]):
    """A middleware made of an ID and a coroutine function ``async fn(ctx, in_, next)``."""

    __repr__ = fields_repr

    id: str
    fn: AsyncHandleFunc[InT, OutT]

    async def ahandle(self, ctx: Context[Any], in_: InT, next: AsyncNext[InT, OutT]) -> OutT:
        return await self.fn(ctx, in_, next)
