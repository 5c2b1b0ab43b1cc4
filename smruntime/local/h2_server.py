"""The local endpoint's HTTP/2 listener: hypercorn serving the bidirectional-stream app.

It listens on its own port, as the service does on 8443: cleartext HTTP/2 with prior
knowledge (no Upgrade) on a plain socket, or TLS with ALPN ``h2`` when given a certificate
and key. The accept loop is ours, and hypercorn speaks HTTP/2 on each connection, so that
the app can find the connection a stream belongs to (:class:`Connections`): to hold
connections to ``ServerLimits.max_connections`` (one over the limit has every stream
answered 503), and to cut a connection on purpose (the ``reset_next`` and
``break_stream_after`` faults). A connection with no stream open is closed after
``ServerLimits.header_timeout`` (hypercorn's keep-alive timeout), as is a TLS handshake that
takes longer.

:class:`HTTP2Listener` runs it in a thread with its own event loop (``LocalEndpoint``, and
``serve`` beside uvicorn), started and stopped with the HTTP/1.1 server.

Five changes reach into hypercorn's connection objects (as of hypercorn 0.18), each falling
back to hypercorn's own behaviour where they are not found: a connection is let go as soon
as its client closes it (``_TCPServer``), DATA on a stream whose answer is complete is
dropped rather than taking the connection down (``_FinishedStreamsIgnored``), a stream's
flow-control credit can be held back (``StreamFlow``), a stream's request messages can be
handed to the app as they are read rather than through a queue
(``Connections.direct_input``), and a short answer can be written to the connection at once
rather than through hypercorn's send task (``Connections.direct_output``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Final

import attrs
import h2.exceptions
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.utils import wrap_app
from starlette.types import ASGIApp, Receive, Scope, Send

from smruntime.local.limits import ServerLimits
from smruntime.middleware.reprs import fields_repr

__all__ = ["Connections", "HTTP2Listener", "StreamFlow", "TLSFiles", "tls_context"]

logger = logging.getLogger("smruntime.local")

_GRACE_SECONDS: Final = 5.0
_CONNECTION_WINDOW: Final = 16 * 1024 * 1024
"""Added to a connection's receive window (65,535 bytes to begin with)."""


@attrs.frozen
class TLSFiles:
    """A PEM certificate (chain) and its private key: the HTTP/2 listener then speaks TLS, ALPN ``h2``."""

    __repr__ = fields_repr

    certfile: str
    keyfile: str


