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


def compose(stack: Stack, terminal: Handler) -> Callable[[Context, Any], Any]:
    """Compose ``stack`` around ``terminal`` into one callable."""

    def send(ctx: Context, in_: DeserializeInput) -> DeserializeOutput:
        return DeserializeOutput(raw_response=terminal(ctx, in_.request))

    deserialize = _chain(list(stack.deserialize), send)

    def to_deserialize(ctx: Context, in_: FinalizeInput) -> FinalizeOutput:
        return FinalizeOutput(deserialize(ctx, DeserializeInput(in_.request)).result)

    finalize = _chain(list(stack.finalize), to_deserialize)

    def to_finalize(ctx: Context, in_: BuildInput) -> BuildOutput:
        return BuildOutput(finalize(ctx, FinalizeInput(in_.request)).result)

    build = _chain(list(stack.build), to_finalize)

    def to_build(ctx: Context, in_: SerializeInput) -> SerializeOutput:
        return SerializeOutput(build(ctx, BuildInput(in_.request)).result)

    serialize = _chain(list(stack.serialize), to_build)
    new_request = stack.new_request

    def to_serialize(ctx: Context, in_: InitializeInput) -> InitializeOutput:
        return InitializeOutput(serialize(ctx, SerializeInput(in_.parameters, new_request())).result)

    initialize = _chain(list(stack.initialize), to_serialize)

    def run(ctx: Context, parameters: Any) -> Any:
        return initialize(ctx, InitializeInput(parameters)).result

    return run
