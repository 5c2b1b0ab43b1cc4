"""The generic middleware framework: a stack of five ordered steps.

A call runs ``Initialize -> Serialize -> Build -> Finalize -> Deserialize -> handler``.
Within a step the first listed middleware runs first on the way in and last on the
way out. This package knows nothing about SageMaker, HTTP or AWS.
"""

from smruntime.middleware.adapters import (
    MiddlewareFunc,
    build_middleware,
    deserialize_middleware,
    finalize_middleware,
    initialize_middleware,
    serialize_middleware,
)
from smruntime.middleware.context import Context, Metadata, MetadataKey, StackKey
from smruntime.middleware.stack import Handler, Stack, compose
from smruntime.middleware.step import (
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

__all__ = [
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
    "StackKey",
    "Step",
    "build_middleware",
    "compose",
    "deserialize_middleware",
    "finalize_middleware",
    "initialize_middleware",
    "serialize_middleware",
]
