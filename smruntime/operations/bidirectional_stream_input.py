"""InvokeEndpointWithBidirectionalStream: its input, its header bindings and their validation.

Validation runs before any I/O and reports every problem at once, naming the field and the
service model's rule.
"""

from __future__ import annotations

import re
from typing import Any, Final

import attrs

from smruntime import errors
from smruntime import validation as v
from smruntime.operations import fields

__all__ = ["OPERATION", "BidirectionalStreamInput", "request_headers", "validate"]

OPERATION: Final = "InvokeEndpointWithBidirectionalStream"
MEMBERS: Final = ("endpoint_name", "target_variant", "model_invocation_path", "model_query_string")

INVOCATION_PATH_PATTERN: Final = re.compile(r"[A-Za-z0-9\-._]+(?:/[A-Za-z0-9\-._]+)*")
_PARAM: Final = r"[a-zA-Z0-9][A-Za-z0-9_-]*=(?:[A-Za-z0-9._~\-]|%[0-9A-Fa-f]{2})+"
QUERY_STRING_PATTERN: Final = re.compile(rf"{_PARAM}(?:&{_PARAM})*")


@attrs.frozen
class BidirectionalStreamInput:
    """What opens a bidirectional stream (the events themselves are sent on the open stream)."""

    endpoint_name: str
    target_variant: str | None = None
    model_invocation_path: str | None = None
    model_query_string: str | None = None


def validate(params: BidirectionalStreamInput | Any) -> None:
    """Raise :class:`~smruntime.errors.InvalidParamsError` listing every broken rule."""
    problems: v.Problems = []
    fields.endpoint_name(problems, params.endpoint_name)
    fields.name_field(problems, "target_variant", params.target_variant)
    v.string(
        problems,
        "model_invocation_path",
        params.model_invocation_path,
        min_len=1,
        max_len=100,
        pattern=INVOCATION_PATH_PATTERN,
        pattern_text="path segments of letters, digits and -._ joined by / (no leading /)",
    )
    v.string(
        problems,
        "model_query_string",
        params.model_query_string,
        min_len=1,
        max_len=2048,
        pattern=QUERY_STRING_PATTERN,
        pattern_text="name=value pairs joined by & (values percent-encoded)",
    )
    if problems:
        fields.in_member_order(problems, MEMBERS)
        raise errors.InvalidParamsError(problems, operation=OPERATION)


def request_headers(params: BidirectionalStreamInput) -> dict[str, str]:
    """The HTTP/2 request headers the input binds to (lower case, as HTTP/2 requires)."""
    headers = {"content-type": "application/vnd.amazon.eventstream"}
    if params.target_variant is not None:
        headers["x-amzn-sagemaker-target-variant"] = params.target_variant
    if params.model_invocation_path is not None:
        headers["x-amzn-sagemaker-model-invocation-path"] = params.model_invocation_path
    if params.model_query_string is not None:
        headers["x-amzn-sagemaker-model-query-string"] = params.model_query_string
    return headers
