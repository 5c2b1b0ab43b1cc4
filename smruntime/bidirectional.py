"""The bidirectional stream of InvokeEndpointWithBidirectionalStream.

:class:`AsyncBidirectionalStream` is the one implementation: it opens the HTTP/2 stream by
running the operation's stack, then sends each event (through the ``SendEvent`` step, encoded,
signed and chained) and hands out each event that arrives (decoded, through the
``ReceiveEvent`` step) independently, so the caller may send before the model answers and
read while it still sends. :class:`BidirectionalStream` is the blocking face of the same
stream, on its client's event loop, which each blocking call drives.

The codec of the events themselves is sans-IO, in :mod:`smruntime.payload_parts`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping, TypeVar

from smruntime import errors, keys
from smruntime.eventstream import EventStreamDecoder
from smruntime.http import BytesBody, HTTPResponse
from smruntime.middleware.events import compose_events
from smruntime.operations.protocol import parse_error, request_id
from smruntime.payload_parts import MAX_EVENT_BYTES, encode_payload_part, request_part, response_part
from smruntime.streaming import stream_cut_off
from smruntime.transport.http2_errors import stream_cancelled
from smruntime.types import RequestPayloadPart, ResponsePayloadPart, ResultMetadata

if TYPE_CHECKING:
    from smruntime.blocking_loop import BlockingLoop
    from smruntime.event_signing import EventSigner
    from smruntime.middleware import StackKey
    from smruntime.operations.duplex import DuplexChain
    from smruntime.stack_types import Context
    from smruntime.transport.async_protocol import AsyncHTTPResponse
    from smruntime.transport.http2_protocol import HTTP2Stream

__all__ = [
    "MAX_EVENT_BYTES",
    "AsyncBidirectionalStream",
    "BidirectionalStream",
    "OpenedStream",
    "encode_payload_part",
    "request_part",
    "response_part",
]

T = TypeVar("T")


# -- what the stack hands over ------------------------------------------------------------


class OpenedStream:
    """What the operation's stack returns: the open HTTP/2 stream and the signer of its events
    (None when the call is anonymous: the events then go unsigned)."""

    __slots__ = ("signer", "transport")

    def __init__(self, transport: HTTP2Stream, signer: EventSigner | None) -> None:
        self.transport = transport
        self.signer = signer

    def __repr__(self) -> str:
        return f"OpenedStream(signed={self.signer is not None})"


Opener = Callable[[Mapping["StackKey[Any]", Any]], Awaitable[tuple[OpenedStream, "DuplexChain", "Context"]]]
"""Runs the stack, with the given keys set on the call's context first (none for the first opening;
``keys.CONTINUED_INVOCATION_ID`` and ``keys.FIRST_ATTEMPT`` when the stream is opened again): the
opened stream, the chain it ran (for its event steps) and the call's context."""


# -- the asyncio stream -------------------------------------------------------------------


