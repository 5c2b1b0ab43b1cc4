"""InvokeEndpointWithBidirectionalStream: its input, its header bindings and their validation,
both derived from the operation's member table (:mod:`smruntime.service_model`).

Validation runs before any I/O and reports every problem at once, naming the field and the
service model's rule.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from smruntime.middleware.reprs import fields_repr
from smruntime.operations import fields
from smruntime.service_model import INVOKE_ENDPOINT_WITH_BIDIRECTIONAL_STREAM

__all__ = ["OPERATION", "BidirectionalStreamInput", "request_headers", "validate"]

OPERATION: Final = "InvokeEndpointWithBidirectionalStream"
SHAPE: Final = INVOKE_ENDPOINT_WITH_BIDIRECTIONAL_STREAM
_HEADERS: Final = tuple((member.name, member.location_name.lower()) for member in SHAPE.at("header") if member.location_name)


@attrs.frozen
class BidirectionalStreamInput:
    """What opens a bidirectional stream (the events themselves are sent on the open stream)."""

    __repr__ = fields_repr

    endpoint_name: str
    target_variant: str | None = None
    model_invocation_path: str | None = None
    model_query_string: str | None = None


_validate = fields.validator(SHAPE)


def validate(params: BidirectionalStreamInput | Any) -> None:
    """Raise :class:`~smruntime.errors.InvalidParamsError` listing every broken rule."""
    _validate(params, OPERATION)


def request_headers(params: BidirectionalStreamInput) -> dict[str, str]:
    """The HTTP/2 request headers the input binds to (lower case, as HTTP/2 requires)."""
    headers = {"content-type": "application/vnd.amazon.eventstream"}
    for attribute, header in _HEADERS:
        value = getattr(params, attribute)
        if value is not None:
            headers[header] = value
    return headers
