"""The sans-IO HTTP/2 session against an in-memory h2 server: no sockets.

Flow control both ways (frames cut to the window and the frame size, a WINDOW_UPDATE sent only
once the reader took the data), and RST_STREAM / GOAWAY / protocol errors as clear errors.
"""

from __future__ import annotations

import subprocess
import sys

import h2.config
import h2.connection
import h2.events
import hyperframe.frame
import pytest

from smruntime.errors import ConnectionClosedError
from smruntime.http import HTTPRequest
from smruntime.transport.http2_client import request_headers
from smruntime.transport.http2_errors import ConnectionTerminatedError, StreamResetError, error_code_name
from smruntime.transport.http2_flow import ACK_BATCH, H2Session, StreamState, frame_sizes

HEADERS = [(":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1:8080"), (":path", "/echo")]


class Peer:
    """An h2 server connection wired to a client session in memory."""

    def __init__(self, session: H2Session) -> None:
        self.session = session
        self.server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        self.server.initiate_connection()
        session.start()
        self.events: list[h2.events.Event] = []
        self.frames_to_server: list[hyperframe.frame.Frame] = []
        self.exchange()

    def to_server(self) -> list[h2.events.Event]:
        data = self.session.data_to_send()
        self.frames_to_server.extend(_frames(data))
        events = self.server.receive_data(data) if data else []
        self.events.extend(events)
        return events

    def to_client(self) -> object:
        return self.session.receive(self.server.data_to_send())

    def exchange(self) -> None:
        for _ in range(3):
            self.to_server()
            self.to_client()

    def respond(self, stream_id: int) -> None:
        self.server.send_headers(stream_id, [(":status", "200"), ("x-one", "1")])
        self.to_client()


def _frames(data: bytes) -> list[hyperframe.frame.Frame]:
    frames = []
    while len(data) >= 9:
        frame, length = hyperframe.frame.Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9 : 9 + length]))
        frames.append(frame)
        data = data[9 + length :]
    return frames


def _window_updates(peer: Peer) -> list[hyperframe.frame.WindowUpdateFrame]:
    return [f for f in peer.frames_to_server if isinstance(f, hyperframe.frame.WindowUpdateFrame)]


def _open(peer: Peer) -> StreamState:
    state = peer.session.open_stream(HEADERS)
    peer.to_server()
    return state


def test_frame_sizes_cut_to_the_frame_size_and_stop_at_the_window() -> None:
    assert frame_sizes(40000, 65535, 16384) == [16384, 16384, 7232]
    assert frame_sizes(100000, 65535, 16384) == [16384, 16384, 16384, 16383]
    assert frame_sizes(10, 0, 16384) == []
    assert frame_sizes(0, 65535, 16384) == []


def test_outgoing_data_fills_the_window_in_frame_sized_pieces_then_waits_for_window_update() -> None:
    peer = Peer(H2Session())
    state = _open(peer)
    data = memoryview(b"x" * 200_000)
    sent = peer.session.send_some(state, data)
    assert sent == 65535  # the peer's initial stream (and connection) window
    received = [e for e in peer.to_server() if isinstance(e, h2.events.DataReceived)]
    assert [len(e.data) for e in received] == [16384, 16384, 16384, 16383]
    assert peer.session.send_some(state, data[sent:]) == 0  # window exhausted: the writer must wait

    peer.server.acknowledge_received_data(sent, state.stream_id)
    changes = peer.to_client()
    assert changes.all_writers or state.stream_id in changes.streams  # type: ignore[attr-defined]
    assert peer.session.send_some(state, data[sent:]) > 0


def test_received_data_is_acknowledged_only_as_the_reader_takes_it() -> None:
    peer = Peer(H2Session(stream_window=65535, connection_window=65535))
    state = _open(peer)
    peer.respond(state.stream_id)
    server = peer.server
    while (window := server.local_flow_control_window(state.stream_id)) > 0:
        server.send_data(state.stream_id, b"d" * min(window, server.max_outbound_frame_size))
    before = len(_window_updates(peer))
    peer.to_client()
    peer.to_server()
    assert len(_window_updates(peer)) == before  # nothing read yet: no WINDOW_UPDATE
    assert server.local_flow_control_window(state.stream_id) == 0
    assert state.buffered == 65535

    assert peer.session.take(state, 40000) == b"d" * 40000  # more than half the window taken
    peer.to_server()
    assert len(_window_updates(peer)) > before
    assert server.local_flow_control_window(state.stream_id) == 40000
    assert peer.session.take(state) == b"d" * 25535
    assert peer.session.take(state) is None  # nothing more yet


def _fill(peer: Peer, stream_id: int, size: int) -> None:
    for start in range(0, size, 16384):
        peer.server.send_data(stream_id, b"f" * min(16384, size - start))


def _two_streams() -> tuple[Peer, StreamState, StreamState]:
    """Two answered streams sharing a 65535-byte connection window."""
    peer = Peer(H2Session(stream_window=65535, connection_window=65535))
    first, second = _open(peer), _open(peer)
    peer.respond(first.stream_id)
    peer.respond(second.stream_id)
    return peer, first, second


