"""Operation inputs and outputs, stream events, and result metadata."""

from __future__ import annotations

from typing import IO, Any

import attrs

from smruntime import keys
from smruntime.middleware.context import Metadata

BodyInput = bytes | bytearray | str | IO[bytes]
"""A request body: bytes, bytearray, str (sent as UTF-8) or a binary file (seekable for retries)."""


def _body_repr(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (bytes, bytearray, str)):
        return f"<{len(value)} {'chars' if isinstance(value, str) else 'bytes'}>"
    return f"<{type(value).__name__}>"


def _sensitive_repr(value: Any) -> str:
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

    body: bytes = attrs.field(repr=_body_repr)
    content_type: str | None = None
    invoked_production_variant: str | None = None
    custom_attributes: str | None = attrs.field(default=None, repr=_sensitive_repr)
    new_session_id: str | None = None
    closed_session_id: str | None = None
    metadata: ResultMetadata = attrs.field(factory=ResultMetadata, eq=False)


@attrs.frozen(kw_only=True)
class InvokeEndpointWithResponseStreamInput:
    """The input of InvokeEndpointWithResponseStream (no TargetModel, no EnableExplanations)."""

    endpoint_name: str
    body: BodyInput = attrs.field(repr=_body_repr)
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = attrs.field(default=None, repr=_sensitive_repr)
    target_variant: str | None = None
    target_container_hostname: str | None = None
    inference_id: str | None = None
    inference_component_name: str | None = None
    session_id: str | None = None
    prefix_aware_id: str | None = None


@attrs.frozen
class PayloadPart:
    """One part of a streamed response, as the model produced it."""

    bytes: bytes = attrs.field(repr=_body_repr)


@attrs.frozen
class RequestPayloadPart:
    """One event sent on a bidirectional stream.

    ``data_type`` is ``UTF8`` or ``BINARY`` (None: the service treats it as ``BINARY``);
    ``completion_state`` is ``PARTIAL`` or ``COMPLETE`` (None: ``COMPLETE``); ``p`` is
    padding that hides the payload's true length.
    """

    bytes: bytes = attrs.field(repr=_body_repr)
    data_type: str | None = None
    completion_state: str | None = None
    p: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class ResponsePayloadPart:
    """One event received on a bidirectional stream, with the headers the model set."""

    bytes: bytes = attrs.field(repr=_body_repr)
    data_type: str | None = None
    completion_state: str | None = None
    p: str | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class InvokeEndpointAsyncInput:
    """The input of InvokeEndpointAsync: the payload waits in ``input_location`` or, when it is
    small (at most 128,000 bytes), travels inline as ``body`` — exactly one of the two."""

    endpoint_name: str
    input_location: str | None = None
    body: BodyInput | None = attrs.field(default=None, repr=_body_repr)
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = attrs.field(default=None, repr=_sensitive_repr)
    inference_id: str | None = None
    request_ttl_seconds: int | None = None
    invocation_timeout_seconds: int | None = None
    s3_output_path_extension: str | None = None
    filename: str | None = None


@attrs.frozen(kw_only=True)
class InvokeEndpointAsyncOutput:
    """Where the result (or the failure) of an async inference will appear."""

    inference_id: str | None = None
    output_location: str | None = None
    failure_location: str | None = None
    metadata: ResultMetadata = attrs.field(factory=ResultMetadata, eq=False)
