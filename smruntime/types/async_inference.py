"""InvokeEndpointAsync's input and output."""

from __future__ import annotations

import attrs

from smruntime.middleware.reprs import fields_repr
from smruntime.types import BodyInput, ResultMetadata, _body_repr, _sensitive_repr


@attrs.frozen(kw_only=True)
class InvokeEndpointAsyncInput:
    """The input of InvokeEndpointAsync: the payload waits in ``input_location`` or, when it is
    small (at most 128,000 bytes), travels inline as ``body`` — exactly one of the two."""

    __repr__ = fields_repr

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

    __repr__ = fields_repr

    inference_id: str | None = None
    output_location: str | None = None
    failure_location: str | None = None
    metadata: ResultMetadata = attrs.field(factory=ResultMetadata, eq=False)