class AsyncBidirectionalStream:
    """A bidirectional stream on asyncio: ``send`` events, ``end_input``, ``async for`` answers.

    Use it with ``async with``: entering opens the stream (validation, endpoint, signing and the
    retry policy run then, before any event is sent); leaving releases it, cancelling the
    stream (RST_STREAM) when the input was not ended or the answers not read to the end.
    Sending and reading are independent: send before the model answers, read while you send,
    from one task or two (sends are kept in order).

    Iterating yields :class:`~smruntime.types.ResponsePayloadPart` events as they arrive.
    An HTTP error (400 ValidationError, 424 ModelError, 500, 503) raises from iteration, or
    from ``send`` once it is known; ``ModelStreamError`` and ``InternalStreamFailure`` events
    raise from iteration.
    """

    def __init__(self, opener: Opener, *, operation: str) -> None:
        self._opener = opener
        self._operation = operation
        self.metadata = ResultMetadata()
        self._transport: HTTP2Stream | None = None
        self._signer: EventSigner | None = None
        self._ctx: Context | None = None
        self._send_chain: Callable[[Context, Any], None] | None = None
        self._receive_chain: Callable[[Context, Any], None] | None = None
        self._open_lock: asyncio.Lock | None = None
        self._send_lock: asyncio.Lock | None = None
        self._response: asyncio.Future[AsyncHTTPResponse] | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._decoder = EventStreamDecoder()
        self._outbox: list[bytes] = []
        self._ready: deque[ResponsePayloadPart] = deque()
        self._clock_offset: float | None = None
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._interrupted = False
        self._written = False  # whether any event went out: only before can a refused stream be reopened
        self._attempts = 0  # the attempts made by the openings so far
        self._input_ended = False
        self._finished = False
        self._closed = False

    # -- opening ------------------------------------------------------------------

    async def __aenter__(self) -> AsyncBidirectionalStream:
        await self._ensure_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _ensure_open(self) -> None:
        if self._transport is not None:
            return
        if self._closed:
            raise errors.SageMakerRuntimeError("the stream is closed", operation=self._operation)
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._transport is not None:
                return
            opened, chain, ctx = await self._opener({})
            self._started(opened, chain, ctx)

    def _started(self, opened: OpenedStream, chain: DuplexChain, ctx: Context) -> None:
        self._transport = opened.transport
        self._signer = opened.signer
        self._ctx = ctx
        self.metadata = ResultMetadata(ctx.metadata)
        self._clock_offset = ctx.get(keys.CLOCK_OFFSET) or None
        self._send_chain = compose_events(chain.send_event, self._queue)
        self._receive_chain = compose_events(chain.receive_event, self._deliver)
        self._send_lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()
        # A module function, not a method: the pending task must not keep an abandoned stream alive.
        self._response = asyncio.ensure_future(_checked_answer(opened.transport, ctx, self._operation))
        self._response.add_done_callback(_observe)

    @property
    def invoked_production_variant(self) -> str | None:
        """The variant that serves the stream, from the response headers (None until they arrive)."""
        response = _answer(self._response)
        return None if response is None else response.headers.get("x-amzn-invoked-production-variant")

    @property
    def request_id(self) -> str | None:
        """The service's request id, from the response headers (None until they arrive)."""
        return self.metadata.request_id

    async def wait_for_response(self) -> None:
        """Wait until the service answered the request (its HTTP headers; the events come later).

        Raises the HTTP error the answer carries. Afterwards ``invoked_production_variant`` is
        set. Not needed before iterating, which waits for the answer itself.
        """
        await self._ensure_open()
        await self._answered()

    # -- sending ------------------------------------------------------------------

    async def send(
        self,
        data: bytes | bytearray | memoryview | str,
        *,
        data_type: str | None = None,
        completion_state: str | None = None,
        p: str | None = None,
    ) -> None:
        """Send one ``PayloadPart`` event; returns once it is written (flow control permitting).

        ``data_type`` is ``UTF8`` or ``BINARY`` (a str is sent as UTF-8 with ``UTF8``),
        ``completion_state`` ``PARTIAL`` or ``COMPLETE``, ``p`` padding. Checked before
        anything is sent.
        """
        part = request_part(data, data_type, completion_state, p, self._operation)
        if self._transport is None:
            await self._ensure_open()
        assert self._send_lock is not None and self._send_chain is not None and self._ctx is not None
        async with self._send_lock:
            if not self._written and self._response is not None and self._response.done():
                await self._answered_or_open()  # an answer that refused the stream: open it again
            self._check_can_send()
            assert self._send_chain is not None and self._ctx is not None
            try:
                self._send_chain(self._ctx, part)
                messages = self._outbox
            finally:
                self._outbox = []
            # Signed only once every middleware is done: an event step that fails signs nothing,
            # so the chain never moves on past an event that was not sent.
            signer = self._signer
            for message in messages:
                await self._write(message if signer is None else signer.sign(message, self._now()))

    async def end_input(self) -> None:
        """End the input: the signed empty end frame, then END_STREAM. Idempotent.

        The model keeps answering; read on until the stream ends.
        """
        await self._ensure_open()
        assert self._send_lock is not None and self._transport is not None
        async with self._send_lock:
            if self._input_ended:
                return
            self._check_can_send()
            self._input_ended = True
            if self._signer is not None:
                await self._write(self._signer.sign_end(self._now()))
            try:
                await self._transport.end_input()
            except errors.TransportError as error:
                raise self._send_failure(error) from error

    def _queue(self, ctx: Context, part: Any) -> None:
        """The SendEvent step's end: encode the event and queue it for signing and sending."""
        if not isinstance(part, RequestPayloadPart):
            raise errors.SerializationError(
                f"a SendEvent middleware passed on a {type(part).__name__}, not a RequestPayloadPart",
                operation=self._operation,
            )
        self._outbox.append(encode_payload_part(part))

    def _now(self) -> datetime | None:
        """When to sign an event: None (the signer reads the clock) unless the service's clock
        is known to differ from ours."""
        offset = self._clock_offset
        return None if not offset else datetime.now(UTC) + timedelta(seconds=offset)

    def _check_can_send(self) -> None:
        if self._closed:
            raise errors.SageMakerRuntimeError("the stream is closed", operation=self._operation)
        if self._input_ended:
            raise errors.SageMakerRuntimeError("cannot send after end_input()", operation=self._operation)
        failure = _failure(self._response)
        if failure is not None:
            raise failure
        if self._interrupted:
            raise errors.SageMakerRuntimeError(
                "an earlier send failed or was cancelled part way through an event: the stream cannot go on",
                operation=self._operation,
            )

    async def _write(self, frame: bytes) -> None:
        assert self._transport is not None
        self._written = True
        try:
            await self._transport.send(frame)
        except errors.TransportError as error:
            self._interrupted = True
            raise self._send_failure(error) from error
        except BaseException:  # cancelled: part of the frame may be on the wire, the rest never will
            self._interrupted = True
            raise

    def _send_failure(self, error: errors.TransportError) -> BaseException:
        """What a failed write means: the service's answer when it refused the stream (a 424
        while the caller was still sending), else the transport error."""
        failure = _failure(self._response)
        if failure is not None:
            return failure
        if error.operation is None:
            error.operation = self._operation
        return error

    # -- receiving ----------------------------------------------------------------

    def _deliver(self, ctx: Context, part: Any) -> None:
        """The ReceiveEvent step's end: the event is the caller's to read."""
        self._ready.append(part)

    def __aiter__(self) -> AsyncBidirectionalStream:
        return self

    async def __anext__(self) -> ResponsePayloadPart:
        ready = self._ready
        while not ready:
            failure = self._failure
            if failure is not None:  # after the parts that arrived before it
                self._failure = None
                raise failure
            if self._finished or self._closed:
                raise StopAsyncIteration
            await self._read_more()
        return ready.popleft()

    async def _read_more(self) -> None:
        """Decode the next chunk's events into ``_ready``; mark the end of the answers."""
        try:
            chunks = self._chunks
            if chunks is None:
                await self._ensure_open()
                response = await self._answered()
                chunks = self._chunks = response.body.aiter_chunks()
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                self._finished = True
                self._decoder.end()  # raises on a stream cut off mid-event
                return
            except errors.TransportError as error:
                raise stream_cut_off(error, self._operation) from error
            assert self._ctx is not None and self._receive_chain is not None
            for message in self._decoder.feed(chunk):
                try:
                    part = response_part(message, self._operation, self.request_id)
                except errors.APIError as error:  # an exception event ends the stream
                    self._finished, self._failure = True, error
                    return
                if part is not None:
                    self._receive_chain(self._ctx, part)
        except BaseException as error:
            self._finished = True
            if not isinstance(error, Exception) and self._failure is None:
                # Cancelled (a time limit, Ctrl-C) while waiting: part of an event may be unread and
                # the stream is reset, so a later read must say so, not end as if the model were done.
                self._failure = stream_cancelled(self._operation)
            raise

    # -- opening again ------------------------------------------------------------

    async def _answered(self) -> AsyncHTTPResponse:
        """The service's answer, once the stream was opened again as often as the retry policy
        allows when the answer proves nothing was processed and nothing had been sent."""
        while True:
            response = self._response
            assert response is not None and self._open_lock is not None
            try:
                return await response
            except errors.SageMakerRuntimeError as error:
                async with self._open_lock:  # a reader and a sender may both see the refusal: one reopens
                    if self._response is response and not await self._reopened(error):
                        raise

    async def _answered_or_open(self) -> None:
        try:
            await self._answered()
        except errors.SageMakerRuntimeError:
            pass  # _check_can_send raises it

    async def _reopened(self, error: errors.SageMakerRuntimeError) -> bool:
        """Open the stream again after ``error``, if it proves the service processed nothing
        (a refused stream, a 503 or throttling answer), no event was sent, and the retry policy
        (attempts in all, quota, backoff) allows; whether it did."""
        ctx = self._ctx
        retryer = ctx.options.retryer if ctx is not None and ctx.options is not None else None
        refused = (isinstance(error, errors.APIError) and (error.http_status == 503 or error.throttling)) or (
            isinstance(error, errors.TransportError) and not error.request_sent
        )
        if ctx is None or retryer is None or not refused or self._written or self._closed or self._input_ended:
            return False
        self._attempts = ctx.get(keys.ATTEMPT) or 1
        if self._attempts >= (ctx.get(keys.MAX_ATTEMPTS) or 1) or not retryer.is_retryable(error):
            return False
        try:
            release = retryer.get_retry_token(error)
        except errors.RetryQuotaExceededError:
            return False
        await asyncio.sleep(retryer.retry_delay(self._attempts, error))
        if self._transport is not None:
            await self._transport.aclose()
        self._transport = None
        try:
            # The same call going on: the service sees its invocation id and the next attempt's number.
            carried: dict[StackKey[Any], Any] = {keys.FIRST_ATTEMPT: self._attempts + 1}
            invocation_id = ctx.get(keys.INVOCATION_ID)
            if invocation_id:  # unless a stack without ClientRequestID sent none
                carried[keys.CONTINUED_INVOCATION_ID] = invocation_id
            opened, chain, new_ctx = await self._opener(carried)
        except BaseException as failure:
            release(failure)
            self._closed = True  # no half-opened stream for a later call to open outside the policy
            raise
        release(None)
        self._started(opened, chain, new_ctx)
        return True

    # -- closing ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Release the stream, cancelling it if either side is still open. Idempotent."""
        if self._closed:
            return
        self._closed = True
        response = self._response
        if response is not None and not response.done():
            response.cancel()
        chunks = self._chunks
        close_chunks = getattr(chunks, "aclose", None)
        if close_chunks is not None:
            try:
                await close_chunks()
            except (RuntimeError, errors.SageMakerRuntimeError):  # running, or failed as it stopped
                pass
        if self._transport is not None:
            await self._transport.aclose()

    def __del__(self) -> None:
        # Abandoned open, without aclose: release the stream on its loop (a finalizer cannot
        # await, and may run on another thread).
        transport, loop = getattr(self, "_transport", None), getattr(self, "_loop", None)
        if transport is None or loop is None or self._closed or loop.is_closed():
            return
        self._closed = True
        try:
            loop.call_soon_threadsafe(_release_later, loop, transport)
        except RuntimeError:  # the loop closed meanwhile: its transports went with it
            pass

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(invoked_production_variant={self.invoked_production_variant!r}, "
            f"input_ended={self._input_ended}, closed={self._closed})"
        )


