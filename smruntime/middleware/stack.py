"""The stack: five steps run in order, composed into one handler chain."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

import attrs

from smruntime.middleware.context import Context
from smruntime.middleware.errors import StackError
from smruntime.middleware.step import (
    AnyMiddleware,
    AsyncNext,
    BuildStep,
    DeserializeStep,
    FinalizeStep,
    InitializeStep,
    Next,
    SerializeStep,
    Step,
)
from smruntime.middleware.transform import After, Before, Failed, hooks
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

Handler = Callable[[Context[Any], Any], Any]
"""The terminal handler: ``handler(ctx, request) -> raw response`` (the HTTP client)."""

AsyncHandler = Callable[[Context[Any], Any], Awaitable[Any]]
"""The terminal handler of an asyncio chain: ``await handler(ctx, request) -> raw response``."""


def _no_request() -> Any:
    return None


@attrs.define(slots=True, eq=False, repr=False, str=False)
class Stack:
    """An operation's middleware, in five ordered steps.

    ``new_request`` makes the request object the Serialize step starts from; the steps
    raise ``error_type`` when a mutation breaks a rule (a client passes its own subclass of
    :class:`StackError`). A stack and its steps are not safe to modify concurrently; each
    call gets its own.
    """

    id: str
    new_request: Callable[[], Any] = _no_request
    error_type: type[StackError] = attrs.field(default=StackError, kw_only=True)
    initialize: InitializeStep = attrs.field(factory=InitializeStep, init=False)
    serialize: SerializeStep = attrs.field(factory=SerializeStep, init=False)
    build: BuildStep = attrs.field(factory=BuildStep, init=False)
    finalize: FinalizeStep = attrs.field(factory=FinalizeStep, init=False)
    deserialize: DeserializeStep = attrs.field(factory=DeserializeStep, init=False)

    def __attrs_post_init__(self) -> None:
        for step in self.steps:
            step.error_type = self.error_type

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

    def handler(self, terminal: Handler) -> Callable[[Context[Any], Any], Any]:
        """The composed chain: ``chain(ctx, parameters) -> result``.

        The chain is a snapshot: later changes to the stack do not affect it.
        """
        return compose(self, terminal)

    def async_handler(self, terminal: AsyncHandler) -> Callable[[Context[Any], Any], Awaitable[Any]]:
        """The composed asyncio chain: ``await chain(ctx, parameters) -> result``.

        Raises :class:`StackError` when a middleware has only a sync ``handle``: it would
        block the event loop (a :class:`~smruntime.middleware.Transform` runs on both).
        """
        return compose_async(self, terminal)


def _escape(text: str) -> str:
    return text.replace("\n", "\\n").replace("\r", "\\r")


# -- composing: one link per middleware, or per run of input-only transforms -------------
#
# The sync and the async chain are linked alike; only the awaits differ. A transform's hooks
# are called directly, so a transform costs no more than a hand-written ``handle``, and a
# run of transforms that only change the input costs one link in all.


def _fold(step: Step[Any, Any], last: Any, run_of: Any, transform_link: Any, link: Any, shell: str) -> Any:
    """The step's middleware folded around ``last``, the first listed outermost; the links
    (sync or async, for middleware calling ``shell``) come from the three functions given."""
    next_fn = last
    run: list[Before] = []
    for middleware, found in reversed([(middleware, hooks(middleware, shell)) for middleware in step]):
        if found is not None and found[1] is None and found[2] is None:
            if found[0] is not None:
                run.insert(0, found[0])
            continue
        next_fn = run_of(run, next_fn)
        run = []
        next_fn = link(step, middleware, next_fn) if found is None else transform_link(found[0], found[1], found[2], next_fn)
    return run_of(run, next_fn)


def _chain(step: Step[InT, OutT], last: Next[InT, OutT]) -> Next[InT, OutT]:
    chain: Next[InT, OutT] = _fold(step, last, _run_of, _transform_link, _link, "handle")
    return chain


def _run_of(befores: list[Before], next_fn: Next[Any, Any]) -> Next[Any, Any]:
    if not befores:
        return next_fn
    if len(befores) == 1:
        before = befores[0]

        def one(ctx: Context[Any], in_: Any) -> Any:
            return next_fn(ctx, before(ctx, in_))

        return one
    hooks_in_order = tuple(befores)

    def run(ctx: Context[Any], in_: Any) -> Any:
        for before in hooks_in_order:
            in_ = before(ctx, in_)
        return next_fn(ctx, in_)

    return run


def _transform_link(before: Before | None, after: After | None, failed: Failed | None, next_fn: Next[Any, Any]) -> Next[Any, Any]:
    # The shapes the built-in transforms take get a closure each; the rest share the general one.
    if before is None and after is not None and failed is None:

        def call_after(ctx: Context[Any], in_: Any) -> Any:
            return after(ctx, in_, next_fn(ctx, in_))

        return call_after
    if before is None and after is None and failed is not None:

        def call_failed(ctx: Context[Any], in_: Any) -> Any:
            try:
                return next_fn(ctx, in_)
            except BaseException as error:
                failed(ctx, in_, error)
                raise

        return call_failed
    if before is None and after is not None and failed is not None:

        def call_after_or_failed(ctx: Context[Any], in_: Any) -> Any:
            try:
                out = next_fn(ctx, in_)
            except BaseException as error:
                failed(ctx, in_, error)
                raise
            return after(ctx, in_, out)

        return call_after_or_failed
    if before is not None and after is None and failed is not None:

        def call_before_or_failed(ctx: Context[Any], in_: Any) -> Any:
            in_ = before(ctx, in_)
            try:
                return next_fn(ctx, in_)
            except BaseException as error:
                failed(ctx, in_, error)
                raise

        return call_before_or_failed
    if before is not None and after is not None and failed is None:

        def call_around(ctx: Context[Any], in_: Any) -> Any:
            in_ = before(ctx, in_)
            return after(ctx, in_, next_fn(ctx, in_))

        return call_around
    first: Before = before or _keep_input
    last: After = after or _keep_output
    on_error: Failed = failed or _ignore_error

    def call(ctx: Context[Any], in_: Any) -> Any:
        in_ = first(ctx, in_)
        try:
            out = next_fn(ctx, in_)
        except BaseException as error:
            on_error(ctx, in_, error)
            raise
        return last(ctx, in_, out)

    return call


def _keep_input(ctx: Context[Any], in_: Any) -> Any:
    return in_


def _keep_output(ctx: Context[Any], in_: Any, out: Any) -> Any:
    return out


def _ignore_error(ctx: Context[Any], in_: Any, error: BaseException) -> None:
    """The error propagates unchanged."""


def _link(step: Step[Any, Any], middleware: AnyMiddleware[Any, Any], next_fn: Next[Any, Any]) -> Next[Any, Any]:
    handle = getattr(middleware, "handle", None)
    if handle is None:
        raise step.error_type(
            f"middleware {middleware.id} in the {step.name} has only an async ahandle(ctx, in_, next): "
            "a sync client cannot run it; give it a handle(ctx, in_, next) as well, "
            "or write it as a Transform if it only changes the input or the output"
        )

    def call(ctx: Context[Any], in_: Any) -> Any:
        return handle(ctx, in_, next_fn)

    return call


def _achain(step: Step[Any, Any], last: AsyncNext[Any, Any]) -> AsyncNext[Any, Any]:
    chain: AsyncNext[Any, Any] = _fold(step, last, _arun_of, _atransform_link, _alink, "ahandle")
    return chain


def _arun_of(befores: list[Before], next_fn: AsyncNext[Any, Any]) -> AsyncNext[Any, Any]:
    if not befores:
        return next_fn
    hooks_in_order = tuple(befores)

    def run(ctx: Context[Any], in_: Any) -> Awaitable[Any]:
        # Not a coroutine itself: it hands back the awaitable of the rest of the chain.
        for before in hooks_in_order:
            in_ = before(ctx, in_)
        return next_fn(ctx, in_)

    return run


def _atransform_link(
    before: Before | None, after: After | None, failed: Failed | None, next_fn: AsyncNext[Any, Any]
) -> AsyncNext[Any, Any]:
    first: Before = before or _keep_input
    last: After = after or _keep_output
    on_error: Failed = failed or _ignore_error

    async def call(ctx: Context[Any], in_: Any) -> Any:
        in_ = first(ctx, in_)
        try:
            out = await next_fn(ctx, in_)
        except BaseException as error:
            on_error(ctx, in_, error)
            raise
        return last(ctx, in_, out)

    return call


def _alink(step: Step[Any, Any], middleware: AnyMiddleware[Any, Any], next_fn: AsyncNext[Any, Any]) -> AsyncNext[Any, Any]:
    ahandle = getattr(middleware, "ahandle", None)
    if ahandle is None:
        raise step.error_type(
            f"middleware {middleware.id} in the {step.name} has only a sync handle(ctx, in_, next), "
            "which would block the event loop of an async client: give it an async "
            "ahandle(ctx, in_, next) as well, or write it as a Transform if it only changes "
            "the input or the output"
        )

    def call(ctx: Context[Any], in_: Any) -> Awaitable[Any]:
        return ahandle(ctx, in_, next_fn)  # type: ignore[no-any-return]

    return call


def compose(stack: Stack, terminal: Handler) -> Callable[[Context[Any], Any], Any]:
    """Compose ``stack`` around ``terminal`` into one callable."""

    def send(ctx: Context[Any], in_: DeserializeInput[Any]) -> DeserializeOutput[Any, Any]:
        return DeserializeOutput(terminal(ctx, in_.request))

    deserialize = _chain(stack.deserialize, send)

    def to_deserialize(ctx: Context[Any], in_: FinalizeInput[Any]) -> FinalizeOutput[Any]:
        return FinalizeOutput(deserialize(ctx, DeserializeInput(in_.request)).result)

    finalize = _chain(stack.finalize, to_deserialize)

    def to_finalize(ctx: Context[Any], in_: BuildInput[Any]) -> BuildOutput[Any]:
        return BuildOutput(finalize(ctx, FinalizeInput(in_.request)).result)

    build = _chain(stack.build, to_finalize)

    def to_build(ctx: Context[Any], in_: SerializeInput[Any, Any]) -> SerializeOutput[Any]:
        return SerializeOutput(build(ctx, BuildInput(in_.request)).result)

    serialize = _chain(stack.serialize, to_build)
    new_request = stack.new_request

    def to_serialize(ctx: Context[Any], in_: InitializeInput[Any]) -> InitializeOutput[Any]:
        return InitializeOutput(serialize(ctx, SerializeInput(in_.parameters, new_request())).result)

    initialize = _chain(stack.initialize, to_serialize)

    def run(ctx: Context[Any], parameters: Any) -> Any:
        return initialize(ctx, InitializeInput(parameters)).result

    return run


def compose_async(stack: Stack, terminal: AsyncHandler) -> Callable[[Context[Any], Any], Awaitable[Any]]:
    """Compose ``stack`` around an async ``terminal`` into one coroutine function."""

    async def send(ctx: Context[Any], in_: DeserializeInput[Any]) -> DeserializeOutput[Any, Any]:
        return DeserializeOutput(await terminal(ctx, in_.request))

    deserialize = _achain(stack.deserialize, send)

    async def to_deserialize(ctx: Context[Any], in_: FinalizeInput[Any]) -> FinalizeOutput[Any]:
        return FinalizeOutput((await deserialize(ctx, DeserializeInput(in_.request))).result)

    finalize = _achain(stack.finalize, to_deserialize)

    async def to_finalize(ctx: Context[Any], in_: BuildInput[Any]) -> BuildOutput[Any]:
        return BuildOutput((await finalize(ctx, FinalizeInput(in_.request))).result)

    build = _achain(stack.build, to_finalize)

    async def to_build(ctx: Context[Any], in_: SerializeInput[Any, Any]) -> SerializeOutput[Any]:
        return SerializeOutput((await build(ctx, BuildInput(in_.request))).result)

    serialize = _achain(stack.serialize, to_build)
    new_request = stack.new_request

    async def to_serialize(ctx: Context[Any], in_: InitializeInput[Any]) -> InitializeOutput[Any]:
        return InitializeOutput((await serialize(ctx, SerializeInput(in_.parameters, new_request()))).result)

    initialize = _achain(stack.initialize, to_serialize)

    async def run(ctx: Context[Any], parameters: Any) -> Any:
        return (await initialize(ctx, InitializeInput(parameters))).result

    return run
