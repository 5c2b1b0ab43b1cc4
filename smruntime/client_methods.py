"""The operation methods both clients share.

Each operation's method is written once, here: it turns its keyword parameters into the
operation's input and hands that to ``self._call``, which runs the call on ``Client`` and
returns a coroutine on ``AsyncClient``. :func:`sync_method` and :func:`async_method` give the
one function its return type on each client, so mypy checks both; at run time they add
nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Concatenate, ParamSpec, Sequence, TypeVar

from smruntime.types import BodyInput, InvokeEndpointInput

if TYPE_CHECKING:
    import os

    from smruntime.bulk.scheduler import Record
    from smruntime.operations.bidirectional_stream_input import BidirectionalStreamInput
    from smruntime.options import OptionFunc
    from smruntime.types import (
        InvokeEndpointAsyncInput,
        InvokeEndpointAsyncOutput,
        InvokeEndpointWithResponseStreamInput,
    )

P = ParamSpec("P")
R = TypeVar("R")


def sync_method(
    method: Callable[Concatenate[Any, P], Any], returns: Callable[[], type[R]]
) -> Callable[Concatenate[Any, P], R]:
    """``method`` as ``Client`` has it, typed to return ``returns()`` (never called: that type's
    module loads only when used). At run time it is ``method`` itself: no wrapper per call."""
    return method


def async_method(
    method: Callable[Concatenate[Any, P], Any], returns: Callable[[], type[R]]
) -> Callable[Concatenate[Any, P], Awaitable[R]]:
    """``method`` as ``AsyncClient`` has it: the same function, whose ``self._call`` returns a
    coroutine there, typed to return an awaitable of ``returns()``."""
    return method


def invoke_endpoint(
    self: Any,
    input: InvokeEndpointInput | None = None,
    *,
    endpoint_name: str | None = None,
    body: BodyInput | None = None,
    content_type: str | None = None,
    accept: str | None = None,
    custom_attributes: str | None = None,
    target_model: str | None = None,
    target_variant: str | None = None,
    target_container_hostname: str | None = None,
    inference_id: str | None = None,
    enable_explanations: str | None = None,
    inference_component_name: str | None = None,
    session_id: str | None = None,
    prefix_aware_id: str | None = None,
    options: Sequence[OptionFunc] = (),
) -> Any:
    """Invoke a real-time endpoint and return the model's answer."""
    if input is None:
        input = InvokeEndpointInput(
            endpoint_name=endpoint_name,  # type: ignore[arg-type]  # validated in the stack
            body=body,  # type: ignore[arg-type]
            content_type=content_type,
            accept=accept,
            custom_attributes=custom_attributes,
            target_model=target_model,
            target_variant=target_variant,
            target_container_hostname=target_container_hostname,
            inference_id=inference_id,
            enable_explanations=enable_explanations,
            inference_component_name=inference_component_name,
            session_id=session_id,
            prefix_aware_id=prefix_aware_id,
        )
    return self._call("InvokeEndpoint", input, options)


def invoke_endpoint_with_response_stream(
    self: Any,
    input: InvokeEndpointWithResponseStreamInput | None = None,
    *,
    endpoint_name: str | None = None,
    body: BodyInput | None = None,
    content_type: str | None = None,
    accept: str | None = None,
    custom_attributes: str | None = None,
    target_variant: str | None = None,
    target_container_hostname: str | None = None,
    inference_id: str | None = None,
    inference_component_name: str | None = None,
    session_id: str | None = None,
    prefix_aware_id: str | None = None,
    options: Sequence[OptionFunc] = (),
) -> Any:
    """Invoke an endpoint and stream its answer: iterate the result for ``PayloadPart`` events.

    Returns once the first event is in; use the stream as a context manager.
    """
    if input is None:
        from smruntime.types.response_stream import InvokeEndpointWithResponseStreamInput

        input = InvokeEndpointWithResponseStreamInput(
            endpoint_name=endpoint_name,  # type: ignore[arg-type]  # validated in the stack
            body=body,  # type: ignore[arg-type]
            content_type=content_type,
            accept=accept,
            custom_attributes=custom_attributes,
            target_variant=target_variant,
            target_container_hostname=target_container_hostname,
            inference_id=inference_id,
            inference_component_name=inference_component_name,
            session_id=session_id,
            prefix_aware_id=prefix_aware_id,
        )
    return self._call("InvokeEndpointWithResponseStream", input, options)


