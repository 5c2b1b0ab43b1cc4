"""InvokeEndpointAsync on the local endpoint: ``POST /endpoints/{EndpointName}/async-invocations``.

The request goes through InvokeEndpoint's first steps (see ``app``: size, signature, shared
headers, endpoint lookup, faults) with this operation's headers (``X-Amzn-SageMaker-Content-Type``
and ``-Accept``), then:

- the async headers are validated like the service does (InputLocation pattern,
  RequestTTLSeconds 60-21600, InvocationTimeoutSeconds 1-3600, S3OutputPathExtension,
  Filename): 400 ValidationError listing every problem (after the shared headers' own check);
  exactly one of ``InputLocation`` and an inline body (up to 128,000 bytes) is required;
- an endpoint without ``async_inference`` configuration is a ValidationError;
- the answer is ``202`` with ``{"InferenceId": ...}`` (the caller's
  ``X-Amzn-SageMaker-Inference-Id``, else a new UUID) and the headers
  ``X-Amzn-SageMaker-OutputLocation`` / ``X-Amzn-SageMaker-FailureLocation``; the job is
  queued on the ``async_inference_worker``.

Where results go (see :func:`result_locations`)::

    output:  <s3_output_path>/<S3OutputPathExtension>/<Filename, else <inference id>.out>
    failure: <s3_failure_path or s3_output_path>/<S3OutputPathExtension>/<Filename or inference id>-error.out

The service documents only that, without Filename, "SageMaker generates a filename based on
the inference ID"; the ``.out`` and ``-error.out`` suffixes are what its result objects are
called. An inference id that is not a plain file name (it may hold any printable ASCII, ``/``
included) is not used as one: such a request's files are named by a fresh UUID instead.

Local extension: ``InputLocation`` may also be a ``file://`` path, and the result paths may
be ``file://`` directories (see ``storage``). A ``file://`` input must lie, symlinks and ``..``
resolved, inside the endpoint's ``input_root`` or its ``file://`` result folders; any other is
a ValidationError before anything is read (with no such folder configured, the service's own
pattern error).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping

import attrs
from starlette.requests import Request
from starlette.responses import Response

from smruntime import service_model
from smruntime.file_locations import resolve_within
from smruntime.local.async_inference_worker import (
    DEFAULT_INVOCATION_TIMEOUT_SECONDS,
    DEFAULT_REQUEST_TTL_SECONDS,
    AsyncJob,
    AsyncWorker,
)
from smruntime.local.calls import (
    ConnectionResetOnPurpose,
    accept_call,
    apply_faults,
    count_answer,
    error_response,
    wire_response,
)
from smruntime.local.config import AsyncInferenceConfig
from smruntime.local.routing import route
from smruntime.local.state import LocalState
from smruntime.local.storage import join_location, parse_location
from smruntime.local.wire import ServiceError, invoke_params_members, read_members, validation_error
from smruntime.middleware.reprs import fields_repr

__all__ = ["MAX_INLINE_BODY_BYTES", "AsyncInvocations", "AsyncParams", "parse_async_params",
           "result_locations"]

MAX_INLINE_BODY_BYTES = service_model.MAX_INLINE_BODY_BYTES
"""AsyncBodyBlob's maximum in the service model."""

# The header members InvokeParams does not hold, which only this operation has.
_ASYNC_MEMBERS = tuple(member for member in service_model.INVOKE_ENDPOINT_ASYNC.at("header")
                       if member not in invoke_params_members(service_model.INVOKE_ENDPOINT_ASYNC))
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@attrs.frozen
class AsyncParams:
    """The headers only InvokeEndpointAsync has, validated."""

    __repr__ = fields_repr

    input_location: str | None = None
    request_ttl_seconds: int | None = None
    invocation_timeout_seconds: int | None = None
    s3_output_path_extension: str | None = None
    filename: str | None = None


def parse_async_params(headers: Mapping[str, str]) -> AsyncParams:
    """Read and validate the async-only headers (case-insensitive ``headers``); ValidationError listing all problems."""
    return AsyncParams(**read_members(_ASYNC_MEMBERS, headers))


