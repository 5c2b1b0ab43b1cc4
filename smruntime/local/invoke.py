"""Running a routed invocation's model(s) in a worker thread, within the container timeout.

How model outcomes are answered (the service's behaviour, as far as its public error reports
show it):

- ``ModelFailure(status, message)`` or a container's 4xx/5xx: 424 ModelError,
  ``Received client|server error (status) from <container> with message "..."``,
  ``OriginalStatusCode`` = status, ``OriginalMessage`` = the body (2048 characters at most),
  ``LogStreamArn`` = the endpoint's CloudWatch log group.
- no answer within the endpoint's ``container_timeout``: 424 ModelError with
  ``OriginalStatusCode`` 0 and the service's text, ``Your invocation timed out while waiting
  for a response from container <container>. ...``. The model's thread is not killed; its
  late result is dropped.
- any other exception from a Python model: what a crashed container gives, a ModelError with
  ``OriginalStatusCode`` 500 (the exception is logged on ``smruntime.local``).
- a remote container failing ``GET /ping``: 429 ModelNotReadyException.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Final

import attrs

from smruntime.local.builtins import is_instant
from smruntime.local.counters import Counters
from smruntime.local.models import ModelFailure, ModelNotReady, ModelRequest, ModelResponse
from smruntime.local.routing import Target
from smruntime.local.wire import InvokeParams, ServiceError, model_error
from smruntime.middleware.reprs import fields_repr

__all__ = ["Invocation", "ModelResult", "failure_error", "join_chunks", "run_invocation", "timeout_error"]

logger = logging.getLogger("smruntime.local")

DEFAULT_CONTENT_TYPE = "application/octet-stream"


@attrs.frozen
class Invocation:
    """One routed call and what is needed to answer its failures like the service."""

    __repr__ = fields_repr

    endpoint: str
    region: str
    account: str
    timeout: float
    params: InvokeParams
    body: bytes = attrs.field(repr=False)
    target: Target
    counters: Counters
    operation: str = "InvokeEndpoint"


@attrs.frozen
class ModelResult:
    """What the model(s) answered; ``body`` is bytes unless a stream was asked for."""

    __repr__ = fields_repr

    body: bytes | Iterable[bytes] = attrs.field(repr=False)
    content_type: str
    custom_attributes: str | None = attrs.field(default=None, repr=False)
    session_id: str | None = None
    close_session: bool = False


_INLINE_BODY_LIMIT: Final = 64 * 1024
"""Past this, even a built-in model's work on the body (JSON, copies) goes to a thread."""


async def run_invocation(invocation: Invocation, *, join: bool = True) -> ModelResult:
    """Run the target's model(s); ``join=False`` leaves the last model's chunks unread, for streaming.

    Raises the ServiceError the service would answer.
    """
    progress = _Progress(invocation.target.calls[0][0])
    if len(invocation.body) <= _INLINE_BODY_LIMIT and all(is_instant(model) for _, model in invocation.target.calls):
        # Nothing to time out or to keep off the event loop: a thread would cost more than the model.
        return _call_models(invocation, progress, join)
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(_call_models, invocation, progress, join), timeout=invocation.timeout
        )
    except TimeoutError:
        raise timeout_error(invocation, progress.container) from None


class _Progress:
    """Which container the worker thread is in, for the timeout message."""

    def __init__(self, container: str) -> None:
        self.container = container


def _call_models(invocation: Invocation, progress: _Progress, join: bool) -> ModelResult:
    invocation.counters.invocation_started(invocation.target.variant)
    body, content_type = invocation.body, invocation.params.content_type
    calls = invocation.target.calls
    response = ModelResponse()
    for index, (container, model) in enumerate(calls):
        progress.container = container
        request = _model_request(invocation, container, body, content_type)
        try:
            invocation.counters.model_ran()
            response = _as_response(model(request))
            last = index == len(calls) - 1
            if join or not last:
                # A Serial pipeline feeds each container's whole answer to the next.
                body = join_chunks(response.body)
                response = attrs.evolve(response, body=body)
        except ServiceError:
            raise
        except Exception as exc:
            raise failure_error(invocation, container, exc) from None
        content_type = response.content_type or content_type
    return ModelResult(
        body=response.body,
        content_type=response.content_type or DEFAULT_CONTENT_TYPE,
        custom_attributes=response.custom_attributes,
        session_id=response.session_id,
        close_session=response.close_session,
    )


def _model_request(invocation: Invocation, container: str, body: bytes, content_type: str | None) -> ModelRequest:
    params = invocation.params
    return ModelRequest(
        body=body,
        content_type=content_type,
        accept=params.accept,
        custom_attributes=params.custom_attributes,
        target_model=params.target_model,
        target_variant=params.target_variant,
        target_container_hostname=params.target_container_hostname,
        inference_id=params.inference_id,
        enable_explanations=params.enable_explanations,
        inference_component=params.inference_component,
        session_id=params.session_id,
        prefix_aware_id=params.prefix_aware_id,
        endpoint_name=invocation.endpoint,
        variant_name=invocation.target.variant,
        container=container,
        operation=invocation.operation,
        timeout=invocation.timeout,
    )


def _as_response(output: object) -> ModelResponse:
    if isinstance(output, ModelResponse):
        return output
    if isinstance(output, bytes | bytearray | memoryview):
        return ModelResponse(body=bytes(output))
    if isinstance(output, Iterable) and not isinstance(output, str):
        return ModelResponse(body=output)
    raise TypeError(f"a model must return ModelResponse, bytes or an iterator of bytes, not {type(output).__name__}")


def join_chunks(body: bytes | Iterable[bytes]) -> bytes:
    """A whole body from bytes or an iterable of chunks (str chunks are UTF-8 encoded)."""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    return b"".join(chunk.encode() if isinstance(chunk, str) else bytes(chunk) for chunk in body)


def failure_error(invocation: Invocation, container: str, exc: Exception) -> ServiceError:
    """What the service answers when ``container``'s model raised ``exc`` (see the module docstring).

    Also used by the streaming route for a model that fails before its first chunk.
    """
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, ModelFailure):
        return _model_error(invocation, container, exc.status, exc.message)
    if isinstance(exc, ModelNotReady):
        return ServiceError(429, "ModelNotReadyException", str(exc))
    if isinstance(exc, TimeoutError):
        return timeout_error(invocation, container)
    logger.error("model %r of endpoint %s failed", container, invocation.endpoint, exc_info=exc)
    return _model_error(invocation, container, 500, f"{type(exc).__name__}: {exc}")


def _model_error(invocation: Invocation, container: str, status: int, message: str) -> ServiceError:
    return model_error(status=status, original=message, container=container, endpoint=invocation.endpoint,
                       region=invocation.region, account=invocation.account)


def timeout_error(invocation: Invocation, container: str) -> ServiceError:
    return _model_error(
        invocation,
        container,
        0,
        f"Your invocation timed out while waiting for a response from container {container}. Review the latency "
        "metrics for each container in Amazon CloudWatch, resolve the issue, and try again.",
    )
