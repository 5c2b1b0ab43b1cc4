"""AsyncHTTP2MockClient: an in-memory HTTP/2 client whose streams a Python model answers,
for users' unit tests of code that uses bidirectional streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Mapping

from smruntime import errors
from smruntime.eventstream import EventStreamDecoder, Message
from smruntime.http import Headers, HTTPRequest
from smruntime.transport.async_protocol import AsyncBytesBody, AsyncHTTPResponse
from smruntime.types import RequestPayloadPart, ResponsePayloadPart

__all__ = ["AsyncHTTP2MockClient", "MockStream"]

Model = Callable[[HTTPRequest, AsyncIterator[RequestPayloadPart]], AsyncIterator[Any]]
"""``model(request, events)``: an async generator over the caller's events that yields answers."""

_END = object()


class MockStream:
    """One stream the mock opened: what the caller sent, and how the stream ended."""

    def __init__(self, request: HTTPRequest) -> None:
        self.request = request
        self.frames: list[bytes] = []
        """Every outer frame the caller sent, as sent."""
        self.events: list[RequestPayloadPart] = []
        self.end_frame = False
        """Whether the (signed) empty end frame arrived."""
        self.end_stream = False
        """Whether the caller half-closed the stream (END_STREAM)."""
        self.reset = False
        """Whether the caller cancelled the stream (RST_STREAM) while a side was still open."""
        self.verify_error: str | None = None


class AsyncHTTP2MockClient:
    """An :class:`~smruntime.transport.http2_protocol.AsyncHTTP2Client` whose streams are
    answered by ``model``, an async generator function ``model(request, events)``.

    ``events`` yields each :class:`~smruntime.types.RequestPayloadPart` the caller sends and
    ends with the caller's input. Whatever ``model`` yields is sent back: a
    :class:`~smruntime.types.ResponsePayloadPart` as a ``PayloadPart`` event, ``bytes`` as
    they are (a frame of your own, an exception frame). With a ``status`` other than 200 the
    stream is answered with ``status``, ``headers`` and ``body`` and the model is not run.
    With ``secret_access_key`` every event's chained signature is checked as the service
    does (a failure resets the stream). Every stream opened is kept in ``streams``.

    Example::

        from smruntime.transport import AsyncHTTP2MockClient
        from smruntime.types import ResponsePayloadPart

        async def echo(request, events):
            async for event in events:
                yield ResponsePayloadPart(event.bytes, data_type=event.data_type)

        mock = AsyncHTTP2MockClient(echo)
    """

    def __init__(
        self,
        model: Model,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        secret_access_key: str | None = None,
    ) -> None:
        self.model = model
        self.status = status
        self.headers = dict(headers or {})
        self.body = body
        self.secret_access_key = secret_access_key
        self.streams: list[MockStream] = []
        self.closed = False

    async def open_stream(self, request: HTTPRequest) -> _Stream:
        if self.closed:
            raise errors.ClientClosedError("the HTTP/2 client is closed")
        await asyncio.sleep(0)  # a real client yields to the loop while it sends the HEADERS
        record = MockStream(HTTPRequest(request.method, request.url, request.headers.copy(), None))
        self.streams.append(record)
        return _Stream(self, record)

    async def aclose(self) -> None:
        self.closed = True