def test_small_pieces_taken_while_the_connection_window_is_shut_go_back_at_once() -> None:
    # A's reader takes a few small pieces (fewer bytes than ACK_BATCH) and waits for more; B's
    # reader reads nothing and holds the rest of the connection window. With the window shut,
    # A's pieces must go back at once, or A's server could never send again while A waits.
    peer, first, second = _two_streams()
    _fill(peer, first.stream_id, 2000)
    _fill(peer, second.stream_id, 65535 - 2000)
    peer.to_client()
    assert peer.server.outbound_flow_control_window == 0
    assert ACK_BATCH > 2000
    for _ in range(4):
        assert peer.session.take(first, 500) == b"f" * 500
    assert peer.session.take(first) is None  # nothing more: the reader waits
    peer.to_server()
    assert peer.server.outbound_flow_control_window > 0  # A's server can send again


def test_pieces_held_back_go_back_once_other_streams_run_the_connection_window_low() -> None:
    peer, first, second = _two_streams()
    _fill(peer, first.stream_id, 2000)
    peer.to_client()
    assert peer.session.take(first) == b"f" * 2000  # the window is wide open: held back
    assert peer.session.take(first) is None
    peer.to_server()
    assert peer.server.outbound_flow_control_window == 65535 - 2000
    _fill(peer, second.stream_id, 65535 - 2000)  # B's reader reads nothing
    peer.to_client()
    peer.to_server()
    assert peer.server.outbound_flow_control_window > 0  # A's 2000 bytes went back


def test_small_pieces_are_handed_back_in_batches_while_the_connection_window_is_wide() -> None:
    peer = Peer(H2Session(stream_window=65535))  # a wide connection window: pieces are held back
    state = _open(peer)
    peer.respond(state.stream_id)
    _fill(peer, state.stream_id, 65535)
    peer.to_client()
    assert peer.server.local_flow_control_window(state.stream_id) == 0
    taken = 0
    while taken + 100 < ACK_BATCH:
        taken += len(peer.session.take(state, 100) or b"")
        peer.to_server()
        assert peer.server.local_flow_control_window(state.stream_id) == 0  # held back
    taken += len(peer.session.take(state, 100) or b"")  # a batch: the stream's window reopens
    peer.to_server()
    assert peer.server.local_flow_control_window(state.stream_id) == taken


def test_a_stream_dropped_hands_back_its_unread_data_and_the_pieces_held_back() -> None:
    # h2 reopens the connection window once half of it (65535 bytes here) is handed back: it
    # takes every byte of the stream, read or not, to get there.
    peer = Peer(H2Session(stream_window=65535, connection_window=2 * 65535))
    state = _open(peer)
    peer.respond(state.stream_id)
    _fill(peer, state.stream_id, 65535)
    peer.to_client()
    assert peer.session.take(state, 100) == b"f" * 100  # held back: the window is wide open
    peer.session.reset_stream(state)
    peer.to_server()
    assert peer.server.outbound_flow_control_window == 2 * 65535


def test_padding_is_handed_back_at_once_since_no_reader_will_take_it() -> None:
    peer = Peer(H2Session(stream_window=65535, connection_window=65535))
    state = _open(peer)
    peer.respond(state.stream_id)
    for _ in range(200):  # 1 byte of data, 255 of padding
        peer.server.send_data(state.stream_id, b"a", pad_length=254)
    peer.to_client()
    peer.to_server()
    assert state.buffered == 200
    assert peer.server.local_flow_control_window(state.stream_id) > 65535 - 200 * 256  # h2 batches updates


def test_response_headers_and_end_of_stream() -> None:
    peer = Peer(H2Session())
    state = _open(peer)
    peer.respond(state.stream_id)
    peer.server.send_data(state.stream_id, b"tail", end_stream=True)
    peer.to_client()
    assert state.status == 200
    assert state.headers == [("x-one", "1")]
    assert peer.session.take(state) == b"tail"
    assert peer.session.take(state) == b""
    peer.session.end_stream(state)
    peer.session.end_stream(state)  # idempotent
    assert state.finished
    with pytest.raises(ConnectionClosedError, match="already ended"):
        peer.session.send_some(state, memoryview(b"late"))


@pytest.mark.parametrize(
    ("code", "name", "request_sent"), [(2, "INTERNAL_ERROR", True), (7, "REFUSED_STREAM", False), (0x99, "0x99", True)]
)
def test_a_server_reset_fails_the_stream_with_its_code_name_after_the_data_already_received(
    code: int, name: str, request_sent: bool
) -> None:
    peer = Peer(H2Session())
    state = _open(peer)
    peer.respond(state.stream_id)
    peer.server.send_data(state.stream_id, b"before")
    peer.server.reset_stream(state.stream_id, code)
    peer.to_client()
    assert peer.session.take(state) == b"before"
    with pytest.raises(StreamResetError) as caught:
        peer.session.take(state)
    error = caught.value
    assert (error.error_code, error.error_name, error.request_sent, error.retryable) == (
        code,
        name,
        request_sent,
        not request_sent,
    )
    assert name in str(error)
    with pytest.raises(StreamResetError):
        peer.session.send_some(state, memoryview(b"more"))


