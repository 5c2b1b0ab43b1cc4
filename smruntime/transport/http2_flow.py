"""The sans-IO core of the HTTP/2 client: one connection's h2 state, its streams, flow control.

:class:`H2Session` owns an ``h2`` connection. It is fed the bytes the socket received
(:meth:`H2Session.receive`) and hands back what to write (:meth:`H2Session.data_to_send`) and
which streams a waiting reader or writer should look at again. Nothing here does I/O or
knows about asyncio, so the flow-control rules are tested on two in-memory peers.

Flow control, both ways:

* Outgoing data goes out in DATA frames of at most the peer's frame size, and never more than
  the smaller of the stream's and the connection's send windows (:func:`frame_sizes`);
  :meth:`H2Session.send_some` says how much fit, and the writer waits for a WINDOW_UPDATE for
  the rest.
* Incoming data is acknowledged to the peer (which reopens its window) only as the reader
  takes it (:meth:`H2Session.take`), never on receipt: a slow reader holds at most one stream
  window of unread data, and the server waits. What the reader takes is handed to h2 in
  batches of :data:`ACK_BATCH` bytes, and at once while the connection's window is low (under
  a quarter of it left), so bytes held back never keep the peer waiting: a stream's own
  window always keeps room for more than a batch (h2 reopens it once half is processed), and
  streams sharing the connection hand everything back before it can close.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Final

try:
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    import h2.exceptions
    import h2.settings
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the HTTP/2 client needs the h2 package: pip install 'smruntime[http2]'") from exc

from smruntime.errors import ConnectionClosedError, TransportError, server_text
from smruntime.transport.http2_errors import ConnectionTerminatedError, StreamResetError

__all__ = [
    "ACK_BATCH",
    "DEFAULT_CONNECTION_WINDOW",
    "DEFAULT_STREAM_WINDOW",
    "H2Session",
    "NoAvailableStreamIDError",
    "StreamState",
    "frame_sizes",
]

DEFAULT_STREAM_WINDOW = 1024 * 1024
"""How much unread data one stream may hold (our SETTINGS_INITIAL_WINDOW_SIZE)."""
DEFAULT_CONNECTION_WINDOW = 16 * 1024 * 1024
"""How much unread data all streams of a connection may hold together."""

NoAvailableStreamIDError = h2.exceptions.NoAvailableStreamIDError
"""A connection used up its stream IDs: open the stream on another one."""

ACK_BATCH = 4096
"""Bytes taken by a reader that are handed to h2 together. h2 itself sends a WINDOW_UPDATE only
once half a window is processed; handing it every small event (a few µs each) costs a stream
of small events more than the update it rarely sends."""

CANCEL = int(h2.errors.ErrorCodes.CANCEL)
_DEFAULT_WINDOW = 65535  # RFC 9113 §6.9.2: every window starts here


def frame_sizes(length: int, window: int, max_frame: int) -> list[int]:
    """The DATA frame sizes that send as much of ``length`` bytes as ``window`` allows."""
    allowed = max(0, min(length, window))
    full, rest = divmod(allowed, max_frame)
    return [max_frame] * full + ([rest] if rest else [])


class StreamState:
    """What one request stream has received, and whether either side is done."""

    __slots__ = (
        "buffered",
        "error",
        "headers",
        "local_ended",
        "received",
        "remote_ended",
        "reset",
        "status",
        "stream_id",
        "taken",
    )

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.received: collections.deque[bytes] = collections.deque()
        self.buffered = 0  # bytes received and not yet taken (all of them unacknowledged)
        self.taken = 0  # bytes taken and not yet acknowledged (fewer than ACK_BATCH)
        self.remote_ended = False
        self.local_ended = False
        self.reset = False  # either side reset it: nothing more goes either way
        self.error: TransportError | None = None

    @property
    def finished(self) -> bool:
        """Both sides ended (or the stream was reset) and the reader took everything."""
        return (self.reset or (self.local_ended and self.remote_ended)) and not self.buffered


NOT_HTTP2_HINT: Final = (
    ": is this an HTTP/1.1 endpoint? The bidirectional stream needs the HTTP/2 one (the service's port 8443, "
    "the local endpoint's http2_url), set with http2_endpoint_url or AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2"
)
"""Said when a server answers the HTTP/2 preface in HTTP/1.1, or drops the connection unheard."""


class Changes:
    """Which streams' waiters should look again after some received bytes."""

    __slots__ = ("all_writers", "slots_changed", "streams", "terminated")

    def __init__(self) -> None:
        self.streams: set[int] = set()
        self.all_writers = False  # the connection window or the peer's settings changed
        self.slots_changed = False  # streams may be opened (or no longer may be)
        self.terminated = False