def invoke_endpoint_async(
    self: Any,
    input: InvokeEndpointAsyncInput | None = None,
    *,
    endpoint_name: str | None = None,
    input_location: str | None = None,
    body: BodyInput | None = None,
    content_type: str | None = None,
    accept: str | None = None,
    custom_attributes: str | None = None,
    inference_id: str | None = None,
    request_ttl_seconds: int | None = None,
    invocation_timeout_seconds: int | None = None,
    s3_output_path_extension: str | None = None,
    filename: str | None = None,
    options: Sequence[OptionFunc] = (),
) -> Any:
    """Queue an asynchronous inference whose input is at ``input_location`` (or, up to
    128,000 bytes, inline as ``body``)."""
    if input is None:
        from smruntime.types.async_inference import InvokeEndpointAsyncInput

        input = InvokeEndpointAsyncInput(
            endpoint_name=endpoint_name,  # type: ignore[arg-type]  # validated in the stack
            input_location=input_location,
            body=body,
            content_type=content_type,
            accept=accept,
            custom_attributes=custom_attributes,
            inference_id=inference_id,
            request_ttl_seconds=request_ttl_seconds,
            invocation_timeout_seconds=invocation_timeout_seconds,
            s3_output_path_extension=s3_output_path_extension,
            filename=filename,
        )
    return self._call("InvokeEndpointAsync", input, options)


def wait_for_async_inference(
    self: Any,
    output: InvokeEndpointAsyncOutput,
    *,
    timeout: float = 900.0,
    poll_interval: float = 5.0,
    s3_endpoint_url: str | None = None,
    s3_client: Any = None,
    file_root: str | os.PathLike[str] | None = None,
) -> Any:
    """Poll an async inference's locations; return the result bytes or raise its failure.

    Raises :class:`~smruntime.errors.AsyncInferenceFailedError` when the failure location
    appears first and :class:`~smruntime.errors.WaitTimeoutError` after ``timeout`` seconds.
    ``s3://`` locations are read with a botocore S3 client made from this client's region
    and credentials (or ``s3_client``). ``file://`` locations (the local endpoint's) are
    read only as regular files inside ``file_root``; without it they are refused. On
    ``AsyncClient`` the reads run in a worker thread and the waits are ``asyncio.sleep``.
    """
    from smruntime import async_inference

    reader = async_inference.S3Reader(lambda: s3_client or self._s3_client(s3_endpoint_url), owned=s3_client is None)
    poll = async_inference.Poll(output, reader, timeout, poll_interval, file_root)
    return self._wait(poll, reader)


def invoke_endpoint_with_bidirectional_stream(
    self: Any,
    input: BidirectionalStreamInput | None = None,
    *,
    endpoint_name: str | None = None,
    target_variant: str | None = None,
    model_invocation_path: str | None = None,
    model_query_string: str | None = None,
    options: Sequence[OptionFunc] = (),
) -> Any:
    """Open a bidirectional stream to an endpoint: send ``PayloadPart`` events, read the model's.

    Use the result as a context manager (``async with`` on ``AsyncClient``): entering opens
    the stream over HTTP/2; leaving releases it. ``model_invocation_path`` and
    ``model_query_string`` choose the path and query the container is called with.
    """
    if input is None:
        from smruntime.operations.bidirectional_stream_input import BidirectionalStreamInput

        input = BidirectionalStreamInput(
            endpoint_name=endpoint_name,  # type: ignore[arg-type]  # validated in the stack
            target_variant=target_variant,
            model_invocation_path=model_invocation_path,
            model_query_string=model_query_string,
        )
    return self._open_stream("InvokeEndpointWithBidirectionalStream", input, options)


def invoke_many(
    self: Any,
    inputs: Iterable[Record] | AsyncIterable[Record],
    *,
    endpoint_name: str | None = None,
    content_type: str | None = None,
    accept: str | None = None,
    concurrency: int = 16,
    ordered: bool = False,
    reorder_window: int = 0,
    adaptive: bool = True,
) -> Any:
    """Invoke the endpoint once per record of ``inputs``; one ``BulkResult`` each.

    ``inputs`` is any iterable of bodies (bytes or str, sent with ``endpoint_name``,
    ``content_type`` and ``accept``) or ``InvokeEndpointInput`` objects (on ``AsyncClient`` an
    async iterable too); it is read one record ahead, never whole. At most ``concurrency``
    calls are in flight, bounded too by the client's ``max_pool_connections``. Results come
    as they complete, or in input order with ``ordered=True`` (holding at most
    ``reorder_window`` records, default 4 times concurrency). A failed record is a result with
    its typed ``error``; the run goes on. With ``adaptive`` (the default) every call of the run
    shares one client-side rate limiter that slows on throttling and climbs back on success.

    ``Client`` yields the results (calls on worker threads); ``AsyncClient`` gives them to
    ``async for`` (each call a task on the running loop).
    """
    from smruntime.bulk.scheduler import BulkRun

    run = BulkRun(endpoint_name, content_type, accept, concurrency, ordered, reorder_window, adaptive)
    return self._invoke_many(inputs, run)
