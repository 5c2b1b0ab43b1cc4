"""The stack: five steps run in order, composed into one handler chain."""

from __future__ import annotations

from typing import Any, Callable, Sequence, TypeVar

import attrs

from smruntime.middleware.context import Context
from smruntime.middleware.step import (
    BuildStep,
    DeserializeStep,
    FinalizeStep,
    InitializeStep,
    Middleware,
    Next,
    SerializeStep,
    Step,
)
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

Handler = Callable[[Context, Any], Any]
"""The terminal handler: ``handler(ctx, request) -> raw response`` (the HTTP client)."""


def _no_request() -> Any:
    return None


@attrs.define(slots=True, eq=False, repr=False, str=False)
class Stack:
    """An operation's middleware, in five ordered steps.

    ``new_request`` makes the request object the Serialize step starts from. A stack and
    its steps are not safe to modify concurrently; each call gets its own.
    """

    id: str
    new_request: Callable[[], Any] = _no_request
    initialize: InitializeStep = attrs.field(factory=InitializeStep, init=False)
    serialize: SerializeStep = attrs.field(factory=SerializeStep, init=False)
    build: BuildStep = attrs.field(factory=BuildStep, init=False)
    finalize: FinalizeStep = attrs.field(factory=FinalizeStep, init=False)
    deserialize: DeserializeStep = attrs.field(factory=DeserializeStep, init=False)

    @property
    def steps(self) -> tuple[Step[Any, Any], ...]:
        return (self.initialize, self.serialize, self.build, self.finalize, self.deserialize)

    def list(self) -> list[str]:
        """``[id, "Initialize stack step", ids…, "Serialize stack step", …]``."""
        names = [self.id]
        for step in self.steps:
            names.append(step.name)
            names.extend(step.list())
        return names

    def __str__(self) -> str:
        lines = [_escape(self.id) + "\n"]
        for step in self.steps:
            lines.append("\t" + step.name + "\n")
            lines.extend("\t\t" + _escape(mw_id) + "\n" for mw_id in step.list())
        return "".join(lines)

    def __repr__(self) -> str:
        return f"Stack({self.id!r}, {self.list()[1:]!r})"

    def handler(self, terminal: Handler) -> Callable[[Context, Any], Any]:
        """The composed chain: ``chain(ctx, parameters) -> result``.

        The chain is a snapshot: later changes to the stack do not affect it.
        """
        return compose(self, terminal)


def _escape(text: str) -> str:
    return text.replace("\n", "\\n").replace("\r", "\\r")


def _chain(middlewares: Sequence[Middleware[InT, OutT]], last: Next[InT, OutT]) -> Next[InT, OutT]:
    # Fold from the end so the first listed middleware is the outermost.
    next_fn = last
    for middleware in reversed(middlewares):
        next_fn = _link(middleware, next_fn)
    return next_fn


def _link(middleware: Middleware[InT, OutT], next_fn: Next[InT, OutT]) -> Next[InT, OutT]:
    handle = middleware.handle

    def call(ctx: Context, in_: InT) -> OutT:
        return handle(ctx, in_, next_fn)

    return call


Handle = Callable[[Context, InT, Next[InT, OutT]], OutT]
"""A middleware's ``handle``: ``handle(ctx, in_, next)``."""


def _entry(step: Step[InT, OutT], last: Next[InT, OutT]) -> tuple[Handle[InT, OutT], Next[InT, OutT]]:
    """``(handle, next)``: the step's first middleware and the chain after it.

    The hand-off into a step calls ``handle(ctx, in_, next)`` itself rather than through a
    link of its own: one call fewer per step, on every call.
    """
    middlewares = list(step)
    if not middlewares:
        return _pass_through, last
    return middlewares[0].handle, _chain(middlewares[1:], last)


def _pass_through(ctx: Context, in_: Any, next: Next[Any, Any]) -> Any:
    return next(ctx, in_)


def compose(stack: Stack, terminal: Handler) -> Callable[[Context, Any], Any]:
    """Compose ``stack`` around ``terminal`` into one callable."""

    def send(ctx: Context, in_: DeserializeInput) -> DeserializeOutput:
        return DeserializeOutput(terminal(ctx, in_.request))

    deserialize, after_deserialize = _entry(stack.deserialize, send)

    def to_deserialize(ctx: Context, in_: FinalizeInput) -> FinalizeOutput:
        return FinalizeOutput(deserialize(ctx, DeserializeInput(in_.request), after_deserialize).result)

    finalize, after_finalize = _entry(stack.finalize, to_deserialize)

    def to_finalize(ctx: Context, in_: BuildInput) -> BuildOutput:
        return BuildOutput(finalize(ctx, FinalizeInput(in_.request), after_finalize).result)

    build, after_build = _entry(stack.build, to_finalize)

    def to_build(ctx: Context, in_: SerializeInput) -> SerializeOutput:
        return SerializeOutput(build(ctx, BuildInput(in_.request), after_build).result)

    serialize, after_serialize = _entry(stack.serialize, to_build)
    new_request = stack.new_request

    def to_serialize(ctx: Context, in_: InitializeInput) -> InitializeOutput:
        return InitializeOutput(serialize(ctx, SerializeInput(in_.parameters, new_request()), after_serialize).result)

    initialize, after_initialize = _entry(stack.initialize, to_serialize)

    def run(ctx: Context, parameters: Any) -> Any:
        return initialize(ctx, InitializeInput(parameters), after_initialize).result

    return run
