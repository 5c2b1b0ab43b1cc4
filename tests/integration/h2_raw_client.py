"""A small raw HTTP/2 client for InvokeEndpointWithBidirectionalStream, for tests of the local endpoint.

It speaks cleartext HTTP/2 with prior knowledge over an asyncio socket with the sans-IO
``h2`` library, signs the request like the SDKs (``sign_initial_request``) and every event
with the package's :class:`EventSigner`, and hands back raw event-stream messages, so a
test can send anything: well-signed parts, tampered frames, garbage, or nothing at all.
Sends respect HTTP/2 flow control (chunked to the window and the frame size).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from smruntime.auth import Credentials, SigV4Signer
from smruntime.event_signing import EventSigner, sign_initial_request
from smruntime.eventstream import EventStreamDecoder, HeaderValue, Message, encode_message
from smruntime.http import Headers, HTTPRequest

CREDENTIALS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
REGION = "us-east-1"
TIMEOUT = 10.0


def path_of(endpoint: str) -> str:
    return f"/endpoints/{endpoint}/invocations-bidirectional-stream"


def inner_part(data: bytes, *, data_type: str | None = None, completion_state: str | None = None,
               p: str | None = None, extra: Mapping[str, HeaderValue] | None = None) -> bytes:
    """An encoded PayloadPart event, as a client wraps it before signing."""
    headers: dict[str, HeaderValue] = {":message-type": "event", ":event-type": "PayloadPart",
                                       ":content-type": "application/octet-stream"}
    for name, value in (("DataType", data_type), ("CompletionState", completion_state), ("P", p)):
        if value is not None:
            headers[name] = value
    headers.update(extra or {})
    return encode_message(headers, data)


class StreamReset(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"the server reset the stream (error code {code})")
        self.code = code


class ConnectionGone(Exception):
    """The connection closed before the stream ended."""


class RawBidiStream:
    """One bidirectional stream on an HTTP/2 connection (its own, or another stream's: :meth:`open_another`)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 signer: EventSigner | None, conn: h2.connection.H2Connection | None = None,
                 streams: dict[int, RawBidiStream] | None = None) -> None:
        self._reader = reader
        self._writer = writer
        self._owner = conn is None
        self.conn = conn or h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self._streams: dict[int, RawBidiStream] = streams if streams is not None else {}
        self._request: tuple[str, int, str, tuple[str, ...] | None, str, str] = ("", 0, "", None, "", "")
        self.signer = signer
        self.stream_id = 0
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = b""
        self._response = asyncio.get_running_loop().create_future()
        self._messages: asyncio.Queue[Message | BaseException | None] = asyncio.Queue()
        self._decoder = EventStreamDecoder()
        self._window = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self.acknowledging = True
        """Whether received data is acknowledged (reopening the server's send windows) as it arrives."""

    @classmethod
    async def open(cls, port: int, endpoint: str = "echo", *, headers: Iterable[tuple[str, str]] = (),
                   credentials: tuple[str, ...] | None = CREDENTIALS, region: str = REGION,
                   service: str = "sagemaker", when: datetime | None = None, path: str | None = None,
                   payload_hash: str | None = None, unsigned: Iterable[tuple[str, str]] = (),
                   host: str = "127.0.0.1", tls: ssl.SSLContext | None = None,
                   receive_buffer: int | None = None) -> RawBidiStream:
        """Connect, send the signed HEADERS (no END_STREAM) and return without waiting for the answer.

        With ``tls``, over TLS (the context must offer ALPN ``h2``, which the server must pick).
        ``receive_buffer`` sets the socket's SO_RCVBUF: a small one makes the server's writes
        block soon once the client stops reading (:meth:`pause_reading`).
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), TIMEOUT)
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(sock=sock, ssl=tls, server_hostname=host if tls else None), TIMEOUT)
        except BaseException:
            sock.close()
            raise
        if tls is not None:
            ssl_object = writer.get_extra_info("ssl_object")
            assert ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2"
        stream = cls(reader, writer, None)
        stream.conn.initiate_connection()
        stream._request = ("https" if tls else "http", port, host, credentials, region, service)
        await stream._start(endpoint, headers=headers, when=when, path=path, payload_hash=payload_hash,
                            unsigned=unsigned)
        stream._pump = asyncio.create_task(stream._read())
        return stream

    async def open_another(self, endpoint: str = "echo", *, headers: Iterable[tuple[str, str]] = ()) -> RawBidiStream:
        """A second stream on this stream's connection, signed with the same keys."""
        sibling = type(self)(self._reader, self._writer, None, self.conn, self._streams)
        sibling._request = self._request
        await sibling._start(endpoint, headers=headers)
        return sibling

    async def _start(self, endpoint: str, *, headers: Iterable[tuple[str, str]] = (), when: datetime | None = None,
                     path: str | None = None, payload_hash: str | None = None,
                     unsigned: Iterable[tuple[str, str]] = ()) -> None:
        scheme, port, host, credentials, region, service = self._request
        authority = f"{host}:{port}"
        path = path if path is not None else path_of(endpoint)
        request = HTTPRequest("POST", f"{scheme}://{authority}{path}",
                              Headers([("Content-Type", "application/vnd.amazon.eventstream"), *headers]), b"")
        signer = None
        if credentials is not None:
            creds = Credentials(credentials[0], credentials[1], credentials[2] if len(credentials) > 2 else None)
            signing_time = when or datetime.now(UTC)
            if payload_hash is None:
                seed = sign_initial_request(SigV4Signer(), request, creds, region=region, service=service,
                                            signing_time=signing_time)
            else:  # a hand-picked payload hash (the Rust SDK's empty-body hash, or a wrong one)
                SigV4Signer().sign_http(request, creds, payload_hash, service, region, signing_time)
                seed = request.headers["Authorization"].rpartition("Signature=")[2]
            signer = EventSigner(creds, region=region, service=service, seed=seed)
        self.signer = signer
        self.stream_id = self.conn.get_next_available_stream_id()
        self._streams[self.stream_id] = self
        wire = [(":method", "POST"), (":scheme", scheme), (":authority", authority), (":path", path)]
        wire += [(name.lower(), value) for name, value in [*request.headers.items(), *unsigned]]
        self.conn.send_headers(self.stream_id, wire)
        await self._flush()

    # --- sending ---

    async def send_part(self, data: bytes, **headers: Any) -> None:
        """One signed PayloadPart event."""
        assert self.signer is not None
        await self.send_raw(self.signer.sign(inner_part(data, **headers)))

    async def send_signed(self, inner: bytes) -> None:
        """Any inner bytes, signed into an outer frame."""
        assert self.signer is not None
        await self.send_raw(self.signer.sign(inner))

    async def end_input(self) -> None:
        """The signed end frame, then END_STREAM."""
        assert self.signer is not None
        await self.send_raw(self.signer.sign_end(), end_stream=True)

    async def send_raw(self, data: bytes, *, end_stream: bool = False) -> None:
        """Bytes as DATA frames, chunked to the flow-control window and the frame size."""
        view = memoryview(data)
        while view:
            room = min(self.conn.local_flow_control_window(self.stream_id), self.conn.max_outbound_frame_size)
            if room <= 0:
                self._window.clear()
                await asyncio.wait_for(self._window.wait(), TIMEOUT)
                continue
            chunk, view = view[:room], view[room:]
            self.conn.send_data(self.stream_id, bytes(chunk), end_stream=end_stream and not view)
            await self._flush()
        if end_stream and not data:
            self.conn.end_stream(self.stream_id)
            await self._flush()

    async def close_input(self) -> None:
        """END_STREAM without the signed end frame."""
        self.conn.end_stream(self.stream_id)
        await self._flush()

    async def reset(self) -> None:
        """Cancel the stream (RST_STREAM CANCEL)."""
        self.conn.reset_stream(self.stream_id, 8)
        await self._flush()

    # --- receiving ---

    async def response(self) -> int:
        """The response status, once its HEADERS arrived."""
        await asyncio.wait_for(asyncio.shield(self._response), TIMEOUT)
        assert self.status is not None
        return self.status

    async def next_message(self, timeout: float = TIMEOUT) -> Message | None:
        """The next event-stream message of the response; None once the stream ended."""
        item = await asyncio.wait_for(self._messages.get(), timeout)
        if isinstance(item, BaseException):
            self._messages.put_nowait(item)  # keep reporting it
            raise item
        if item is None:
            self._messages.put_nowait(None)
        return item

    async def read_all(self, timeout: float = TIMEOUT) -> list[Message]:
        """Every message until the response ends."""
        found = []
        while (message := await self.next_message(timeout)) is not None:
            found.append(message)
        return found

    async def close(self) -> None:
        if not self._owner:
            return  # the connection is its first stream's
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass

    async def __aenter__(self) -> RawBidiStream:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # --- the connection ---

    async def pause_reading(self) -> None:
        """Stop reading the socket (the connection's first stream only): the server's writes back up."""
        assert self._owner and self._pump is not None
        self._pump.cancel()
        await asyncio.gather(self._pump, return_exceptions=True)
        self._pump = None

    def resume_reading(self) -> None:
        assert self._owner and self._pump is None
        self._pump = asyncio.create_task(self._read())

    async def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self._writer.write(data)
            await self._writer.drain()

    async def _read(self) -> None:
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    raise ConnectionGone("the server closed the connection")
                for event in self.conn.receive_data(data):
                    stream_id = getattr(event, "stream_id", None)
                    targets = [self._streams[stream_id]] if stream_id in self._streams else self._streams.values()
                    for stream in list(targets):
                        stream._handle(event)
                await self._flush()
        except (ConnectionGone, OSError, h2.exceptions.ProtocolError) as error:
            failure = error if isinstance(error, ConnectionGone) else ConnectionGone(str(error))
            for stream in list(self._streams.values()):
                if not stream._response.done():
                    stream._response.set_exception(failure)
                stream._messages.put_nowait(failure)

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            self.headers = {str(k): str(v) for k, v in event.headers}
            self.status = int(self.headers[":status"])
            if not self._response.done():
                self._response.set_result(self.status)
        elif isinstance(event, h2.events.DataReceived):
            if self.acknowledging:
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if self.status != 200:
                self.body += event.data
                return
            for message in self._decoder.feed(event.data):
                self._messages.put_nowait(message)
        elif isinstance(event, h2.events.StreamEnded):
            self._messages.put_nowait(None)
        elif isinstance(event, h2.events.StreamReset):
            error = StreamReset(event.error_code)
            if not self._response.done():
                self._response.set_exception(error)
            self._messages.put_nowait(error)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self._window.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            failure = ConnectionGone(f"GOAWAY (error code {event.error_code})")
            if not self._response.done():
                self._response.set_exception(failure)
            self._messages.put_nowait(failure)