def tls_context(files: TLSFiles) -> ssl.SSLContext:
    """A server context offering only ``h2`` (RFC 9113 §9.2: TLS 1.2 or later, no compression)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    context.set_alpn_protocols(["h2"])
    context.load_cert_chain(files.certfile, files.keyfile)
    return context


class _TCPServer(TCPServer):
    """hypercorn's connection handler, letting go of a connection as soon as the client closed it.

    hypercorn keeps a connection whose client went away until its keep-alive timer runs out,
    so it would count against ``max_connections`` (and hold its socket) for up to
    ``header_timeout`` more. Once the socket reads EOF nothing more can happen on it.
    """

    async def _read_data(self) -> None:
        await super()._read_data()
        idle = getattr(self, "idle_task", None)
        if idle is not None:
            await idle.stop()


class StreamFlow:
    """Holds back the HTTP/2 flow-control credit of one stream's received data, and gives it back.

    hypercorn acknowledges received data (reopening the client's send window) as soon as it
    has queued it for the app, so a client could send without bound to a model that does
    not read. While held, that acknowledgement is kept back: the client's window runs out
    and it waits, as it would for the service. The app keeps reading meanwhile, so the
    connection's other frames (the client's WINDOW_UPDATEs for the answers) still get in.
    """

    def __init__(self, protocol: Any, stream_id: int) -> None:
        self._protocol = protocol
        self._stream_id = stream_id
        self._held = 0
        self.holding = False
        gate = protocol.connection.acknowledge_received_data
        if not isinstance(gate, _AcknowledgeGate):
            gate = _AcknowledgeGate(gate)
            protocol.connection.acknowledge_received_data = gate
        self._gate = gate

    def hold(self) -> None:
        if not self.holding:
            self.holding = True
            self._gate.held[self._stream_id] = 0

    async def release(self) -> None:
        if not self.holding:
            return
        self.holding = False
        size = self._gate.held.pop(self._stream_id, 0)
        if size:
            try:
                self._gate.acknowledge(size, self._stream_id)
            except Exception:  # the stream or the connection closed meanwhile: nothing to give back
                return
            # Shielded: h2 has counted the WINDOW_UPDATE as sent, so it must reach the socket even
            # when the stream's task is cancelled while the write waits for the connection.
            await asyncio.shield(self._protocol._flush())


class _AcknowledgeGate:
    """Stands in for ``H2Connection.acknowledge_received_data``, counting what a held stream receives."""

    def __init__(self, acknowledge: Any) -> None:
        self.acknowledge = acknowledge
        self.held: dict[int, int] = {}

    def __call__(self, size: int, stream_id: int) -> None:
        if stream_id in self.held:
            self.held[stream_id] += size
        else:
            self.acknowledge(size, stream_id)


@attrs.define(eq=False)
class _Connection:
    __repr__ = fields_repr

    writer: asyncio.StreamWriter
    server: TCPServer
    over_limit: bool


class _Ignored:
    """Stands in for a stream hypercorn has finished with: what still arrives on it is dropped."""

    idle = True

    async def handle(self, _event: object) -> None:
        return None


class _FinishedStreamsIgnored(dict[int, Any]):
    # hypercorn forgets a stream once its response is complete, and a DATA frame the client
    # still sends on it (legal: the client's half is open) would then raise KeyError and
    # take the whole connection down. An early answer (an error, a model that is done) is
    # normal here, so such frames are dropped instead (hypercorn has acknowledged them).
    def __missing__(self, _stream_id: int) -> _Ignored:
        return _IGNORED


_IGNORED: Final = _Ignored()


class Connections:
    """The open connections of one listener, by the client's address (the ASGI ``client``)."""

    def __init__(self, max_connections: int) -> None:
        self._max = max_connections
        self._open: dict[tuple[str, int], _Connection] = {}

    def __len__(self) -> int:
        return len(self._open)

    def opened(self, writer: asyncio.StreamWriter, server: TCPServer) -> tuple[str, int] | None:
        peer = writer.get_extra_info("peername")
        if not isinstance(peer, tuple):
            return None
        key = (str(peer[0]), int(peer[1]))
        self._open[key] = _Connection(writer, server, over_limit=len(self._open) >= self._max)
        return key

    def closed(self, key: tuple[str, int] | None) -> None:
        if key is not None:
            self._open.pop(key, None)

    def stream_started(self, client: Any) -> None:
        """Called by the app for every stream; on a connection's first, fits it out (once)."""
        found = self._find(client)
        protocol = getattr(getattr(found.server, "protocol", None), "protocol", None) if found else None
        streams = getattr(protocol, "streams", None)
        if type(streams) is dict:
            protocol.streams = _FinishedStreamsIgnored(streams)  # type: ignore[union-attr]
            # A stream held back (StreamFlow) keeps up to its own window (64 KiB) of the
            # connection's; a large connection window keeps that from stalling the others.
            # The WINDOW_UPDATE goes out with hypercorn's next write.
            with contextlib.suppress(Exception):
                protocol.connection.increment_flow_control_window(_CONNECTION_WINDOW)  # type: ignore[union-attr]

    def stream_flow(self, scope: Any) -> StreamFlow | None:
        """The flow-control credit of the HTTP/2 stream the ASGI ``scope`` belongs to (None if not found)."""
        found = self._stream(scope)
        return StreamFlow(found[1], found[2]) if found is not None else None

    def direct_input(self, scope: Any, deliver: Callable[[Any], None]) -> bool:
        """Have the request messages of the stream ``scope`` belongs to handed to ``deliver``
        by the task that reads the connection, as they arrive, instead of queued for
        ``receive``: one task switch less per message. Messages already queued go first.

        False, and nothing changed, where the stream is not found or its queue is full (a
        message may then be on its way into it): the app reads with ``receive`` as usual.
        ``deliver`` must not block and must not raise.
        """
        found = self._stream(scope)
        stream = found[3] if found is not None else None
        queue = getattr(getattr(stream, "app_put", None), "__self__", None)
        if not isinstance(queue, asyncio.Queue) or queue.full():
            return False
        while not queue.empty():
            deliver(queue.get_nowait())

        async def app_put(message: Any) -> None:
            deliver(message)

        stream.app_put = app_put  # type: ignore[union-attr]
        return True

    def direct_output(self, scope: Any, send: Send) -> Callable[[bytes], Awaitable[None]]:
        """A sender of response body bytes for the stream ``scope`` belongs to (after its headers).

        Where nothing of the stream waits in hypercorn's send buffer, ``body`` fits the send
        window and one frame, and no one holds or waits for the connection's write lock, it goes
        to the connection at once, instead of through hypercorn's send task: one task switch
        less per answer. Anything else takes the ASGI ``send``.

        The lock must be free because h2 counts a frame as sent (against the flow-control
        windows, and in its header compression) once it is queued: the bytes must reach the
        socket's buffer before the caller can be suspended, and so cancelled (a reset stream,
        an idle timeout) with them in hand.
        """

        async def through_app(body: bytes) -> None:
            await send({"type": "http.response.body", "body": body, "more_body": True})

        found = self._stream(scope)
        known, protocol, stream_id = found[:3] if found is not None else (None, None, 0)
        connection = getattr(protocol, "connection", None)
        buffers = getattr(protocol, "stream_buffers", None)
        flush = getattr(protocol, "_flush", None)
        lock = getattr(known.server, "send_lock", None) if known is not None else None
        if connection is None or type(buffers) is not dict or flush is None or not isinstance(lock, asyncio.Lock):
            return through_app

        async def direct(body: bytes) -> None:
            buffer = buffers.get(stream_id)
            try:
                now = (
                    not getattr(buffer, "buffer", True)  # data still queued goes first
                    and not getattr(buffer, "_complete", True)
                    # Acquiring would wait while it is held, or while a woken waiter has yet to take it.
                    and not lock.locked()
                    and not getattr(lock, "_waiters", None)
                    and len(body) <= connection.local_flow_control_window(stream_id)
                    and len(body) <= connection.max_outbound_frame_size
                )
                if now:
                    connection.send_data(stream_id, body)
            except h2.exceptions.ProtocolError:  # the stream was reset or closed: hypercorn's path handles that
                now = False
            if now:
                await flush()
            else:
                await through_app(body)

        return direct

    def over_limit(self, client: Any) -> bool:
        """Whether the connection of the ASGI ``client`` came past ``max_connections``."""
        found = self._find(client)
        return found is not None and found.over_limit

    async def flush(self, client: Any) -> None:
        """Wait until what the app has sent on the client's connection is written to the socket."""
        found = self._find(client)
        if found is None:
            return
        protocol = getattr(getattr(found.server, "protocol", None), "protocol", None)
        for buffer in list(getattr(protocol, "stream_buffers", {}).values()):
            if getattr(buffer, "buffer", True):  # one never filled (direct_output) never signals empty
                await buffer.drain()
        await found.writer.drain()

    def cut(self, client: Any, *, reset: bool) -> None:
        """Close the client's connection now: with a TCP RST (``reset``) or a FIN."""
        found = self._find(client)
        if found is None:
            raise ConnectionAbortedError("fault injection: the stream's connection is not known")
        transport = found.writer.transport
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger 0: close() sends RST instead of FIN, what a crashed proxy looks like.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()

    def _find(self, client: Any) -> _Connection | None:
        if not isinstance(client, list | tuple) or len(client) < 2:
            return None
        return self._open.get((str(client[0]), int(client[1])))

    def _stream(self, scope: Any) -> tuple[_Connection, Any, int, Any] | None:
        """The connection, hypercorn's HTTP/2 protocol, the stream ID and the stream object
        serving the ASGI ``scope``."""
        found = self._find(scope.get("client"))
        if found is None:
            return None
        protocol = getattr(getattr(found.server, "protocol", None), "protocol", None)
        for stream_id, stream in dict(getattr(protocol, "streams", {})).items():
            if getattr(stream, "scope", None) is scope:
                return found, protocol, stream_id, stream
        return None


