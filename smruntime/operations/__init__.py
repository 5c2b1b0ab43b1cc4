"""One module per operation: validate, serialize, deserialize, register."""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING, Any

from smruntime.operations.spec import Operation

if TYPE_CHECKING:
    from smruntime.operations.duplex import DuplexOperation

_MODULES = {
    "InvokeEndpoint": "smruntime.operations.invoke_endpoint",
    "InvokeEndpointWithResponseStream": "smruntime.operations.invoke_endpoint_with_response_stream",
    "InvokeEndpointAsync": "smruntime.operations.invoke_endpoint_async",
    "InvokeEndpointWithBidirectionalStream": "smruntime.operations.invoke_endpoint_with_bidirectional_stream",
}


def unknown_operation(name: str) -> KeyError:
    """The error for an operation name (as the caller wrote it) that names none of the API's."""
    return KeyError(f"unknown operation {name!r}; known: {', '.join(sorted(_MODULES))}")


@cache
def get(name: str) -> Operation[Any, Any] | DuplexOperation:
    """The operation named ``name`` (API name, e.g. ``InvokeEndpoint``).

    Each operation's module is imported on first use: the stream operation pulls in the
    event-stream codec, which a client that never streams should not pay for at start-up.
    """
    module = _MODULES.get(name)
    if module is None:
        raise unknown_operation(name)
    operation: Operation[Any, Any] | DuplexOperation = importlib.import_module(module).OPERATION
    return operation


def names() -> list[str]:
    """Every operation's API name."""
    return sorted(_MODULES)


__all__ = ["Operation", "get", "names", "unknown_operation"]
