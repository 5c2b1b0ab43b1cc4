"""InvokeEndpointWithResponseStream on the local endpoint: model chunks become PayloadPart frames.

``POST /endpoints/{EndpointName}/invocations-response-stream`` goes through InvokeEndpoint's
steps (see ``app``) with the stream's input table (Accept arrives as ``X-Amzn-SageMaker-Accept``;
no TargetModel or EnableExplanations). A ``NEW_SESSION`` SessionId is a ValidationError (the
stream's SessionId pattern): sessions are opened with InvokeEndpoint only. Then:

- the model runs and its first chunk is awaited before anything is sent, so every failure
  before the first part is answered like InvokeEndpoint's (424 ModelError, a timeout with
  ``OriginalStatusCode`` 0, 429 ModelNotReadyException ...);
- the answer is ``200`` with ``Content-Type: application/vnd.amazon.eventstream``,
  ``X-Amzn-SageMaker-Content-Type`` (the model's content type),
  ``x-Amzn-Invoked-Production-Variant``, ``X-Amzn-SageMaker-Custom-Attributes`` and
  ``x-amzn-RequestId``, in chunked transfer encoding: each model chunk is one PayloadPart
  frame in its own HTTP chunk, written as soon as the model produced it;
- a model that fails mid-stream ends the stream with a ``ModelStreamError`` exception frame,
  ``{"Message": ..., "ErrorCode": "StreamBroken"}``; the endpoint's ``container_timeout`` is
  the budget for the whole stream, and past it the code is ``ModelInvocationTimeExceeded``;
- the fault ``break_stream_after(N)``: after N parts, the first half of the next frame is
  written and the connection closed without the terminating chunk (a cut-off stream);
  ``fail_stream_after(N)``: after N parts, an ``InternalStreamFailure`` exception frame ends it
  (the service failing, not the model);
- a client that goes away stops the stream, and the model's iterator is closed.

Python models stream by returning an iterator of bytes (a generator); container-contract
servers by answering with chunked transfer encoding (``container.RemoteContainer``).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Final

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from smruntime import service_model
from smruntime.eventstream import MAX_PAYLOAD_LENGTH, encode_message
from smruntime.local.bidi_wire import exception_frame
from smruntime.local.calls import (
    TRANSPORT_KEY,
    ConnectionResetOnPurpose,
    accept_call,
    apply_faults,
    count_answer,
    error_response,
)
from smruntime.local.invoke import Invocation, failure_error, run_invocation, timeout_error
from smruntime.local.routing import route
from smruntime.local.state import LocalState
from smruntime.local.wire import ServiceError

__all__ = [
    "EVENT_STREAM_CONTENT_TYPE",
    "OPERATION",
    "STREAM_BROKEN",
    "TIME_EXCEEDED",
    "invoke_endpoint_with_response_stream",
    "model_stream_error",
    "payload_part",
]

logger = logging.getLogger("smruntime.local")

OPERATION: Final = "InvokeEndpointWithResponseStream"
EVENT_STREAM_CONTENT_TYPE: Final = "application/vnd.amazon.eventstream"
STREAM_BROKEN: Final = "StreamBroken"
TIME_EXCEEDED: Final = "ModelInvocationTimeExceeded"

_PART_HEADERS: Final = {
    ":message-type": "event",
    ":event-type": "PayloadPart",
    ":content-type": "application/octet-stream",
}


def payload_part(data: bytes) -> bytes:
    """One PayloadPart event frame carrying ``data``."""
    return encode_message(_PART_HEADERS, data)


def model_stream_error(message: str, error_code: str) -> bytes:
    """A ModelStreamError exception frame, ``{"Message", "ErrorCode"}`` as the service sends it."""
    return exception_frame("ModelStreamError", {"Message": message, "ErrorCode": error_code})


def injected_stream_failure() -> bytes:
    """The InternalStreamFailure frame that ends a stream the fault ``fail_stream_after`` fails."""
    return exception_frame(
        "InternalStreamFailure", {"Message": "The stream failed inside the endpoint (injected fault). Try again."}
    )


# --- the model's chunks, pulled one at a time -----------------------------------------------

_END: Final = object()


class _Chunks:
    """A model's output, pulled chunk by chunk in a worker thread, until a deadline (loop time).

    Pulling one chunk at a time keeps memory flat (the model produces no faster than the
    client reads) and lets a slow chunk be timed out without blocking the event loop.
    """

    def __init__(self, body: bytes | Iterable[bytes | str], deadline: float) -> None:
        self._iterator: Iterator[bytes | str]
        if isinstance(body, bytes | bytearray | memoryview):
            self._iterator = iter((bytes(body),))  # a whole answer is one part
        else:
            self._iterator = iter(body)
        self._deadline = deadline
        self._pending: asyncio.Future[object] | None = None
        self._closed = False

    async def next(self) -> bytes | None:
        """The next non-empty chunk, None at the end; TimeoutError past the deadline.

        An exception from the model propagates.
        """
        loop = asyncio.get_running_loop()
        while True:
            future = self._pending
            if future is None:
                future = self._pending = loop.run_in_executor(None, next, self._iterator, _END)
            left = self._deadline - loop.time()
            # asyncio.wait does not cancel the pull on timeout: the thread cannot be stopped,
            # and the iterator is closed once that pull returns (see close).
            done, _ = await asyncio.wait({future}, timeout=max(left, 0))
            if not done:
                raise TimeoutError("the model's time budget ran out")
            self._pending = None
            chunk = future.result()
            if chunk is _END:
                return None
            data = _as_bytes(chunk)
            if data:  # an empty part carries nothing; SageMaker does not send them
                return data

    def close(self) -> None:
        """Close the model's iterator in a worker thread (after a pull still running); never waits."""
        if self._closed:
            return
        self._closed = True
        close: Callable[[], object] | None = getattr(self._iterator, "close", None)
        if close is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # finalized outside the server's loop
            _run_close(close)
            return
        pending = self._pending
        if pending is None or pending.done():
            _close_quietly(loop, close)
            return

        def after_pull(done: asyncio.Future[object]) -> None:
            if not done.cancelled():
                done.exception()  # a late failure is dropped, like the late result
            _close_quietly(loop, close)

        pending.add_done_callback(after_pull)


