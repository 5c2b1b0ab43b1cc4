"""InvokeEndpointWithResponseStream's input and the events of its answer."""

from __future__ import annotations

import attrs

from smruntime.middleware.reprs import fields_repr
from smruntime.types import BodyInput, _body_repr, _sensitive_repr


@attrs.frozen(kw_only=True)
class InvokeEndpointWithResponseStreamInput:
    """The input of InvokeEndpointWithResponseStream (no TargetModel, no EnableExplanations)."""

    __repr__ = fields_repr

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

    __repr__ = fields_repr

    bytes: bytes = attrs.field(repr=_body_repr)