def hypercorn_config(limits: ServerLimits, *, quiet: bool) -> Config:
    """hypercorn's settings for the listener (HTTP/2 only; timeouts from ``limits``)."""
    config = Config()
    config.keep_alive_timeout = limits.header_timeout
    config.ssl_handshake_timeout = limits.header_timeout
    config.graceful_timeout = _GRACE_SECONDS
    config.include_server_header = False
    config.include_date_header = False  # the app writes Date from its own (possibly offset) clock
    config.h2_max_concurrent_streams = 100
    config.errorlog = logger
    config.accesslog = None if quiet else "-"  # serve: one line a stream on stdout, like uvicorn
    return config


async def serve_http2(app: ASGIApp, sock: socket.socket, connections: Connections, *, limits: ServerLimits,
                      tls: ssl.SSLContext | None, stop: asyncio.Event, quiet: bool,
                      started: threading.Event | None = None) -> None:
    """Serve ``app`` on the bound ``sock`` until ``stop`` is set; connections get a grace period to finish."""
    config = hypercorn_config(limits, quiet=quiet)

    async def app_on_known_connection(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            connections.stream_started(scope.get("client"))
        await app(scope, receive, send)

    wrapped = wrap_app(app_on_known_connection, config.wsgi_max_body_size, "asgi")  # type: ignore[arg-type]
    context = WorkerContext(None)
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        server = _TCPServer(wrapped, loop, config, context, {}, reader, writer)
        key = connections.opened(writer, server)
        try:
            await server
        except asyncio.CancelledError:
            # Cut at shutdown, past the grace period. Ending normally keeps asyncio's
            # start_server callback (Python 3.11) from logging the cancellation as an error.
            writer.transport.abort()
        finally:
            connections.closed(key)

    server = await asyncio.start_server(connection, sock=sock, ssl=tls, backlog=128,
                                        ssl_handshake_timeout=limits.header_timeout if tls else None)
    if started is not None:
        started.set()
    try:
        await stop.wait()
    finally:
        await context.terminated.set()
        server.close()
        await server.wait_closed()
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=_GRACE_SECONDS)