def test_goaway_fails_open_streams_and_says_which_the_server_never_processed() -> None:
    peer = Peer(H2Session())
    first = _open(peer)
    second = _open(peer)
    peer.server.close_connection(error_code=0, additional_data=b"bye\x1b[31m", last_stream_id=first.stream_id)
    changes = peer.to_client()
    assert changes.terminated  # type: ignore[attr-defined]
    assert not peer.session.can_open
    processed, unprocessed = first.error, second.error
    assert isinstance(processed, ConnectionTerminatedError) and isinstance(unprocessed, ConnectionTerminatedError)
    assert processed.processed and processed.request_sent and not processed.retryable
    assert not unprocessed.processed and not unprocessed.request_sent and unprocessed.retryable
    assert "GOAWAY NO_ERROR" in str(unprocessed) and "\\x1b" in str(unprocessed)  # the server's text, escaped
    with pytest.raises(ConnectionClosedError, match="no new stream"):
        peer.session.open_stream(HEADERS)


def test_a_protocol_violation_fails_every_stream() -> None:
    peer = Peer(H2Session())
    state = _open(peer)
    peer.session.receive(b"\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00")  # WINDOW_UPDATE of 0
    assert isinstance(state.error, ConnectionClosedError)
    assert "broke the HTTP/2 protocol" in str(state.error)
    with pytest.raises(ConnectionClosedError):
        peer.session.take(state)


def test_an_http1_answer_to_the_preface_fails_every_stream_naming_the_likely_mix_up() -> None:
    session = H2Session()
    session.start()
    state = session.open_stream(HEADERS)
    changes = session.receive(b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\n")
    assert changes.terminated and state.stream_id in changes.streams and session.terminated
    assert isinstance(state.error, ConnectionClosedError)
    assert str(state.error).startswith("the server answered in HTTP/1.1, not HTTP/2: is this an HTTP/1.1 endpoint?")
    assert "http2_endpoint_url" in str(state.error)


def test_resetting_a_stream_with_unread_data_hands_the_connection_window_back() -> None:
    peer = Peer(H2Session(stream_window=65535, connection_window=65535))
    state = _open(peer)
    peer.respond(state.stream_id)
    for _ in range(4):
        peer.server.send_data(state.stream_id, b"u" * 15000)
    peer.to_client()
    assert peer.server.outbound_flow_control_window == 65535 - 60000
    peer.session.reset_stream(state)
    events = peer.to_server()
    assert any(isinstance(e, h2.events.StreamReset) and e.error_code == 8 for e in events)  # CANCEL
    assert peer.server.outbound_flow_control_window == 65535
    assert state.stream_id not in peer.session.streams


def test_request_headers_are_the_pseudo_headers_then_the_requests_own_lower_cased() -> None:
    request = HTTPRequest("POST", "https://runtime.example:8443/endpoints/ep/x?a=1", {"X-Amz-Date": "1", "Content-Type": "t"})
    assert request_headers(request, "https", "runtime.example:8443", "/endpoints/ep/x?a=1") == [
        (":method", "POST"),
        (":scheme", "https"),
        (":authority", "runtime.example:8443"),
        (":path", "/endpoints/ep/x?a=1"),
        ("x-amz-date", "1"),
        ("content-type", "t"),
    ]
    default_port = request_headers(HTTPRequest("POST", "https://h:443/"), "https", "h:443", "/")
    assert (":authority", "h") in default_port
    with_host = request_headers(HTTPRequest("POST", "http://h/", {"Host": "other:81"}), "http", "h", "/")
    assert (":authority", "other:81") in with_host and all(name != "host" for name, _ in with_host)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Connection": "keep-alive"}, "'Connection' is connection-specific"),
        ({"TE": "gzip"}, "'TE' is connection-specific"),
        ({"Bad Name": "x"}, "invalid header name 'Bad Name'"),
        ({"X-Split": "a\r\nb"}, "invalid value for header 'X-Split'"),
    ],
)
def test_headers_http2_forbids_are_refused_by_name(headers: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        request_headers(HTTPRequest("POST", "http://h/", headers), "http", "h", "/")


def test_error_code_names() -> None:
    assert [error_code_name(code) for code in (0, 8, 13, 14)] == ["NO_ERROR", "CANCEL", "HTTP_1_1_REQUIRED", "0xe"]


def test_without_h2_the_import_error_says_how_to_install_it() -> None:
    probe = (
        "import sys; sys.modules['h2'] = None\n"
        "try:\n    from smruntime.transport import H2HTTPClient\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "pip install 'smruntime[http2]'" in result.stdout
