"""Operation inputs and outputs, stream events, and result metadata.

InvokeEndpoint's input and output are defined here; the other operations' live in
submodules (:mod:`smruntime.types.response_stream`, :mod:`smruntime.types.bidirectional`,
:mod:`smruntime.types.async_inference`) that load when first used, so a program that only
calls InvokeEndpoint does not create their classes. Every name is importable from here.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

import attrs

from smruntime import keys
from smruntime.lazy_names import lazy_getattr
from smruntime.middleware.context import Metadata
from smruntime.middleware.reprs import fields_repr

if TYPE_CHECKING:
    from smruntime.types.async_inference import InvokeEndpointAsyncInput, InvokeEndpointAsyncOutput
    from smruntime.types.bidirectional import RequestPayloadPart, ResponsePayloadPart
    from smruntime.types.response_stream import InvokeEndpointWithResponseStreamInput, PayloadPart

BodyInput = bytes | bytearray | str | IO[bytes]
"""A request body: bytes, bytearray, str (sent as UTF-8) or a binary file (seekable for retries)."""


def _body_repr(value: Any) -> str:
    """A body's length and kind, never its content."""
    if value is None:
        return "None"
    if isinstance(value, (bytes, bytearray, str)):
        return f"<{len(value)} {'chars' if isinstance(value, str) else 'bytes'}>"
    return f"<{type(value).__name__}>"


def _sensitive_repr(value: Any) -> str:
    """Whether a sensitive field is set, never its value."""
    return "None" if value is None else "<sensitive>"


class ResultMetadata:
    """What the call learned on the way: request id, attempts, HTTP status, and more.

    A read-only view over the metadata the middleware recorded; ``values`` has all of it.
    """

    __slots__ = ("_metadata",)

    def __init__(self, metadata: Metadata | None = None) -> None:
        self._metadata = metadata if metadata is not None else Metadata()

    @property
    def request_id(self) -> str | None:
        return self._metadata.get(keys.REQUEST_ID)

    @property
    def attempts(self) -> int:
        return self._metadata.get(keys.ATTEMPTS, 1)

    @property
    def http_status(self) -> int | None:
        return self._metadata.get(keys.HTTP_STATUS)

    @property
    def invocation_id(self) -> str | None:
        return self._metadata.get(keys.INVOCATION_ID_META)

    @property
    def retry_delays(self) -> tuple[float, ...]:
        return tuple(self._metadata.get(keys.RETRY_DELAYS, []))

    @property
    def timings(self) -> dict[str, Any]:
        """Per-step and per-middleware durations, when a timing api option recorded them."""
        return dict(self._metadata.get(keys.TIMINGS, {}))

    @property
    def values(self) -> Metadata:
        return self._metadata

    def __repr__(self) -> str:
        return (
            f"ResultMetadata(request_id={self.request_id!r}, attempts={self.attempts!r}, "
            f"http_status={self.http_status!r}, invocation_id={self.invocation_id!r})"
        )


@attrs.frozen(kw_only=True)
class InvokeEndpointInput:
    """The input of InvokeEndpoint; ``endpoint_name`` and ``body`` are required."""

    __repr__ = fields_repr

    endpoint_name: str
    body: BodyInput = attrs.field(repr=_body_repr)
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = attrs.field(default=None, repr=_sensitive_repr)
    target_model: str | None = None
    target_variant: str | None = None
    target_container_hostname: str | None = None
    inference_id: str | None = None
    enable_explanations: str | None = None
    inference_component_name: str | None = None
    session_id: str | None = None
    prefix_aware_id: str | None = None


@attrs.frozen(kw_only=True)
class InvokeEndpointOutput:
    """The model's answer and what SageMaker said about it."""

    __repr__ = fields_repr

    body: bytes = attrs.field(repr=_body_repr)
    content_type: str | None = None
    invoked_production_variant: str | None = None
    custom_attributes: str | None = attrs.field(default=None, repr=_sensitive_repr)
    new_session_id: str | None = None
    closed_session_id: str | None = None
    metadata: ResultMetadata = attrs.field(factory=ResultMetadata, eq=False)


# The other operations' classes, created when first used.
_LAZY = {
    "InvokeEndpointAsyncInput": "smruntime.types.async_inference",
    "InvokeEndpointAsyncOutput": "smruntime.types.async_inference",
    "InvokeEndpointWithResponseStreamInput": "smruntime.types.response_stream",
    "PayloadPart": "smruntime.types.response_stream",
    "RequestPayloadPart": "smruntime.types.bidirectional",
    "ResponsePayloadPart": "smruntime.types.bidirectional",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "BodyInput",
    "InvokeEndpointAsyncInput",
    "InvokeEndpointAsyncOutput",
    "InvokeEndpointInput",
    "InvokeEndpointOutput",
    "InvokeEndpointWithResponseStreamInput",
    "PayloadPart",
    "RequestPayloadPart",
    "ResponsePayloadPart",
    "ResultMetadata",
]
