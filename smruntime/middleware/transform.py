"""Transforms: middleware written once for the sync and the asyncio chain.

Most middleware only change what passes through them: the input on the way in, the output
on the way out, or an error on its way up. Written as a :class:`Transform`, such a
middleware has no ``next`` to call and so no colour: the framework derives both the sync
``handle`` and the async ``ahandle`` from its hooks, and when it composes a chain it links
the hooks directly (a run of input-only transforms costs one link, not one per middleware).
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from smruntime.middleware.context import Context
from smruntime.middleware.step import AsyncNext, Next

InT = TypeVar("InT")
OutT = TypeVar("OutT")

Before = Callable[[Context[Any], Any], Any]
After = Callable[[Context[Any], Any, Any], Any]
Failed = Callable[[Context[Any], Any, BaseException], None]


class Transform(Generic[InT, OutT]):
    """A middleware made of up to three hooks; override the ones it needs.

    - ``before(ctx, in_) -> in_``: runs on the way in; returns the input to pass on
      (usually ``in_`` itself, changed in place).
    - ``after(ctx, in_, out) -> out``: runs on the way out after the rest of the chain
      succeeded; returns the output to pass back.
    - ``failed(ctx, in_, error)``: runs when the rest of the chain raised (cancellation
      included); the error propagates afterwards unless the hook raises another one.

    Hooks must not wait or do I/O: on an asyncio chain they run on the event loop. A
    middleware that waits writes ``handle`` and ``ahandle`` instead, over a shared core.
    Subclasses set ``id`` (a class attribute or a field).
    """

    id: str

    def before(self, ctx: Context[Any], in_: InT) -> InT:
        return in_

    def after(self, ctx: Context[Any], in_: InT, out: OutT) -> OutT:
        return out

    def failed(self, ctx: Context[Any], in_: InT, error: BaseException) -> None:
        """Called with the error the rest of the chain raised."""

    def handle(self, ctx: Context[Any], in_: InT, next: Next[InT, OutT]) -> OutT:
        in_ = self.before(ctx, in_)
        try:
            out = next(ctx, in_)
        except BaseException as error:
            self.failed(ctx, in_, error)
            raise
        return self.after(ctx, in_, out)

    async def ahandle(self, ctx: Context[Any], in_: InT, next: AsyncNext[InT, OutT]) -> OutT:
        in_ = self.before(ctx, in_)
        try:
            out = await next(ctx, in_)
        except BaseException as error:
            self.failed(ctx, in_, error)
            raise
        return self.after(ctx, in_, out)


def hooks(middleware: object, shell: str = "handle") -> tuple[Before | None, After | None, Failed | None] | None:
    """``(before, after, failed)`` of a transform (None for a hook it does not override), for
    the chain that calls ``shell`` (``"handle"`` or ``"ahandle"``); None when ``middleware`` is
    not a transform or overrides that shell. A transform may override ``ahandle`` alone, when
    only its asyncio side must wait (read a file in a worker thread): the sync chain still
    calls its hooks directly."""
    cls: type[Any] = type(middleware)
    if not isinstance(middleware, Transform) or getattr(cls, shell) is not getattr(Transform, shell):
        return None
    found = []
    for name in ("before", "after", "failed"):
        found.append(getattr(middleware, name) if getattr(cls, name) is not getattr(Transform, name) else None)
    before, after, failed = found
    return before, after, failed