async def _checked_answer(transport: HTTP2Stream, ctx: Context, operation: str) -> AsyncHTTPResponse:
    """The response HEADERS, checked: a non-2xx answer raises the service error it carries."""
    try:
        response = await transport.response()
    except errors.SageMakerRuntimeError as error:  # the connection failed before the answer
        if error.operation is None:
            error.operation = operation
        raise
    ctx.metadata.set(keys.HTTP_STATUS, response.status_code)
    _log_response(ctx, response)
    found = request_id(response)
    if found:
        ctx.metadata.set(keys.REQUEST_ID, found)
    if not 200 <= response.status_code < 300:
        body = await response.read()
        endpoint = ctx.get(keys.ENDPOINT)
        raise parse_error(
            HTTPResponse(response.status_code, response.headers, BytesBody(body), response.reason),
            operation,
            url=endpoint.url if endpoint is not None else None,
        )
    return response


def _answer(response: asyncio.Future[AsyncHTTPResponse] | None) -> AsyncHTTPResponse | None:
    if response is None or not response.done() or response.cancelled() or response.exception() is not None:
        return None
    return response.result()


def _log_response(ctx: Context, response: AsyncHTTPResponse) -> None:
    """The answer's status and headers, when ``log_mode`` asks for responses (it came after the
    stack's RequestResponseLogger ran)."""
    from smruntime.logs import NOT_LOGGING
    from smruntime.options import LogMode

    mode = ctx.options.log_mode if ctx.options is not None else NOT_LOGGING
    if mode is NOT_LOGGING or not mode & (LogMode.RESPONSE | LogMode.RESPONSE_BODY):
        return
    from smruntime.errors import server_text
    from smruntime.logs import RESPONSE_LOG_LIMIT, logger_for
    from smruntime.redaction import redact_headers, redact_text

    line = f"{ctx.operation_name} response: {response.status_code} headers={redact_headers(response.headers)}"
    logger_for(ctx).debug(redact_text(server_text(line, RESPONSE_LOG_LIMIT)))


