"""What a call's span and metrics say, from the call's input, context and outcome.

Sans-IO and free of OpenTelemetry: plain dictionaries of attribute names to values, so the
mapping is tested without an SDK and shared by both clients.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from smruntime import errors, keys
from smruntime.operations.common import SERVICE_ID
from smruntime.stack_types import Context

RPC_SYSTEM = "aws-api"
ENDPOINT_NAME = "aws.sagemaker.endpoint_name"
INVOKED_VARIANT = "aws.sagemaker.invoked_production_variant"
ATTEMPTS = "smruntime.attempts"
STREAM_EVENTS = "smruntime.stream.events"
STREAM_TTFE = "smruntime.stream.time_to_first_event"
STREAM_OUTCOME = "smruntime.stream.outcome"
REQUEST_BODY = "smruntime.request.body"
RESPONSE_BODY = "smruntime.response.body"

_TARGETS = (
    ("target_model", "aws.sagemaker.target_model"),
    ("target_variant", "aws.sagemaker.target_variant"),
    ("target_container_hostname", "aws.sagemaker.target_container_hostname"),
    ("inference_component_name", "aws.sagemaker.inference_component_name"),
    ("inference_id", "aws.sagemaker.inference_id"),
    ("session_id", "aws.sagemaker.session_id"),
)
"""Input members recorded on the span when sent, by attribute name."""

_USAGE_LIMIT = 1024 * 1024
"""Bodies larger than this are not parsed for token usage."""


def span_name(operation: str) -> str:
    """``Service.Operation``, as the AWS SDK conventions name a call's span."""
    return f"{SERVICE_ID}.{operation}"


def call_attributes(operation: str, parameters: Any) -> dict[str, Any]:
    """The attributes every call has, spans and metrics alike (low cardinality)."""
    found = {"rpc.system": RPC_SYSTEM, "rpc.service": SERVICE_ID, "rpc.method": operation}
    endpoint_name = getattr(parameters, "endpoint_name", None)
    if isinstance(endpoint_name, str) and endpoint_name:
        found[ENDPOINT_NAME] = endpoint_name
    return found


def target_attributes(parameters: Any) -> dict[str, Any]:
    """The routing facts the caller sent (target model, variant, container, component…)."""
    found = {}
    for member, name in _TARGETS:
        value = getattr(parameters, member, None)
        if isinstance(value, str) and value:
            found[name] = value
    return found


def genai_attributes(parameters: Any, operation_name: str) -> dict[str, Any]:
    """The GenAI conventions' request attributes: the endpoint is the model."""
    found = {"gen_ai.operation.name": operation_name, "gen_ai.provider.name": "aws.sagemaker"}
    endpoint_name = getattr(parameters, "endpoint_name", None)
    if isinstance(endpoint_name, str) and endpoint_name:
        found["gen_ai.request.model"] = endpoint_name
    component = getattr(parameters, "inference_component_name", None)
    if isinstance(component, str) and component:
        found["gen_ai.response.model"] = component
    return found


def transport_attributes(ctx: Context) -> dict[str, Any]:
    """Where the call went and what the service said: server, region, request id, status, attempts."""
    found: dict[str, Any] = {}
    endpoint = ctx.get(keys.ENDPOINT)
    if endpoint is not None:
        parts = urlsplit(endpoint.url)
        if parts.hostname:
            found["server.address"] = parts.hostname
            found["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
    region = ctx.get(keys.SIGNING_REGION) or (endpoint.signing_region if endpoint is not None else None)
    if region is None and ctx.options is not None:
        region = ctx.options.region
    if region:
        found["cloud.region"] = region
    metadata = ctx.metadata
    request_id = metadata.get(keys.REQUEST_ID)
    if request_id:
        found["aws.request_id"] = request_id
    status = metadata.get(keys.HTTP_STATUS)
    if status is not None:
        found["http.response.status_code"] = status
    found[ATTEMPTS] = attempts_made(ctx)
    return found


def attempts_made(ctx: Context) -> int:
    """Attempts the call made: as Retry recorded them; else 1 once one began or answered, 0 for
    a call refused before its first attempt."""
    recorded = ctx.metadata.get(keys.ATTEMPTS)
    if recorded is not None:
        return recorded
    return 1 if ctx.has(keys.ATTEMPT) or ctx.metadata.has(keys.HTTP_STATUS) else 0


def result_attributes(result: Any) -> dict[str, Any]:
    """What the answer says: the variant that served it; an async inference's id."""
    found = {}
    variant = getattr(result, "invoked_production_variant", None)
    if isinstance(variant, str) and variant:
        found[INVOKED_VARIANT] = variant
    inference_id = getattr(result, "inference_id", None)
    if isinstance(inference_id, str) and inference_id:
        found["aws.sagemaker.inference_id"] = inference_id
    return found


def error_type(error: BaseException) -> str:
    """A low-cardinality name for a failure: the service's error code, else the class name.

    When retries ran out, the last attempt's error names it (``smruntime.attempts`` says how
    many there were).
    """
    if isinstance(error, errors.MaxAttemptsExceededError) and error.last_error is not None:
        error = error.last_error
    if isinstance(error, errors.APIError):
        return error.code
    return type(error).__name__


def error_attributes(error: BaseException) -> dict[str, Any]:
    found: dict[str, Any] = {"error.type": error_type(error)}
    last = error.last_error if isinstance(error, errors.MaxAttemptsExceededError) else error
    if isinstance(last, errors.APIError):
        found["http.response.status_code"] = last.http_status
        if last.request_id:
            found["aws.request_id"] = last.request_id
    return found


def token_usage(result: Any) -> dict[str, Any]:
    """``gen_ai.usage.*`` from a JSON answer's ``usage`` object (OpenAI-style or Bedrock-style
    names); nothing when the answer has none."""
    body = getattr(result, "body", None)
    content_type = getattr(result, "content_type", None) or ""
    if not isinstance(body, bytes) or "json" not in content_type or len(body) > _USAGE_LIMIT:
        return {}
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    usage = document.get("usage") if isinstance(document, dict) else None
    if not isinstance(usage, dict):
        return {}
    found = {}
    for attribute, names in (
        ("gen_ai.usage.input_tokens", ("prompt_tokens", "input_tokens", "inputTokens")),
        ("gen_ai.usage.output_tokens", ("completion_tokens", "output_tokens", "outputTokens")),
    ):
        for name in names:
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                found[attribute] = value
                break
    return found
