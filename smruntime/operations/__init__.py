"""One module per operation: validate, serialize, deserialize, register."""

from __future__ import annotations

from functools import cache

from smruntime.operations.spec import Operation


@cache
def _registry() -> dict[str, Operation]:
    from smruntime.operations import invoke_endpoint, invoke_endpoint_async, invoke_endpoint_with_response_stream

    return {
        module.NAME: module.OPERATION
        for module in (invoke_endpoint, invoke_endpoint_with_response_stream, invoke_endpoint_async)
    }


def get(name: str) -> Operation:
    """The operation named ``name`` (API name, e.g. ``InvokeEndpoint``)."""
    registry = _registry()
    try:
        return registry[name]
    except KeyError:
        raise KeyError(f"unknown operation {name!r}; known: {', '.join(sorted(registry))}") from None


def names() -> list[str]:
    """Every operation's API name."""
    return sorted(_registry())


__all__ = ["Operation", "get", "names"]
