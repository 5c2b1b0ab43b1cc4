"""InvokeEndpointWithBidirectionalStream on the local endpoint's HTTP/2 listener.

``POST /endpoints/{EndpointName}/invocations-bidirectional-stream``, over HTTP/2 only (an
HTTP/1.1 request is answered 400, as the SDKs refuse to send it). Before anything is
answered, in order:

1. the connection must be within ``ServerLimits.max_connections`` (else 503
   ServiceUnavailable);
2. the SigV4 headers are verified like the other routes' (403 and the service's codes, see
   ``sigv4_verify``), with ``X-Amz-Content-SHA256: STREAMING-AWS4-HMAC-SHA256-EVENTS``;
   the request's signature seeds the chain every event signature must follow;
3. the endpoint name and the ``TargetVariant``, ``ModelInvocationPath`` and
   ``ModelQueryString`` headers are validated, the endpoint looked up and the variant routed
   (400 ValidationError; a variant with several containers or models cannot stream both ways);
4. faults armed on the endpoint apply: latency, a connection reset, a scheduled error
   (503, 500, 424 ModelError ... with ``X-Amzn-ErrorType`` and a JSON body).

Then the answer starts at once, before any input is read (a model may speak first):
``200``, ``Content-Type: application/vnd.amazon.eventstream``,
``x-Amzn-Invoked-Production-Variant`` and ``x-amzn-RequestId``. From there on, reading
and answering run side by side: every input frame is checked as it arrives (see
``bidi_wire.InboundEvents``) and its part handed to the model, and every part the model
yields goes out at once as a ``PayloadPart`` event. The stream ends when the model returns,
or with one exception event, after which nothing more is sent:

=====================================================  ==============================  ==============================
what happened                                          exception event                 document
=====================================================  ==============================  ==============================
an event's signature does not follow the chain         ``InvalidSignatureException``   ``{"message": ...}``
(tampered, reordered, dropped, replayed), a ``:date``
more than 5 min from the server's clock, an event
after the end frame, or the input ended without the
signed end frame
a frame that does not decode, an inner event that is   ``ValidationError``             ``{"Message": ...}``
not a well-formed PayloadPart, an event over
``LocalConfig.max_event_bytes``
the model raised                                       ``ModelStreamError``            ``ErrorCode`` ``StreamBroken``
nothing moved either way for ``stream_idle_timeout``   ``ModelStreamError``            ``ErrorCode`` ``StreamIdleTimeout``
=====================================================  ==============================  ==============================

The service's reference says which errors the stream carries (``ModelStreamError``,
``InternalStreamFailure``) but not how it answers a bad input event; the local endpoint
answers like AWS's other signed event streams (Amazon Transcribe), with an exception event
on the response stream, named after the error the same fault gets on the request's headers.

The ``break_stream_after(N)`` fault cuts the connection after N parts (no end of stream);
``fail_stream_after(N)`` ends the stream with an ``InternalStreamFailure`` event after N parts.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import logging
import uuid
from collections.abc import Callable
from typing import Final

import attrs
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from smruntime.local.app import LocalApp, error_response, wire_response
from smruntime.local.bidi_models import BidiModel, BidiOutput, BidiRequest, bidirectional_model
from smruntime.local.bidi_wire import UTF8, InboundEvents, InputRejected, Part, exception_frame, part_frame
from smruntime.local.event_verify import EventVerifier
from smruntime.local.h2_server import Connections, StreamFlow
from smruntime.local.hosts import HostPolicy
from smruntime.local.models import ModelFailure
from smruntime.local.routing import route
from smruntime.local.state import EndpointRuntime, LocalState
from smruntime.local.streaming import EVENT_STREAM_CONTENT_TYPE, STREAM_BROKEN, injected_stream_failure
from smruntime.local.wire import (
    BidiParams,
    InvokeParams,
    ServiceError,
    parse_bidi_params,
    validate_endpoint_name,
    validation_error,
)
from smruntime.middleware.reprs import fields_repr

__all__ = ["IDLE_TIMEOUT", "BidirectionalStreams", "create_http2_app"]

logger = logging.getLogger("smruntime.local")

IDLE_TIMEOUT: Final = "StreamIdleTimeout"
_INBOX_HIGH: Final = 1024 * 1024
"""Bytes of parts waiting for the model past which the client is held back (flow control)."""
_INBOX_LOW: Final = _INBOX_HIGH // 4
"""... and below which it may send again."""
_SERVICE: Final = "sagemaker"
_YIELD_EVERY: Final = 4 * 1024
"""Answer bytes a stream sends before it lets the event loop run once."""


class _ConnectionCut(Exception):
    """A fault cut the connection: there is nobody left to answer."""


@attrs.frozen
class _Opened:
    """A stream that passed steps 1-4 of the module docstring."""

    __repr__ = fields_repr

    endpoint: EndpointRuntime
    variant: str
    model: BidiModel
    params: BidiParams
    verifier: EventVerifier | None


class BidirectionalStreams:
    """The ASGI app of the route (a Starlette ``Route`` endpoint)."""

    def __init__(self, state: LocalState, connections: Connections, *, idle_timeout: float) -> None:
        self._state = state
        self._connections = connections
        self._idle_timeout = idle_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(uuid.uuid4())
        name = scope.get("path_params", {}).get("endpoint_name", "")
        runtime = self._state.endpoints.get(name)
        if runtime is not None:
            runtime.counters.request_received()
        try:
            opened = await self._open(scope, name)
        except ServiceError as error:
            if runtime is not None:
                runtime.counters.answered(error.status)
            await error_response(self._state, error, request_id)(scope, receive, send)
            return
        except _ConnectionCut:
            return
        opened.endpoint.counters.answered(200)
        opened.endpoint.counters.invocation_started(opened.variant)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", EVENT_STREAM_CONTENT_TYPE.encode()),
            (b"x-amzn-invoked-production-variant", opened.variant.encode()),
            (b"x-amzn-requestid", request_id.encode()),
            (b"date", email.utils.formatdate(self._state.now(), usegmt=True).encode()),
        ]})
        session = _Session(opened, scope, receive, send, self._connections,
                           max_event_bytes=self._state.config.max_event_bytes, idle_timeout=self._idle_timeout,
                           clock=self._state.now)
        await session.run()

    async def _open(self, scope: Scope, name: str) -> _Opened:
        state = self._state
        if self._connections.over_limit(scope.get("client")):
            raise ServiceError(503, "ServiceUnavailable", "The endpoint has too many open connections. "
                                                          "Try your request again.")
        if scope.get("http_version") != "2":
            raise ServiceError(400, "ValidationError", "InvokeEndpointWithBidirectionalStream requires HTTP/2 "
                                                       f"(this request came over HTTP/{scope.get('http_version')}).")
        verifier = None
        if state.config.verify_signatures:
            signed = state.verifier.verify_headers(
                method=scope["method"],
                raw_path=scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
                raw_query=scope.get("query_string", b"").decode("latin-1"),
                headers=[(key.decode("latin-1"), value.decode("latin-1")) for key, value in scope["headers"]],
                streaming_events=True,
            )
            if signed.declared_hash is None:
                state.verifier.verify_body(signed, b"")  # signed with the empty body's hash
            verifier = EventVerifier(signed.secret_access_key, region=signed.parsed.region, service=_SERVICE,
                                     seed=signed.parsed.signature)
        validate_endpoint_name(name)
        params = parse_bidi_params(Headers(scope=scope))
        runtime = state.endpoints.get(name)
        if runtime is None:
            raise validation_error(f"Endpoint {name} of account {state.config.account_id} not found.")
        target = route(runtime, InvokeParams(target_variant=params.target_variant), state.sessions,
                       account=state.config.account_id)
        if len(target.calls) != 1:
            raise validation_error(f"Endpoint {name}'s variant {target.variant} runs several containers in a "
                                   "pipeline; a bidirectional stream needs a single container.")
        await self._apply_faults(runtime, scope)
        return _Opened(endpoint=runtime, variant=target.variant, model=bidirectional_model(target.calls[0][1]),
                       params=params, verifier=verifier)

    async def _apply_faults(self, runtime: EndpointRuntime, scope: Scope) -> None:
        action = runtime.faults.take()
        if action.latency:
            await asyncio.sleep(action.latency)
        if action.reset:
            runtime.counters.answered(0)  # before the reset: the client may look as soon as it sees it
            self._connections.cut(scope.get("client"), reset=True)
            raise _ConnectionCut
        if action.error is not None:
            raise action.error


class _Session:
    """One open stream: the reader, the model and the idle watch, side by side."""

    def __init__(self, opened: _Opened, scope: Scope, receive: Receive, send: Send, connections: Connections, *,
                 max_event_bytes: int, idle_timeout: float, clock: Callable[[], float]) -> None:
        self._opened = opened
        self._scope = scope
        self._receive = receive
        self._send = send
        self._send_body = connections.direct_output(scope, send)
        self._connections = connections
        self._inbound = InboundEvents(opened.verifier, max_frame_bytes=max_event_bytes, clock=clock)
        self._loop = asyncio.get_running_loop()  # once: on Python 3.11 each lookup asks the OS for the pid
        self._flow = connections.stream_flow(scope)
        self._inbox = _Inbox(self._flow, self._loop)
        self._idle_timeout = idle_timeout
        self._last_activity = 0.0
        self._break_after = opened.endpoint.faults.take_stream_break()
        self._fail_after = opened.endpoint.faults.take_stream_failure()
        self._input: asyncio.Future[None] = self._loop.create_future()
        # Last: messages already queued are delivered at once, to a session ready for them.
        self._direct = connections.direct_input(scope, self._deliver)

    async def run(self) -> None:
        self._touch()
        # The input is handed over as hypercorn reads it (direct) or read here from ``receive``.
        if self._direct:
            reader = self._input
        else:
            logger.debug("a stream of endpoint %s reads its input through receive()", self._opened.endpoint.name)
            reader = asyncio.create_task(self._read())
        speaker = asyncio.create_task(self._speak())
        watch = asyncio.create_task(self._watch())
        try:
            final = await self._until_done(reader, speaker, watch)
        except (_ConnectionCut, _Disconnected):
            return
        except Exception:
            # A bug here must still end the stream: the client would otherwise wait forever.
            logger.exception("the bidirectional stream of endpoint %s failed", self._opened.endpoint.name)
            final = exception_frame("InternalStreamFailure", {"Message": "The stream failed inside the endpoint."})
        finally:
            for task in (reader, speaker, watch):
                task.cancel()
            await asyncio.gather(reader, speaker, watch, return_exceptions=True)
            if self._flow is not None:
                await self._flow.release()  # held credit is the connection's too
        if final is not None:
            await self._send({"type": "http.response.body", "body": final, "more_body": True})
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _until_done(self, reader: asyncio.Future[None], speaker: asyncio.Task[None],
                          watch: asyncio.Task[None]) -> bytes | None:
        """Wait for the model to finish, the input to be refused or the stream to idle out;
        the exception event to end with, if any."""
        pending: set[asyncio.Future[None]] = {reader, speaker, watch}
        while speaker in pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if reader in done and (error := reader.exception()) is not None:
                if isinstance(error, InputRejected):
                    return error.frame()
                raise error
            if watch in done:
                return exception_frame("ModelStreamError", {
                    "Message": f"Nothing was sent or received on the stream for {self._idle_timeout:g} seconds.",
                    "ErrorCode": IDLE_TIMEOUT,
                })
        speaker.result()  # the model's failures are answered inside; a cut connection raises
        return None

    # --- the three sides ---

    async def _read(self) -> None:
        """Read the input from ``receive`` until it ends (where it is not handed over directly)."""
        while not self._take(await self._receive()):
            pass

    def _deliver(self, message: Message) -> None:
        """Take one request message as hypercorn reads it; the outcome completes ``_input``."""
        if self._input.done():
            return  # the input ended, failed or the stream is over: nothing more is wanted
        try:
            if self._take(message):
                self._input.set_result(None)
        except Exception as error:  # refused input, a disconnect, or a bug: _until_done decides
            self._input.set_exception(error)

    def _take(self, message: Message) -> bool:
        """Check one request message's frames and hand their parts to the model; True once the input is over."""
        if message["type"] == "http.disconnect":
            raise _Disconnected
        if message["type"] != "http.request":
            return False
        self._touch()
        for part in self._inbound.feed(message.get("body", b"")):
            self._inbox.put(part)
        if not message.get("more_body", False):
            self._inbound.finish()
            self._inbox.end()
            return True
        return False

    async def _speak(self) -> None:
        """Run the model and send each of its answers as one PayloadPart event."""
        opened = self._opened
        request = BidiRequest(parts=self._inbox, endpoint_name=opened.endpoint.name, variant_name=opened.variant,
                              target_variant=opened.params.target_variant,
                              model_invocation_path=opened.params.model_invocation_path,
                              model_query_string=opened.params.model_query_string)
        opened.endpoint.counters.model_ran()
        sent = 0
        unyielded = 0  # answer bytes sent since the last sure suspension
        try:
            async with contextlib.aclosing(opened.model(request)) as answers:  # type: ignore[type-var]
                async for answer in answers:
                    if self._fail_after is not None and sent >= self._fail_after:
                        frame = injected_stream_failure()
                        await self._send({"type": "http.response.body", "body": frame, "more_body": True})
                        return
                    if self._break_after is not None and sent >= self._break_after:
                        client = self._scope.get("client")
                        await self._connections.flush(client)  # the N parts reach the client first
                        self._connections.cut(client, reset=False)
                        raise _ConnectionCut
                    frame = part_frame(_as_part(answer))
                    await self._send_body(frame)
                    self._touch()
                    sent += 1
                    unyielded += len(frame)
                    if unyielded >= _YIELD_EVERY:
                        # A send need not suspend (a direct write, a reset stream's ignored one): a
                        # model answering in a tight loop would hold up the other streams, and the
                        # news of a reset would never reach this one.
                        unyielded = 0
                        await asyncio.sleep(0)
        except (_ConnectionCut, _Disconnected, asyncio.CancelledError):
            raise
        except Exception as error:
            message = error.message if isinstance(error, ModelFailure) else f"{type(error).__name__}: {error}"
            logger.warning("the model of endpoint %s failed mid-stream: %s", opened.endpoint.name, message)
            frame = exception_frame("ModelStreamError", {"Message": f"The model's stream broke: {message}",
                                                         "ErrorCode": STREAM_BROKEN})
            await self._send({"type": "http.response.body", "body": frame, "more_body": True})

    async def _watch(self) -> None:
        """Return once nothing moved either way for the idle timeout."""
        loop = self._loop
        while True:
            left = self._last_activity + self._idle_timeout - loop.time()
            if left <= 0:
                return
            await asyncio.sleep(left)

    def _touch(self) -> None:
        self._last_activity = self._loop.time()


