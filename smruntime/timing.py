"""An api option that measures where a call's client-side time goes.

``Client(api_options=[record_timings])`` (or ``AsyncClient(...)``) wraps every middleware in
a timer (same ID, same position). After the call, ``out.metadata.timings`` holds seconds spent
in each middleware's own code (its ``next`` excluded), per step, in the HTTP exchange, and in
total; retried attempts add up.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from smruntime import keys
from smruntime.middleware import Stack
from smruntime.middleware.reprs import fields_repr
from smruntime.stack_types import Context

_clock = time.perf_counter

STEP_ORDER = (
    "Initialize stack step",
    "Serialize stack step",
    "Build stack step",
    "Finalize stack step",
    "Deserialize stack step",
)


@attrs.frozen
class _Timer:
    """What every timer holds; :func:`timed` picks the kind that matches ``inner``."""

    __repr__ = fields_repr

    inner: Any
    step: str
    measures_transport: bool = False

    @property
    def id(self) -> str:
        mw_id: str = self.inner.id
        return mw_id

    def _record(self, ctx: Context, own: float, waited: float) -> None:
        timings = ctx.metadata.get(keys.TIMINGS)
        if timings is None:
            timings = {"middleware": {}, "steps": {}, "transport": 0.0}
            ctx.metadata.set(keys.TIMINGS, timings)
        timings["middleware"][self.id] = timings["middleware"].get(self.id, 0.0) + own
        timings["steps"][self.step] = timings["steps"].get(self.step, 0.0) + own
        if self.measures_transport:
            timings["transport"] += waited


@attrs.frozen
class TimedMiddleware(_Timer):
    """Runs ``inner`` and adds its own time (excluding ``next``) to the call's timings."""

    __repr__ = fields_repr

    def handle(self, ctx: Context, in_: Any, next: Any) -> Any:
        waited = 0.0

        def timed_next(ctx: Context, in_: Any) -> Any:
            nonlocal waited
            start = _clock()
            try:
                return next(ctx, in_)
            finally:
                waited += _clock() - start

        start = _clock()
        try:
            return self.inner.handle(ctx, in_, timed_next)
        finally:
            self._record(ctx, _clock() - start - waited, waited)


@attrs.frozen
class AsyncTimedMiddleware(_Timer):
    """The asyncio timer: the time from entering ``inner`` to its return, less the time spent
    awaiting ``next`` (what ``inner`` awaits itself, a backoff sleep say, counts as its own)."""

    __repr__ = fields_repr

    async def ahandle(self, ctx: Context, in_: Any, next: Any) -> Any:
        waited = 0.0

        async def timed_next(ctx: Context, in_: Any) -> Any:
            nonlocal waited
            start = _clock()
            try:
                return await next(ctx, in_)
            finally:
                waited += _clock() - start

        start = _clock()
        try:
            return await self.inner.ahandle(ctx, in_, timed_next)
        finally:
            self._record(ctx, _clock() - start - waited, waited)


@attrs.frozen
class TimedBothMiddleware(TimedMiddleware, AsyncTimedMiddleware):
    """A timer for a middleware that runs on both clients."""

    __repr__ = fields_repr


def timed(middleware: Any, step: str, *, measures_transport: bool = False) -> TimedMiddleware | AsyncTimedMiddleware:
    """A timer with the same shells as ``middleware``: a sync-only middleware stays refused
    by an asyncio chain (and an async-only one by a sync chain) when the chain is composed."""
    has_sync = callable(getattr(middleware, "handle", None))
    has_async = callable(getattr(middleware, "ahandle", None))
    kind: type[TimedMiddleware | AsyncTimedMiddleware] = TimedMiddleware
    if has_sync and has_async:
        kind = TimedBothMiddleware
    elif has_async:
        kind = AsyncTimedMiddleware
    return kind(middleware, step, measures_transport)


def record_timings(stack: Stack) -> None:
    """Wrap every middleware of ``stack`` in a timer; the innermost one also times the HTTP exchange.

    Works on ``Client`` and ``AsyncClient`` alike.
    """
    last_id = stack.deserialize.list()[-1] if len(stack.deserialize) else None
    for step in stack.steps:
        for mw_id in step.list():
            middleware = step.get(mw_id)
            if middleware is None or isinstance(middleware, _Timer):
                continue
            is_innermost = step is stack.deserialize and mw_id == last_id
            step.swap(mw_id, timed(middleware, step.name, measures_transport=is_innermost))


def format_timings(timings: dict[str, Any]) -> str:
    """A small table of a call's timings, in microseconds."""
    lines = [f"{'where':<34} {'µs':>10}"]
    steps = timings.get("steps", {})
    for step in sorted(steps, key=lambda name: STEP_ORDER.index(name) if name in STEP_ORDER else len(STEP_ORDER)):
        lines.append(f"{step:<34} {steps[step] * 1e6:>10.1f}")
    lines.append(f"{'HTTP exchange (transport)':<34} {timings.get('transport', 0.0) * 1e6:>10.1f}")
    lines.append("")
    for mw_id, seconds in sorted(timings.get("middleware", {}).items(), key=lambda item: -item[1]):
        lines.append(f"  {mw_id:<32} {seconds * 1e6:>10.1f}")
    return "\n".join(lines)