class HTTP2Listener:
    """The HTTP/2 server in a background thread with its own event loop."""

    def __init__(self, app: ASGIApp, sock: socket.socket, connections: Connections, *, limits: ServerLimits,
                 tls: TLSFiles | None = None, quiet: bool = True) -> None:
        self._app = app
        self._socket = sock
        self._connections = connections
        self._limits = limits
        self._tls = tls_context(tls) if tls is not None else None
        self._quiet = quiet
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def connections(self) -> Connections:
        return self._connections

    @property
    def secure(self) -> bool:
        return self._tls is not None

    def start(self, timeout: float) -> None:
        port = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name=f"smruntime-local-http2-{port}", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError(f"the local HTTP/2 listener did not start on port {port}")
        if self._failure is not None:
            raise RuntimeError(f"the local HTTP/2 listener failed to start: {self._failure}") from self._failure

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve_http2(self._app, self._socket, self._connections, limits=self._limits, tls=self._tls,
                              stop=self._stop, quiet=self._quiet, started=self._started)

        try:
            asyncio.run(main())
        except BaseException as error:  # reported by start(), or logged once running
            self._failure = error
            if self._started.is_set():
                logger.exception("the local HTTP/2 listener stopped")
            self._started.set()

    def stop(self, timeout: float) -> None:
        """Stop accepting, give open streams a grace period, and wait for the thread; idempotent."""
        loop, stop, thread = self._loop, self._stop, self._thread
        self._thread = None
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass  # the loop closed in the meantime
        if thread is not None:
            thread.join(timeout)
        self._socket.close()