class _Inbox:
    """The parts read and not yet taken by the model, in order: the async iterator of parts the
    model reads.

    Unbounded as a queue: the reader must never stop reading, since hypercorn reads the whole
    connection (the client's WINDOW_UPDATEs for our answers too) only as fast as the app. Past
    _INBOX_HIGH bytes waiting, HTTP/2 flow control holds the client back instead, until the
    model has taken all but _INBOX_LOW of them.
    """

    __slots__ = ("_ended", "_flow", "_loop", "_parts", "_size", "_waiter")

    def __init__(self, flow: StreamFlow | None, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parts: collections.deque[Part] = collections.deque()
        self._size = 0
        self._ended = False
        self._flow = flow
        self._waiter: asyncio.Future[None] | None = None

    def put(self, part: Part) -> None:
        self._parts.append(part)
        self._size += len(part.data)
        if self._flow is not None and self._size > _INBOX_HIGH:
            self._flow.hold()
        self._wake()

    def end(self) -> None:
        """No part follows: the model's iteration ends once it has taken those waiting."""
        self._ended = True
        self._wake()

    def __aiter__(self) -> _Inbox:
        return self

    async def __anext__(self) -> Part:
        while not self._parts:
            if self._ended:
                raise StopAsyncIteration
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        part = self._parts.popleft()
        self._size -= len(part.data)
        flow = self._flow
        if flow is not None and flow.holding and self._size <= _INBOX_LOW:
            await flow.release()
        return part

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Disconnected(Exception):
    """The client went away (the stream was reset or the connection lost)."""


def _as_part(answer: BidiOutput) -> Part:
    if isinstance(answer, Part):
        return answer
    if isinstance(answer, str):
        return Part(answer.encode(), UTF8)
    if isinstance(answer, bytes | bytearray | memoryview):
        return Part(bytes(answer))
    raise TypeError(f"a bidirectional model yields Part, bytes or str, not {type(answer).__name__}")


def create_http2_app(state: LocalState, connections: Connections, *, hosts: HostPolicy,
                     idle_timeout: float) -> LocalApp:
    """The app of the HTTP/2 listener: the bidirectional route, ``GET /ping``, and 404 for the rest."""
    streams = BidirectionalStreams(state, connections, idle_timeout=idle_timeout)

    async def ping(_request: Request) -> Response:
        return wire_response(state, 200, b'{"status": "ok"}', [("Content-Type", "application/json")],
                             str(uuid.uuid4()))

    async def unknown(request: Request) -> Response:
        error = ServiceError(404, "UnknownOperationException", f"No operation at {request.method} {request.url.path}"
                             " on the HTTP/2 port (it serves InvokeEndpointWithBidirectionalStream only)")
        return error_response(state, error, str(uuid.uuid4()))

    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    return LocalApp(state, hosts=hosts, routes=[
        Route("/endpoints/{endpoint_name:path}/invocations-bidirectional-stream", streams, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/{path:path}", unknown, methods=methods),
    ])