class _Stream:
    """The mock's HTTP2Stream: incoming frames go to the model, its answers come back as DATA."""

    def __init__(self, client: AsyncHTTP2MockClient, record: MockStream) -> None:
        self._client = client
        self._record = record
        self._decoder = EventStreamDecoder()
        self._verifier = _verifier(client.secret_access_key, record.request)
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._outbox: asyncio.Queue[Any] = asyncio.Queue()
        self._failed: errors.TransportError | None = None
        self._task: asyncio.Task[None] | None = None
        if client.status == 200:
            self._task = asyncio.ensure_future(self._run_model())

    async def _run_model(self) -> None:
        try:
            answers = self._client.model(self._record.request, self._events())
            async for answer in answers:
                self._outbox.put_nowait(_frame(answer))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the model failed: the stream is reset, as a server would
            self._fail(f"the model failed: {type(error).__name__}: {error}")
        finally:
            self._outbox.put_nowait(_END)

    async def _events(self) -> AsyncIterator[RequestPayloadPart]:
        while True:
            event = await self._inbox.get()
            if event is _END:
                return
            yield event

    async def send(self, data: bytes) -> None:
        await asyncio.sleep(0)
        if self._failed is not None:
            raise self._failed
        if self._record.end_stream or self._record.reset:
            raise errors.ConnectionClosedError("the stream is closed for sending")
        for frame in self._decoder.feed(data):
            self._record.frames.append(frame.encode())
            self._receive(frame)

    def _receive(self, frame: Message) -> None:
        signed = set(frame.headers) == {":date", ":chunk-signature"}
        inner = frame.payload if signed else frame.encode()  # an unsigned event is the message itself
        if self._verifier is not None:
            from smruntime.local.event_verify import EventSignatureError

            try:
                inner = self._verifier.verify(frame) or b""
            except EventSignatureError as error:
                self._record.verify_error = str(error)
                failure = self._fail(f"the server reset the stream: {error}")
                raise failure from None
        if not inner:
            self._record.end_frame = True
            return
        event = _request_part(EventStreamDecoder().feed(inner)[0])
        self._record.events.append(event)
        self._inbox.put_nowait(event)

    async def end_input(self) -> None:
        if self._record.end_stream:
            return
        self._record.end_stream = True
        self._inbox.put_nowait(_END)

    async def response(self) -> AsyncHTTPResponse:
        await asyncio.sleep(0)
        client = self._client
        if client.status != 200:
            return AsyncHTTPResponse(client.status, Headers(client.headers), AsyncBytesBody(client.body))
        return AsyncHTTPResponse(200, Headers({"content-type": "application/vnd.amazon.eventstream", **client.headers}), _Body(self))

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._outbox.get()
            if item is _END:
                if self._failed is not None:
                    raise self._failed
                return
            yield item

    def _fail(self, reason: str) -> errors.TransportError:
        self._failed = failure = errors.ConnectionClosedError(reason)
        self._inbox.put_nowait(_END)
        self._outbox.put_nowait(_END)
        return failure

    async def aclose(self) -> None:
        record = self._record
        if not record.reset and (not record.end_stream or (self._task is not None and not self._task.done())):
            record.reset = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass


class _Body:
    def __init__(self, stream: _Stream) -> None:
        self._stream = stream

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_chunks()])

    def aiter_chunks(self) -> AsyncIterator[bytes]:
        return self._stream.chunks()

    async def aclose(self) -> None:
        """The stream's aclose releases it."""


def _frame(answer: Any) -> bytes:
    if isinstance(answer, bytes):
        return answer
    if isinstance(answer, ResponsePayloadPart):
        from smruntime.payload_parts import encode_payload_part

        return encode_payload_part(answer)
    raise TypeError(f"a mock model yields ResponsePayloadPart or bytes, not {type(answer).__name__}")


def _request_part(message: Message) -> RequestPayloadPart:
    headers = message.headers

    def text(name: str) -> str | None:
        value = headers.get(name)
        return value if isinstance(value, str) else None

    return RequestPayloadPart(message.payload, text("DataType"), text("CompletionState"), text("P"))


def _verifier(secret: str | None, request: HTTPRequest) -> Any:
    if secret is None:
        return None
    from smruntime.auth import parse_authorization
    from smruntime.event_signing import seed_signature
    from smruntime.local.event_verify import EventVerifier

    authorization = request.headers.get("Authorization") or ""
    parsed = parse_authorization(authorization)
    return EventVerifier(secret, region=parsed.region, service=parsed.service, seed=seed_signature(authorization))
