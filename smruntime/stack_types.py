"""The middleware framework's generic types, as smruntime's stacks carry them.

The framework (:mod:`smruntime.middleware`) knows nothing of AWS, so its ``Context`` and step
inputs and outputs are generic. smruntime's own middleware import these parameterized
versions instead, under the same names, so mypy checks what they read: ``ctx.options`` is an
:class:`~smruntime.options.Options` and ``in_.request`` an :class:`~smruntime.http.HTTPRequest`.
Parameters and results are ``object`` here because most middleware serve every operation; an
operation's own middleware narrow them (``SerializeInput[InvokeEndpointInput, HTTPRequest]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from smruntime import middleware as _mw
from smruntime.http import HTTPRequest, HTTPResponse

if TYPE_CHECKING:
    # Type-only: Options names the signer, retryer and logging types whose middleware use
    # these aliases, so a run-time import would be a cycle.
    from smruntime.options import Options
    from smruntime.transport.async_protocol import AsyncHTTPResponse

__all__ = [
    "AsyncDeserializeOutput",
    "BuildInput",
    "BuildOutput",
    "Context",
    "DeserializeInput",
    "DeserializeOutput",
    "FinalizeInput",
    "FinalizeOutput",
    "InitializeInput",
    "InitializeOutput",
    "SerializeInput",
    "SerializeOutput",
]

Context: TypeAlias = "_mw.Context[Options]"
InitializeInput: TypeAlias = _mw.InitializeInput[object]
InitializeOutput: TypeAlias = _mw.InitializeOutput[object]
SerializeInput: TypeAlias = _mw.SerializeInput[object, HTTPRequest]
SerializeOutput: TypeAlias = _mw.SerializeOutput[object]
BuildInput: TypeAlias = _mw.BuildInput[HTTPRequest]
BuildOutput: TypeAlias = _mw.BuildOutput[object]
FinalizeInput: TypeAlias = _mw.FinalizeInput[HTTPRequest]
FinalizeOutput: TypeAlias = _mw.FinalizeOutput[object]
DeserializeInput: TypeAlias = _mw.DeserializeInput[HTTPRequest]
DeserializeOutput: TypeAlias = _mw.DeserializeOutput[HTTPResponse, object]
"""What a sync chain's Deserialize step returns (and an asyncio chain's, for an answer read whole)."""
AsyncDeserializeOutput: TypeAlias = "_mw.DeserializeOutput[HTTPResponse | AsyncHTTPResponse, object]"
"""What an asyncio chain's Deserialize step returns: a streamed answer is still arriving."""
