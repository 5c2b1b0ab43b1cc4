"""HTTP/2 test servers on ephemeral loopback ports, each on its own thread and event loop.

* :class:`HypercornServer` runs hypercorn with :func:`echo_app` (a raw ASGI app): cleartext
  HTTP/2 with prior knowledge on a plain bind, or TLS with ALPN ``h2`` and a trustme CA.
* :class:`RawH2Server` is a server written on ``h2`` directly, for what an ASGI server cannot be
  made to do on purpose: reset a stream with a chosen code, send GOAWAY, drop the connection,
  withhold its flow-control window. It records what clients sent (headers, bytes, resets).

Leaving the ``with`` block stops the server and joins its thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import attrs
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

__all__ = ["HypercornServer", "RawH2Server", "RawStream", "TLSFiles", "echo_app", "make_tls", "refusing_port"]

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A raw ASGI app, by path.

    ``/echo``: answer at once, then send back each request chunk as it arrives.
    ``/after-input``: the same, but answer only once the first chunk arrived.
    ``/sink``: read the whole request, then answer with its length.
    ``/source?size=N``: ignore the request, answer with N bytes (in 64 KiB pieces).
    ``/headers``: answer with the request's headers, one ``name: value`` line each.
    """
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    query = urllib.parse.parse_qs(scope["query_string"].decode())
    start = {"type": "http.response.start", "status": 200, "headers": [(b"x-path", path.encode())]}
    if path in ("/echo", "/after-input"):
        if path == "/echo":
            await send(start)
        started = path == "/echo"
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            if not started:
                await send(start)
                started = True
            if message.get("body"):
                await send({"type": "http.response.body", "body": message["body"], "more_body": True})
            if not message.get("more_body"):
                break
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif path == "/sink":
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            total += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send(start)
        await send({"type": "http.response.body", "body": str(total).encode()})
    elif path == "/source":
        await send(start)
        left = int(query["size"][0])
        piece = b"s" * 65536
        while left > 0:
            size = min(left, len(piece))
            left -= size
            await send({"type": "http.response.body", "body": piece[:size], "more_body": left > 0})
    elif path == "/headers":
        await send(start)
        lines = b"".join(name + b": " + value + b"\n" for name, value in scope["headers"])
        await send({"type": "http.response.body", "body": lines})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@attrs.frozen
class TLSFiles:
    """A throwaway CA (its PEM file for the client) and the server's certificate chain and key."""

    ca_file: str
    cert_file: str
    key_file: str


def make_tls(directory: str) -> TLSFiles:
    """A trustme CA and a certificate for localhost and 127.0.0.1, written to ``directory``."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    files = TLSFiles(
        os.path.join(directory, "ca.pem"), os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    )
    ca.cert_pem.write_to_path(files.ca_file)
    cert.private_key_pem.write_to_path(files.key_file)
    cert.cert_chain_pems[0].write_to_path(files.cert_file)
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(files.cert_file, append=True)
    return files


class _ServerThread:
    """An event loop on a thread of its own, running ``serve(stop)`` until :meth:`stop`."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def _start(self, serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        def run() -> None:
            async def main() -> None:
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                await serve(self._stop)

            try:
                asyncio.run(main())
            except BaseException as exc:  # reported by stop()
                self._failure = exc
                self._ready.set()

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self._name} did not start")
        if self._failure is not None:
            raise RuntimeError(f"{self._name} failed to start") from self._failure

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
            if self._thread.is_alive():
                raise RuntimeError(f"{self._name} did not stop")


class HypercornServer(_ServerThread):
    """hypercorn serving ``app`` on 127.0.0.1 and an ephemeral port; ``tls`` for https, where the
    server picks the first protocol of ``alpn`` the client offers."""

    def __init__(
        self,
        app: Callable[..., Awaitable[None]] = echo_app,
        *,
        tls: TLSFiles | None = None,
        alpn: tuple[str, ...] = ("h2", "http/1.1"),
    ) -> None:
        super().__init__("hypercorn-h2")
        self.app = app
        self.tls = tls
        self.alpn = alpn
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def __enter__(self) -> HypercornServer:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.listen(128)  # connections queue until hypercorn accepts: no race with the first test
        config = Config()
        config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) the socket
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 1
        if self.tls is not None:
            config.certfile = self.tls.cert_file
            config.keyfile = self.tls.key_file
            config.alpn_protocols = list(self.alpn)

        async def run(stop: asyncio.Event) -> None:
            self._ready.set()
            await serve(self.app, config, shutdown_trigger=stop.wait, mode="asgi")  # type: ignore[arg-type]

        self._start(run)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@attrs.define
class RawStream:
    """What the raw server saw of one client stream."""

    stream_id: int
    headers: list[tuple[str, str]]
    received: bytearray = attrs.field(factory=bytearray)
    ended: bool = False
    reset_code: int | None = None  # the client's RST_STREAM code