def result_locations(config: AsyncInferenceConfig, inference_id: str, extension: str | None = None,
                     filename: str | None = None) -> tuple[str, str]:
    """(output location, failure location) for one request (naming in the module docstring)."""
    stem = filename or (inference_id if _PLAIN_NAME.fullmatch(inference_id) else str(uuid.uuid4()))
    output_name = filename or f"{stem}.out"
    failure_root = config.s3_failure_path or config.s3_output_path
    on_disk = any(root.startswith("file:") for root in (config.s3_output_path, failure_root))
    # On a disk, "." and ".." would leave the configured directory.
    if on_disk and extension and any(segment in (".", "..") for segment in extension.split("/")):
        raise validation_error(
            f"S3OutputPathExtension '{extension}' may not contain '.' or '..' segments: this endpoint writes "
            "results to file:// paths."
        )
    return (join_location(config.s3_output_path, extension or "", output_name),
            join_location(failure_root, extension or "", f"{stem}-error.out"))


def _check_file_input(config: AsyncInferenceConfig, location: str, path: str) -> None:
    roots = config.file_roots
    if not roots:  # nothing local to read from: refused as the service refuses any file:// location
        raise validation_error(
            f"1 validation error detected: Value '{location}' at 'inputLocation' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {service_model.INPUT_LOCATION.model}"
        )
    if resolve_within(path, roots) is None:
        raise validation_error(
            f"InputLocation {location} is outside the folders this endpoint reads file:// inputs from "
            "(its async_inference input_root and file:// result folders)."
        )


class AsyncInvocations:
    """The async route of one server: validates, answers 202 and queues the job on its worker."""

    def __init__(self, state: LocalState) -> None:
        self.state = state
        self.worker = AsyncWorker(region=state.config.region, account=state.config.account_id)

    async def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            response = await self._accept(request, request_id)
            status = response.status_code
        except ServiceError as error:
            response = error_response(self.state, error, request_id)
            status = error.status
        except ConnectionResetOnPurpose:
            return Response(status_code=500)  # never sent: the connection is gone (counted as 0 already)
        count_answer(self.state, request, status)
        return response

    async def _accept(self, request: Request, request_id: str) -> Response:
        state = self.state
        accepted = await accept_call(state, request, service_model.INVOKE_ENDPOINT_ASYNC, max_body_bytes=MAX_INLINE_BODY_BYTES)
        runtime, params = accepted.endpoint, accepted.params
        extra = parse_async_params(request.headers)
        config = runtime.config.async_inference
        if config is None:
            raise validation_error(
                f"Endpoint {runtime.name} of account {state.config.account_id} is not configured for asynchronous "
                "inference. Use InvokeEndpoint, or create the endpoint with an AsyncInferenceConfig."
            )
        if extra.input_location is not None and accepted.body:
            raise validation_error("InputLocation and Body are mutually exclusive: provide exactly one of them.")
        if extra.input_location is None and not accepted.body:
            raise validation_error("Either InputLocation or Body is required.")
        try:
            source = None if extra.input_location is None else parse_location(extra.input_location)
        except ValueError as error:
            raise validation_error(f"Invalid InputLocation: {error}.") from None
        if source is not None and source.scheme == "file":
            _check_file_input(config, source.uri, source.key)
        await apply_faults(runtime, request)
        inference_id = params.inference_id or str(uuid.uuid4())
        target = route(runtime, params, state.sessions, account=state.config.account_id)
        output, failure = result_locations(config, inference_id, extra.s3_output_path_extension, extra.filename)
        self.worker.submit(AsyncJob(
            inference_id=inference_id,
            endpoint=runtime,
            params=attrs.evolve(params, inference_id=inference_id),
            target=target,
            output=parse_location(output),
            failure=parse_location(failure),
            request_ttl_seconds=extra.request_ttl_seconds or DEFAULT_REQUEST_TTL_SECONDS,
            invocation_timeout_seconds=extra.invocation_timeout_seconds or DEFAULT_INVOCATION_TIMEOUT_SECONDS,
            queued_at=self.worker.clock(),
            input=source,
            body=None if source is not None else accepted.body,
        ))
        headers = [("Content-Type", "application/json"), ("X-Amzn-SageMaker-OutputLocation", output),
                   ("X-Amzn-SageMaker-FailureLocation", failure)]
        return wire_response(state, 202, json.dumps({"InferenceId": inference_id}).encode(), headers, request_id)