def _release_later(loop: asyncio.AbstractEventLoop, transport: HTTP2Stream) -> None:
    loop.create_task(transport.aclose())


def _observe(future: asyncio.Future[Any]) -> None:
    """Mark the response's failure as seen: the caller may never read it (a stream only sent on)."""
    if not future.cancelled():
        future.exception()


def _failure(response: asyncio.Future[Any] | None) -> BaseException | None:
    if response is None or not response.done() or response.cancelled():
        return None
    return response.exception()


# -- the blocking face --------------------------------------------------------------------


class BidirectionalStream:
    """A bidirectional stream for blocking code: the same stream as
    :class:`AsyncBidirectionalStream`, on its client's event loop, which each call drives
    from the calling thread.

    Use it with ``with``; ``send``, ``end_input`` and ``for part in stream`` behave as their
    asyncio twins. It may be shared by two threads, one sending and one reading.
    """

    def __init__(self, stream: AsyncBidirectionalStream, loop: BlockingLoop) -> None:
        self._stream = stream
        self._loop = loop

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop.stopped:
            coroutine.close()
            raise errors.ClientClosedError("the client is closed", operation=self._stream._operation)
        return self._loop.run(coroutine)

    def __enter__(self) -> BidirectionalStream:
        self._run(self._stream._ensure_open())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def invoked_production_variant(self) -> str | None:
        return self._stream.invoked_production_variant

    @property
    def request_id(self) -> str | None:
        return self._stream.request_id

    @property
    def metadata(self) -> ResultMetadata:
        return self._stream.metadata

    @property
    def closed(self) -> bool:
        return self._stream.closed

    def wait_for_response(self) -> None:
        """As :meth:`AsyncBidirectionalStream.wait_for_response`."""
        self._run(self._stream.wait_for_response())

    def send(
        self,
        data: bytes | bytearray | memoryview | str,
        *,
        data_type: str | None = None,
        completion_state: str | None = None,
        p: str | None = None,
    ) -> None:
        """As :meth:`AsyncBidirectionalStream.send`."""
        self._run(self._stream.send(data, data_type=data_type, completion_state=completion_state, p=p))

    def end_input(self) -> None:
        """As :meth:`AsyncBidirectionalStream.end_input`."""
        self._run(self._stream.end_input())

    def __iter__(self) -> Iterator[ResponsePayloadPart]:
        return self

    def __next__(self) -> ResponsePayloadPart:
        try:
            return self._run(self._stream.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        """As :meth:`AsyncBidirectionalStream.aclose`. Idempotent."""
        if not self._stream.closed:
            self._run(self._stream.aclose())

    def __repr__(self) -> str:
        return repr(self._stream).replace("AsyncBidirectionalStream", "BidirectionalStream", 1)
