"""Typed keys for the values that SDK middleware share within one call.

Values flow down through ``ctx.get``/``ctx.set``; result metadata flows up through
``ctx.metadata``. A user's middleware may read any of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smruntime.middleware.context import MetadataKey, StackKey

if TYPE_CHECKING:
    from smruntime.http import HTTPResponse
    from smruntime.resolved_endpoint import Endpoint

# Values that flow down.
ENDPOINT: StackKey[Endpoint] = StackKey("endpoint")
SIGNING_NAME: StackKey[str] = StackKey("signing_name")
SIGNING_REGION: StackKey[str] = StackKey("signing_region")
PAYLOAD_HASH: StackKey[str] = StackKey("payload_hash")
INVOCATION_ID: StackKey[str] = StackKey("invocation_id")
"""The call's ``amz-sdk-invocation-id``, set by ClientRequestID."""
ATTEMPT: StackKey[int] = StackKey("attempt")
"""The attempt being made, set by Retry: ``FIRST_ATTEMPT``, then one more for each retry."""
CONTINUED_INVOCATION_ID: StackKey[str] = StackKey("continued_invocation_id")
"""Set before the stack runs by a call that goes on from an earlier one (a bidirectional stream
opened again after a refusal): the id ClientRequestID sends instead of a new one."""
FIRST_ATTEMPT: StackKey[int] = StackKey("first_attempt")
"""Set with ``CONTINUED_INVOCATION_ID``: the number Retry gives the call's first attempt (else 1)."""
MAX_ATTEMPTS: StackKey[int] = StackKey("max_attempts")
STREAM_RESPONSE: StackKey[bool] = StackKey("stream_response")
"""True when the operation hands the response body to the caller as a live stream."""
RAW_RESPONSE: StackKey[HTTPResponse] = StackKey("raw_response")
"""The latest attempt's raw HTTP response, set by the transport handler."""
CLOCK_OFFSET: StackKey[float] = StackKey("clock_offset")
"""Seconds to add to the local clock when signing (server time minus local time)."""

# Result metadata that flows up.
REQUEST_ID: MetadataKey[str] = MetadataKey("request_id")
ATTEMPTS: MetadataKey[int] = MetadataKey("attempts")
HTTP_STATUS: MetadataKey[int] = MetadataKey("http_status")
INVOCATION_ID_META: MetadataKey[str] = MetadataKey("invocation_id")
RETRY_DELAYS: MetadataKey[list[float]] = MetadataKey("retry_delays")
TIMINGS: MetadataKey[dict[str, Any]] = MetadataKey("timings")
