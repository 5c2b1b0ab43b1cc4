"""The generic middleware framework: a stack of five ordered steps.

A call runs ``Initialize -> Serialize -> Build -> Finalize -> Deserialize -> handler``.
Within a step the first listed middleware runs first on the way in and last on the
way out. This package knows nothing about SageMaker, HTTP or AWS.

One stack serves a sync chain (``stack.handler(terminal)``) and an asyncio chain
(``stack.async_handler(terminal)``). A middleware takes one of three forms:

- a :class:`Transform` (``before``/``after``/``failed`` hooks, no ``next`` to call): runs on
  both chains, derived by the framework. Middleware that only change what passes through
  them, most of the SDK's, are transforms.
- ``handle(ctx, in_, next)`` (sync) and ``async ahandle(ctx, in_, next)`` (asyncio): a
  middleware that waits or does I/O writes its logic once as a sans-IO core and wraps it in
  the two thin shells. With only ``handle`` it runs on sync chains; composing it into an
  asyncio chain raises :class:`StackError` rather than block the event loop. With only
  ``ahandle`` it runs on asyncio chains only.
"""

from typing import TYPE_CHECKING

from smruntime.middleware.adapters import (
    MiddlewareFunc,
    build_middleware,
    deserialize_middleware,
    finalize_middleware,
    initialize_middleware,
    serialize_middleware,
)
from smruntime.middleware.context import Context, Metadata, MetadataKey, StackKey
from smruntime.middleware.errors import StackError
from smruntime.middleware.stack import AsyncHandler, Handler, Stack, compose, compose_async
from smruntime.middleware.step import (
    AnyMiddleware,
    AsyncMiddleware,
    AsyncNext,
    BuildStep,
    DeserializeStep,
    FinalizeStep,
    InitializeStep,
    Middleware,
    Next,
    Position,
    SerializeStep,
    Step,
)
from smruntime.middleware.transform import Transform
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

if TYPE_CHECKING:
    from smruntime.middleware.async_adapters import AsyncMiddlewareFunc

__all__ = [
    "AnyMiddleware",
    "AsyncHandler",
    "AsyncMiddleware",
    "AsyncMiddlewareFunc",
    "AsyncNext",
    "BuildInput",
    "BuildOutput",
    "BuildStep",
    "Context",
    "DeserializeInput",
    "DeserializeOutput",
    "DeserializeStep",
    "FinalizeInput",
    "FinalizeOutput",
    "FinalizeStep",
    "Handler",
    "InitializeInput",
    "InitializeOutput",
    "InitializeStep",
    "Metadata",
    "MetadataKey",
    "Middleware",
    "MiddlewareFunc",
    "Next",
    "Position",
    "SerializeInput",
    "SerializeOutput",
    "SerializeStep",
    "Stack",
    "StackError",
    "StackKey",
    "Step",
    "Transform",
    "build_middleware",
    "compose",
    "compose_async",
    "deserialize_middleware",
    "finalize_middleware",
    "initialize_middleware",
    "serialize_middleware",
]


def __getattr__(name: str) -> object:
    # The asyncio adapter's class loads when first used (an async def middleware, AsyncClient).
    if name == "AsyncMiddlewareFunc":
        from smruntime.middleware.async_adapters import AsyncMiddlewareFunc

        return AsyncMiddlewareFunc
    raise AttributeError(f"module 'smruntime.middleware' has no attribute {name!r}")