class RawH2Server(_ServerThread):
    """A scripted HTTP/2 server on ``h2``: cleartext prior knowledge on 127.0.0.1.

    Behaviour by ``:path``:

    ``/echo``: answer at once and echo every DATA frame, acknowledging it on receipt.
    ``/hold``: accept the request and never answer.
    ``/reset?code=N``: answer, then reset the stream with code N on the first DATA (at once
    with ``&now=1``).
    ``/goaway?code=N&last=L``: answer, then send GOAWAY (last stream L, default this one) and
    close the connection.
    ``/drop``: answer with some data, then drop the connection (no GOAWAY).
    ``/stall``: answer, and never acknowledge what the client sends (its window runs out);
    ``release_window()`` acknowledges everything held so far.
    ``/flood?size=N``: answer with N bytes, sending whenever the client's window allows.

    Before any of that, whatever the path: the next ``refuse_next`` streams are refused
    (RST_STREAM REFUSED_STREAM, no answer), then the next ``unavailable_next`` answered 503.
    """

    def __init__(self) -> None:
        super().__init__("raw-h2")
        self.port = 0
        self.streams: list[RawStream] = []
        self.connections = 0
        self.goaways_received = 0  # GOAWAY frames clients sent
        self.flood_sent = 0  # bytes /flood handed to h2 so far
        self.refuse_next = 0
        self.unavailable_next = 0
        self._changed = threading.Condition()
        self._release: Callable[[], None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RawH2Server:
        async def run(stop: asyncio.Event) -> None:
            server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            async with server:
                await stop.wait()
                server.close()
                for writer in list(self._writers):
                    writer.transport.abort()

        self._writers: set[asyncio.StreamWriter] = set()
        self._open: dict[h2.connection.H2Connection, asyncio.StreamWriter] = {}
        self._start(run)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                raise AssertionError("the raw h2 server never saw what the test waited for")

    def goaway(self) -> None:
        """Send GOAWAY (NO_ERROR) on every connection and close them, as an idle timeout does."""
        assert self._loop is not None

        def close_all() -> None:
            for conn, writer in list(self._open.items()):
                conn.close_connection()
                writer.write(conn.data_to_send())
                writer.close()

        self._loop.call_soon_threadsafe(close_all)

    def release_window(self) -> None:
        """Acknowledge everything ``/stall`` held back (from the test's thread)."""
        assert self._loop is not None and self._release is not None
        self._loop.call_soon_threadsafe(self._release)

    def _note(self) -> None:
        with self._changed:
            self._changed.notify_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections += 1
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        self._open[conn] = writer
        streams: dict[int, RawStream] = {}
        held: list[tuple[int, int]] = []  # /stall: (stream, length) not yet acknowledged
        floods: dict[int, int] = {}  # /flood: bytes still to send per stream

        def release() -> None:
            for stream_id, length in held:
                with contextlib.suppress(Exception):
                    conn.acknowledge_received_data(length, stream_id)
            held.clear()
            writer.write(conn.data_to_send())

        self._release = release

        def pump() -> None:
            for stream_id, left in list(floods.items()):
                while left:
                    size = min(left, conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
                    if size <= 0:
                        break
                    conn.send_data(stream_id, b"f" * size, end_stream=size == left)
                    left -= size
                    self.flood_sent += size
                floods[stream_id] = left
                if not left:
                    del floods[stream_id]

        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if self._handle(conn, event, streams, held, floods, writer):
                        return
                pump()
                writer.write(conn.data_to_send())
                self._note()
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            self._open.pop(conn, None)
            self._writers.discard(writer)
            writer.transport.abort()
            self._note()

    def _handle(
        self,
        conn: h2.connection.H2Connection,
        event: h2.events.Event,
        streams: dict[int, RawStream],
        held: list[tuple[int, int]],
        floods: dict[int, int],
        writer: asyncio.StreamWriter,
    ) -> bool:
        """React to one event; True once the connection is to be dropped."""
        if isinstance(event, h2.events.RequestReceived):
            stream = RawStream(event.stream_id, [(str(n), str(v)) for n, v in event.headers or []])
            streams[event.stream_id] = stream
            self.streams.append(stream)
            path, query = _path(stream)
            if self.refuse_next:
                self.refuse_next -= 1
                conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                return False
            if self.unavailable_next:
                self.unavailable_next -= 1
                conn.send_headers(event.stream_id, [(":status", "503"), ("x-amzn-errortype", "ServiceUnavailable")])
                conn.send_data(event.stream_id, b'{"message": "try again"}', end_stream=True)
                return False
            if path == "/hold":
                return False
            conn.send_headers(event.stream_id, [(":status", "200"), ("x-path", path)])
            if path == "/reset" and query.get("now"):
                conn.reset_stream(event.stream_id, int(query["code"]))
            elif path == "/goaway":
                last = int(query.get("last", event.stream_id))
                conn.close_connection(int(query.get("code", 0)), additional_data=b"going away", last_stream_id=last)
                writer.write(conn.data_to_send())
                return True
            elif path == "/drop":
                conn.send_data(event.stream_id, b"partial")
                writer.write(conn.data_to_send())
                return True
            elif path == "/flood":
                floods[event.stream_id] = int(query["size"])
        elif isinstance(event, h2.events.DataReceived):
            stream = streams[event.stream_id]
            stream.received += event.data
            path, query = _path(stream)
            if path == "/stall":
                held.append((event.stream_id, event.flow_controlled_length))
                return False
            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if path == "/echo" and event.data:
                conn.send_data(event.stream_id, event.data)
            elif path == "/reset":
                conn.reset_stream(event.stream_id, int(query["code"]))
        elif isinstance(event, h2.events.StreamEnded):
            stream = streams[event.stream_id]
            stream.ended = True
            if _path(stream)[0] in ("/echo", "/stall"):
                conn.end_stream(event.stream_id)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaways_received += 1
        elif isinstance(event, h2.events.StreamReset):
            if event.stream_id in streams:
                streams[event.stream_id].reset_code = int(event.error_code)
            floods.pop(event.stream_id, None)
            for stream_id, length in [item for item in held if item[0] == event.stream_id]:
                held.remove((stream_id, length))  # a reset stream's data still counts for the connection
                conn.acknowledge_received_data(length, stream_id)
        return False


def _path(stream: RawStream) -> tuple[str, dict[str, str]]:
    target = dict(stream.headers).get(":path", "/")
    path, _, query = target.partition("?")
    return path, {key: values[0] for key, values in urllib.parse.parse_qs(query).items()}


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, never listening, for the test's duration)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()

