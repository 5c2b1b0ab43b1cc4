"""Event steps: middleware that sees each event of a duplex stream, one by one.

An operation that streams events both ways (a bidirectional stream) has, besides the five
steps that open the stream, two event steps: every event the caller sends runs through the
``SendEvent`` step before it is encoded, signed and written, and every event that arrives runs
through the ``ReceiveEvent`` step before the caller sees it. An :class:`EventStreamStack`
holds them and prints them after the five steps.

An event middleware is what a step holds: an ``id`` and ``handle(ctx, event, next)``, or a
:class:`~smruntime.middleware.Transform` whose ``before(ctx, event)`` returns the event to
pass on. ``next(ctx, event)`` passes an event on and returns nothing, so a middleware may
change an event (pass on another), drop it (not call ``next``) or split it (call ``next``
more than once). ``ctx`` is the call's context, the one the stream was opened with: a
middleware can keep per-stream state in it and report through ``ctx.metadata``.

Event middleware run on the event loop, once per event: they must not wait or do I/O.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import attrs

from smruntime.middleware.adapters import MiddlewareFunc
from smruntime.middleware.context import Context
from smruntime.middleware.errors import StackError
from smruntime.middleware.stack import Stack, _chain, _escape
from smruntime.middleware.step import Next, Step

__all__ = [
    "EventChain",
    "EventStreamStack",
    "ReceiveEventStep",
    "SendEventStep",
    "compose_events",
    "event_middleware",
]

EventChain = Callable[[Context[Any], Any], None]
"""A composed event step: ``chain(ctx, event)`` runs the event through every middleware."""


@attrs.define(slots=True, eq=False, repr=False)
class SendEventStep(Step[Any, None]):
    """Each event the caller sends, before it is encoded and signed."""

    name = "SendEvent stack step"


@attrs.define(slots=True, eq=False, repr=False)
class ReceiveEventStep(Step[Any, None]):
    """Each event that arrives, before the caller sees it."""

    name = "ReceiveEvent stack step"


@attrs.define(slots=True, eq=False, repr=False, str=False)
class EventStreamStack(Stack):
    """A :class:`Stack` with the two event steps of a duplex stream.

    ``list()`` and ``str()`` show the five steps, then ``SendEvent stack step`` and
    ``ReceiveEvent stack step``; ``steps`` stays the five that open the stream.
    """

    send_event: SendEventStep = attrs.field(factory=SendEventStep, init=False)
    receive_event: ReceiveEventStep = attrs.field(factory=ReceiveEventStep, init=False)

    def __attrs_post_init__(self) -> None:
        for step in (*self.steps, *self.event_steps):
            step.error_type = self.error_type

    @property
    def event_steps(self) -> tuple[SendEventStep, ReceiveEventStep]:
        return (self.send_event, self.receive_event)

    def list(self) -> list[str]:
        names = Stack.list(self)
        for step in self.event_steps:
            names.append(step.name)
            names.extend(step.list())
        return names

    def __str__(self) -> str:
        lines = [Stack.__str__(self)]
        for step in self.event_steps:
            lines.append("\t" + step.name + "\n")
            lines.extend("\t\t" + _escape(mw_id) + "\n" for mw_id in step.list())
        return "".join(lines)


def compose_events(step: Step[Any, None], terminal: EventChain) -> EventChain:
    """``step``'s middleware around ``terminal``, the first listed outermost.

    Like the sync chain of a stack step: a snapshot, and a middleware with only an async
    ``ahandle`` is refused (events are handled without waiting).
    """
    chain: Next[Any, None] = _chain(step, terminal)
    return chain


def event_middleware(id: str, fn: Callable[[Context[Any], Any, Next[Any, None]], None]) -> MiddlewareFunc[Any, None]:
    """An event middleware from an ID and a plain function ``fn(ctx, event, next)``."""
    if inspect.iscoroutinefunction(fn):
        raise StackError(f"event middleware {id}: events are handled without waiting; give a plain function, not async def")
    return MiddlewareFunc(id, fn)