def _as_bytes(chunk: object) -> bytes:
    if isinstance(chunk, bytes | bytearray | memoryview):
        return bytes(chunk)
    if isinstance(chunk, str):
        return chunk.encode()
    raise TypeError(f"a model's chunks must be bytes, not {type(chunk).__name__}")


def _close_quietly(loop: asyncio.AbstractEventLoop, close: Callable[[], object]) -> None:
    try:
        loop.run_in_executor(None, _run_close, close)
    except RuntimeError:  # the server is shutting down: close here rather than leak
        _run_close(close)


def _run_close(close: Callable[[], object]) -> None:
    try:
        close()
    except Exception:
        logger.exception("closing a model's output failed")


# --- the route ------------------------------------------------------------------------------

async def invoke_endpoint_with_response_stream(state: LocalState, request: Request) -> Response:
    """The route handler: an event-stream response, or the service error to answer."""
    request_id = str(uuid.uuid4())
    try:
        response = await _stream(state, request, request_id)
    except ServiceError as error:
        count_answer(state, request, error.status)
        return error_response(state, error, request_id)
    except ConnectionResetOnPurpose:
        return Response(status_code=500)  # never sent: the connection is gone (counted as 0 already)
    count_answer(state, request, response.status_code)
    return response




async def _stream(state: LocalState, request: Request, request_id: str) -> Response:
    accepted = await accept_call(state, request, service_model.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM)
    runtime, params = accepted.endpoint, accepted.params
    await apply_faults(runtime, request)
    target = route(runtime, params, state.sessions, account=state.config.account_id)
    invocation = Invocation(
        endpoint=runtime.name,
        region=state.config.region,
        account=state.config.account_id,
        timeout=runtime.config.container_timeout,
        params=params,
        body=accepted.body,
        target=target,
        counters=runtime.counters,
        operation=OPERATION,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + invocation.timeout
    result = await run_invocation(invocation, join=False)
    container = target.calls[-1][0]  # whose chunks are streamed
    chunks = _Chunks(result.body, deadline)
    try:
        first = await chunks.next()
    except TimeoutError:
        chunks.close()
        raise timeout_error(invocation, container) from None
    except Exception as exc:
        chunks.close()
        raise failure_error(invocation, container, exc) from None
    if target.session is not None and result.close_session:
        state.sessions.close(target.session.id)  # the stream's output has no ClosedSessionId header
    headers = [
        ("Content-Type", EVENT_STREAM_CONTENT_TYPE),
        ("X-Amzn-SageMaker-Content-Type", result.content_type),
        ("x-Amzn-Invoked-Production-Variant", target.variant),
    ]
    if result.custom_attributes is not None:
        headers.append(("X-Amzn-SageMaker-Custom-Attributes", result.custom_attributes))
    headers += [("x-amzn-RequestId", request_id), ("Date", email.utils.formatdate(state.now(), usegmt=True))]
    faults = runtime.faults
    frames = _frames(request, invocation, first, chunks, faults.take_stream_break(), faults.take_stream_failure())
    response = StreamingResponse(frames, status_code=200)
    # Spelled as given (Starlette lower-cases), and no Content-Length: the body goes out chunked.
    response.raw_headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    return response


async def _frames(request: Request, invocation: Invocation, first: bytes | None, chunks: _Chunks,
                  break_after: int | None, fail_after: int | None) -> AsyncIterator[bytes]:
    """The frames of one stream; each item is written as one HTTP chunk before the next is pulled."""
    sent = 0
    chunk = first
    try:
        while True:
            if fail_after is not None and sent >= fail_after:  # also in place of the stream's end
                yield injected_stream_failure()
                return
            if break_after is not None and sent >= break_after:
                frame = payload_part(chunk or b"")
                yield frame[: len(frame) // 2]
                await _cut(request)
                return
            if chunk is None:
                return
            for start in range(0, len(chunk), MAX_PAYLOAD_LENGTH):  # a part holds at most 24 MiB
                yield payload_part(chunk[start:start + MAX_PAYLOAD_LENGTH])
            sent += 1
            try:
                chunk = await chunks.next()
            except TimeoutError:
                yield model_stream_error(
                    f"The model did not finish its response stream within {invocation.timeout:g} seconds.",
                    TIME_EXCEEDED,
                )
                return
            except Exception as exc:
                logger.error("model of endpoint %s failed mid-stream", invocation.endpoint, exc_info=exc)
                yield model_stream_error(f"The model's response stream broke: {type(exc).__name__}: {exc}",
                                         STREAM_BROKEN)
                return
    finally:
        # Also on a client disconnect, when Starlette cancels this generator: close() never awaits.
        chunks.close()


async def _cut(request: Request) -> None:
    """Close the connection now, without the terminating chunk (what a crashed proxy does)."""
    transport = request.scope.get(TRANSPORT_KEY)
    if not isinstance(transport, asyncio.Transport):
        # Raising mid-body also makes the server drop the connection, just less precisely.
        raise ConnectionAbortedError("fault injection: cannot break the stream, the server hides its transport")
    # close() (FIN), not abort(): the half frame already written reaches the client first.
    transport.close()
    # Let the server see the connection lost, so nothing more (no terminating chunk) is written.
    await asyncio.sleep(0)
    await asyncio.sleep(0)