class H2Session:
    """One client HTTP/2 connection without I/O: open streams, send, receive, take."""

    def __init__(
        self, *, stream_window: int = DEFAULT_STREAM_WINDOW, connection_window: int = DEFAULT_CONNECTION_WINDOW
    ) -> None:
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config)
        self.streams: dict[int, StreamState] = {}
        self.terminated = False  # GOAWAY received or sent, or the connection failed
        self.heard = False  # any bytes from the server yet
        self._stream_window = stream_window
        self._connection_window = connection_window
        self._low_window = connection_window // 4  # below this, taken bytes go back at once

    def start(self) -> None:
        """Queue the connection preface and our SETTINGS (no push, our stream window)."""
        conn = self.conn
        conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self._stream_window,
            },
        )
        conn.initiate_connection()
        if self._connection_window > _DEFAULT_WINDOW:
            conn.increment_flow_control_window(self._connection_window - _DEFAULT_WINDOW)

    # -- what the transport asks ---------------------------------------------------------------

    def data_to_send(self) -> bytes:
        return self.conn.data_to_send()

    @property
    def can_open(self) -> bool:
        """Whether a new stream may be opened now (the peer's concurrency limit, no GOAWAY)."""
        if self.terminated:
            return False
        conn = self.conn
        return conn.open_outbound_streams < conn.remote_settings.max_concurrent_streams

    # -- one stream ----------------------------------------------------------------------------

    def open_stream(self, headers: Iterable[tuple[str, str]]) -> StreamState:
        """Queue a request's HEADERS (without END_STREAM); the pseudo-headers come first."""
        if self.terminated:
            raise self._terminated_error()
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, [(name.encode(), value.encode()) for name, value in headers])
        state = self.streams[stream_id] = StreamState(stream_id)
        return state

    def send_some(self, state: StreamState, data: bytes | memoryview) -> int:
        """Queue as much of ``data`` as the send windows allow; how many bytes that was."""
        self.check_writable(state)
        conn = self.conn
        size = len(data)
        window = conn.local_flow_control_window(state.stream_id)
        max_frame = conn.max_outbound_frame_size
        if type(data) is bytes and size <= window and size <= max_frame:
            conn.send_data(state.stream_id, data)  # the usual small event: one frame, no copy
            return size
        view = memoryview(data)
        sent = 0
        sizes = frame_sizes(size, window, max_frame)
        for frame in sizes:
            conn.send_data(state.stream_id, view[sent : sent + frame].tobytes())
            sent += frame
        return sent

    def end_stream(self, state: StreamState) -> None:
        """Half-close our side. Idempotent; a reset stream is left alone."""
        if state.local_ended or state.reset:
            return
        self.check_writable(state)
        state.local_ended = True
        self.conn.end_stream(state.stream_id)

    def check_writable(self, state: StreamState) -> None:
        if state.error is not None:
            raise state.error
        if state.local_ended:
            raise ConnectionClosedError(
                "the HTTP/2 stream's input was already ended (end_input); nothing more can be sent", request_sent=True
            )
        if state.reset:
            raise ConnectionClosedError("the HTTP/2 stream was already closed", request_sent=True)

    def take(self, state: StreamState, max_size: int | None = None) -> bytes | None:
        """Received data for the reader, acknowledged to the peer now that it is taken.

        At most ``max_size`` bytes (None: everything buffered); ``b""`` at the end of the
        response; None if nothing has arrived yet. Data that arrived before a reset or a lost
        connection is handed over before the error is raised.
        """
        if not state.received:
            if state.remote_ended:
                return b""
            if state.error is not None:
                raise state.error
            if state.reset:
                raise ConnectionClosedError(
                    "the HTTP/2 stream was closed before its response was read to the end", request_sent=True
                )
            return None
        if max_size is None or state.buffered <= max_size:
            data = b"".join(state.received)
            state.received.clear()
        else:
            pieces = []
            wanted = max_size
            while wanted:
                piece = state.received.popleft()
                if len(piece) > wanted:
                    state.received.appendleft(piece[wanted:])
                    piece = piece[:wanted]
                pieces.append(piece)
                wanted -= len(piece)
            data = b"".join(pieces)
        state.buffered -= len(data)
        taken = state.taken + len(data)
        if taken >= ACK_BATCH or self.conn.inbound_flow_control_window < self._low_window:
            self._acknowledge(state.stream_id, taken)
            taken = 0
        state.taken = taken
        return data

    def reset_stream(self, state: StreamState, error_code: int = CANCEL) -> None:
        """Reset the stream (CANCEL) unless it is over; hand its unread data's window back."""
        if not state.reset and not (state.local_ended and state.remote_ended) and not self.terminated:
            try:
                self.conn.reset_stream(state.stream_id, error_code)
            except h2.exceptions.StreamClosedError:
                pass  # h2 already considers it closed
        state.reset = True
        self.forget(state)

    def forget(self, state: StreamState) -> None:
        """Drop a finished or reset stream, handing the window of data nobody will read back."""
        if state.buffered or state.taken:
            self._acknowledge(state.stream_id, state.buffered + state.taken)
            state.buffered = state.taken = 0
            state.received.clear()
        self.streams.pop(state.stream_id, None)

    # -- the whole connection ------------------------------------------------------------------

    def receive(self, data: bytes) -> Changes:
        """Feed bytes from the socket; which waiters to wake."""
        if not self.heard:
            self.heard = True
            if data.startswith(b"HTTP/1."):
                # An HTTP/1.1 server read our connection preface as a request and answered it.
                return self._failed(ConnectionClosedError(f"the server answered in HTTP/1.1, not HTTP/2{NOT_HTTP2_HINT}"))
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            # h2 queued a GOAWAY for the peer; every stream fails.
            return self._failed(
                ConnectionClosedError(f"the server broke the HTTP/2 protocol: {server_text(str(exc), 200)}")
            )
        changes = Changes()
        for event in events:
            self._handle(event, changes)
        if self.conn.inbound_flow_control_window < self._low_window:
            self._hand_back_taken()
        return changes

    def _failed(self, error: TransportError) -> Changes:
        """Fail the connection on what the server sent: every stream's waiters look again."""
        self.fail(error)
        changes = Changes()
        changes.terminated = True
        changes.streams.update(self.streams)
        return changes

    def fail(self, error: TransportError) -> None:
        """The connection is gone (lost, or the client closed): every open stream fails with ``error``."""
        self.terminated = True
        for state in self.streams.values():
            if state.error is None and not state.finished:
                state.error = error
                state.reset = True

    def close(self) -> None:
        """Queue a GOAWAY (NO_ERROR) unless the connection is already over."""
        if not self.terminated:
            self.terminated = True
            try:
                self.conn.close_connection()
            except h2.exceptions.ProtocolError:
                pass

    def _handle(self, event: h2.events.Event, changes: Changes) -> None:
        stream_id: int | None = getattr(event, "stream_id", None)
        state = self.streams.get(stream_id) if stream_id else None
        if isinstance(event, h2.events.DataReceived):
            if state is None:  # a stream we reset or forgot: just reopen the window
                self._acknowledge(event.stream_id, event.flow_controlled_length)
                return
            data = event.data
            padding = event.flow_controlled_length - len(data)
            if padding:
                self._acknowledge(state.stream_id, padding)
            if data:
                state.received.append(data)
                state.buffered += len(data)
            if event.stream_ended is not None:
                state.remote_ended = True
        elif isinstance(event, h2.events.ResponseReceived):
            if state is not None:
                self._take_headers(state, event.headers)
            if event.stream_ended is not None and state is not None:
                state.remote_ended = True
        elif isinstance(event, h2.events.StreamEnded):
            if state is not None:
                state.remote_ended = True
        elif isinstance(event, h2.events.StreamReset):
            if state is not None and not state.reset:
                state.reset = True
                if state.error is None and not (state.local_ended and state.remote_ended):
                    state.error = StreamResetError(int(event.error_code))
            changes.all_writers = True
            changes.slots_changed = True
        elif isinstance(event, h2.events.WindowUpdated):
            if not event.stream_id:
                changes.all_writers = True
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            changes.all_writers = True
            changes.slots_changed = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._terminated(event, changes)
            return
        else:  # informational responses, trailers, pings (h2 answers them), settings acks
            return
        if stream_id:
            changes.streams.add(stream_id)

    def _take_headers(self, state: StreamState, raw: Iterable[tuple[bytes | str, bytes | str]] | None) -> None:
        for name, value in raw or ():
            key = name.decode("latin-1") if isinstance(name, bytes) else name
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            if key == ":status":
                state.status = int(text)
            elif not key.startswith(":"):
                state.headers.append((key, text))
        if state.status is None:  # h2 validates responses, so this is a server without :status
            state.status = 0

    def _terminated(self, event: h2.events.ConnectionTerminated, changes: Changes) -> None:
        """GOAWAY: h2 allows nothing more on the connection, so every open stream fails; one the
        server never processed (above ``last_stream_id``) says so, and may be sent again."""
        code = int(event.error_code or 0)
        last = event.last_stream_id if event.last_stream_id is not None else 0
        detail = server_text((event.additional_data or b"").decode("utf-8", "replace"), 200)
        for state in self.streams.values():
            if state.error is None and not state.finished:
                state.error = ConnectionTerminatedError(code, last, state.stream_id, detail)
                state.reset = True
                changes.streams.add(state.stream_id)
        self.terminated = True
        changes.terminated = changes.slots_changed = changes.all_writers = True

    def _terminated_error(self) -> TransportError:
        return ConnectionClosedError("the HTTP/2 connection is closing; no new stream can be opened", request_sent=False)

    def _hand_back_taken(self) -> None:
        """The connection's window runs low: what every reader took goes back now."""
        for state in self.streams.values():
            if state.taken:
                self._acknowledge(state.stream_id, state.taken)
                state.taken = 0

    def _acknowledge(self, stream_id: int, size: int) -> None:
        if size and not self.terminated:
            try:
                self.conn.acknowledge_received_data(size, stream_id)
            except h2.exceptions.ProtocolError:
                pass  # the connection is closing: no window to hand back
