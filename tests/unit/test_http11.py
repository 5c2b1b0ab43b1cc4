"""The sans-IO HTTP/1.1 response reader: heads, body framing, limits, errors, split input."""

from __future__ import annotations

import http.client
import itertools

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smruntime.errors import ConnectionClosedError
from smruntime.transport import map_transport_error
from smruntime.transport.error_mapping import tag
from smruntime.transport.http11 import (
    MAX_HEADERS,
    MAX_LINE,
    IncompleteResponseError,
    MalformedResponseError,
    ResponseHead,
    ResponseReader,
    parse_head,
)

FAST = settings(max_examples=200, deadline=None, database=None)


@attrs.frozen
class Outcome:
    """What a reader made of some input: heads, body pieces, and what it says of the connection."""

    head: ResponseHead
    pieces: list[bytes]
    reusable: bool
    largest_buffer: int = attrs.field(eq=False)
    """The most room the reader asked to receive into at once."""

    @property
    def body(self) -> bytes:
        return b"".join(self.pieces)


class Feed:
    """Hands a reader its input in the given parts, as a connection would; b"" is the peer closing."""

    def __init__(self, reader: ResponseReader, parts: list[bytes]) -> None:
        self.reader = reader
        self.parts = list(parts)
        self.largest_buffer = 0

    def receive(self) -> None:
        buffer = self.reader.receive_buffer()
        assert len(buffer) > 0
        self.largest_buffer = max(self.largest_buffer, len(buffer))
        if not self.parts:
            raise AssertionError("the reader wanted more input than there is")
        part = self.parts.pop(0)
        if len(part) > len(buffer):  # more than fits: the rest comes with the next receive
            self.parts.insert(0, part[len(buffer) :])
            part = part[: len(buffer)]
        buffer[: len(part)] = part
        self.reader.received(len(part))


def read(
    parts: list[bytes], method: str = "POST", *, max_size: int | None = None, reader: ResponseReader | None = None
) -> Outcome:
    reader = reader if reader is not None else ResponseReader()
    reader.start(method)
    feed = Feed(reader, parts)
    while (head := reader.next_head()) is None:
        feed.receive()
    pieces = []
    while (piece := reader.read_body(max_size)) != b"":
        if piece is None:
            feed.receive()
        else:
            pieces.append(piece)
    assert reader.complete
    return Outcome(head, pieces, reader.reusable, feed.largest_buffer)


def failure(parts: list[bytes], method: str = "POST") -> BaseException:
    with pytest.raises((MalformedResponseError, IncompleteResponseError)) as caught:
        read(parts, method)
    return caught.value


def chunk(data: bytes, extension: bytes = b"") -> bytes:
    return b"%x%s\r\n%s\r\n" % (len(data), extension, data)


OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


# -- the head -------------------------------------------------------------------------------


def test_a_head_parses_into_status_reason_and_ordered_headers() -> None:
    head = parse_head(b"HTTP/1.1 424 Failed Dependency\r\nX-A: 1\r\nset-cookie: a=1\r\nSet-Cookie:b=2 \t\r\n\r\n")
    assert head == ResponseHead(424, "Failed Dependency", (("X-A", "1"), ("set-cookie", "a=1"), ("Set-Cookie", "b=2")))


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (b"HTTP/1.1 200\r\n\r\n", ResponseHead(200, "", ())),
        (b"HTTP/1.1 200 \r\n\r\n", ResponseHead(200, "", ())),
        (b"HTTP/1.0 404 Not  Found\n\n", ResponseHead(404, "Not  Found", (), "1.0")),
        (b"HTTP/1.1 200 OK\nA: 1\r\nB: \r\n\n", ResponseHead(200, "OK", (("A", "1"), ("B", "")))),
        (b"HTTP/1.1 200 OK\r\nA: one\r\n  two\r\n\tthree\r\n\r\n", ResponseHead(200, "OK", (("A", "one two three"),))),
        (b"HTTP/1.1 200 \xe9t\xe9\r\nA: caf\xe9\r\n\r\n", ResponseHead(200, "\xe9t\xe9", (("A", "caf\xe9"),))),
    ],
    ids=["no-reason", "empty-reason", "http-1.0-bare-lf", "mixed-line-ends", "obs-fold", "latin-1"],
)
def test_heads_that_are_valid(block: bytes, expected: ResponseHead) -> None:
    assert parse_head(block) == expected


@pytest.mark.parametrize(
    ("block", "match"),
    [
        (b"HTTP/1.1 200 OK\r\n", "blank line"),
        (b"\r\n\r\n", "status line"),
        (b"HTTP/2 200 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 099 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "status line"),
        (b"ICY 200 OK\r\n\r\n", "status line"),
        (b"http/1.1 200 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "invalid header line"),
        (b"HTTP/1.1 200 OK\r\nName : value\r\n\r\n", "invalid header line"),
        (b"HTTP/1.1 200 OK\r\n: value\r\n\r\n", "invalid header line"),
        (b"HTTP/1.1 200 OK\r\nA(b): value\r\n\r\n", "invalid header line"),
        (b"HTTP/1.1 200 OK\r\n folded: first\r\n\r\n", "continuation"),
        (b"HTTP/1.1 200 OK\r\nA: 1\rB: 2\r\n\r\n", "CR"),
        (b"HTTP/1.1 200 OK\r\nA: \x00\r\n\r\n", "NUL"),
        (b"HTTP/1.1 200 OK\r\n\r\nA: 1\r\n\r\n", "blank line in the middle"),
    ],
)
def test_heads_that_are_refused(block: bytes, match: str) -> None:
    with pytest.raises(MalformedResponseError, match=match):
        parse_head(block)


def test_header_count_and_line_length_limits() -> None:
    many = b"".join(b"H%d: v\r\n" % i for i in range(MAX_HEADERS))
    assert len(parse_head(b"HTTP/1.1 200 OK\r\n" + many + b"\r\n").headers) == MAX_HEADERS
    with pytest.raises(MalformedResponseError, match="more than 100 headers"):
        parse_head(b"HTTP/1.1 200 OK\r\n" + many + b"One: more\r\n\r\n")

    longest = b"A: " + b"x" * (MAX_LINE - 3)
    assert parse_head(b"HTTP/1.1 200 OK\r\n" + longest + b"\r\n\r\n").headers[0][1] == "x" * (MAX_LINE - 3)
    with pytest.raises(MalformedResponseError, match="longer than 65536 bytes"):
        parse_head(b"HTTP/1.1 200 OK\r\n" + longest + b"x\r\n\r\n")


def test_limits_are_enforced_before_an_endless_head_ends() -> None:
    """A head that never ends is refused as soon as it is over a limit, not buffered for ever."""
    many_lines = [b"HTTP/1.1 200 OK\r\n"] + [b"H: v\r\n"] * (MAX_HEADERS + 1)
    with pytest.raises(MalformedResponseError, match="more than 100 headers"):
        read(many_lines)  # no b"" at the end: the reader must give up without more input
    long_line = [b"HTTP/1.1 200 OK\r\nA: "] + [b"x" * 4096] * 17
    with pytest.raises(MalformedResponseError, match="longer than 65536"):
        read(long_line)


def test_a_head_split_anywhere_parses_the_same() -> None:
    whole = read([OK])
    for cut in range(1, len(OK)):
        assert read([OK[:cut], OK[cut:]]) == whole


# -- framing and keep-alive -----------------------------------------------------------------


def test_a_content_length_body_is_read_whole_and_the_connection_kept() -> None:
    outcome = read([OK])
    assert (outcome.head.status, outcome.body, outcome.reusable) == (200, b"{}", True)


def test_a_chunked_body_comes_a_chunk_at_a_time_with_extensions_and_trailers_dropped() -> None:
    response = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunk(b"first")
        + chunk(b"second", b';name="value";flag')
        + b"000\r\nX-Trailer: 1\r\nChecksum: abc\r\n\r\n"
    )
    outcome = read([response])
    assert outcome.pieces == [b"first", b"second"]
    assert outcome.reusable
    assert read([response], max_size=2).pieces == [b"first", b"second"]  # chunks up to 1 MiB: whole, whatever max_size
    # A chunk over whole_chunk_limit comes as it arrives, at most max_size bytes a piece.
    longer = read([response], max_size=2, reader=ResponseReader(whole_chunk_limit=5))
    assert longer.pieces == [b"first", b"se", b"co", b"nd"]


def test_chunk_sizes_and_line_ends_are_read_leniently() -> None:
    response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA \t;x\nabcdefghij\n0\n\n"
    assert read([response]).pieces == [b"abcdefghij"]


def test_a_long_body_is_received_into_one_piece_of_its_own_size() -> None:
    big = bytes(range(256)) * (10 * 4096)  # 10 MiB
    response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(big) + big
    reader = ResponseReader()
    outcome = read([response[i : i + 100_000] for i in range(0, len(response), 100_000)], reader=reader)
    assert outcome.pieces == [big]
    assert outcome.largest_buffer <= len(big)
    reader.start("POST")  # the next response receives into the ordinary buffer again
    assert len(reader.receive_buffer()) == 64 * 1024


def test_a_long_chunk_comes_whole_even_past_the_largest_sink() -> None:
    big = bytes(range(256)) * (6 * 4096 + 7)  # ~6 MiB
    response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(big) + chunk(b"tail") + b"0\r\n\r\n"
    parts = [response[i : i + 100_000] for i in range(0, len(response), 100_000)]
    assert read(parts).pieces == [big, b"tail"]
    bounded = read(parts, reader=ResponseReader(largest_sink=1024 * 1024))
    assert bounded.pieces == [big, b"tail"]  # received in 1 MiB sinks, handed over whole
    assert bounded.largest_buffer <= 1024 * 1024


def test_a_declared_length_allocates_at_most_the_largest_sink() -> None:
    reader = ResponseReader(largest_sink=1024 * 1024)
    parts = [b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\nonly this", b""]
    with pytest.raises(IncompleteResponseError, match="after 9 of 1000000000000 body bytes"):
        read(parts, reader=reader)
    long_body = b"x" * (3 * 1024 * 1024 + 5)
    outcome = read([b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(long_body) + long_body], reader=reader)
    assert outcome.body == long_body
    assert [len(piece) for piece in outcome.pieces] == [1024 * 1024] * 3 + [5]


def test_streaming_hands_over_what_has_arrived() -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"
    assert read([response + b"hello", b" world"], max_size=3).pieces == [b"hel", b"lo", b" wo", b"rld"]
    assert read([response + b"hello", b" world"]).pieces == [b"hello world"]  # whole: waits for the rest


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
        b"HTTP/1.1 200 OK\r\n\r\nuntil the end",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    ],
    ids=["http-1.0", "http-1.1", "connection-close"],
)
def test_a_body_without_framing_lasts_until_the_connection_closes(response: bytes) -> None:
    outcome = read([response[:25], response[25:], b""])
    assert outcome.body == b"until the end"
    assert not outcome.reusable
    assert read([response[:25], response[25:], b""], max_size=4).body == b"until the end"


@pytest.mark.parametrize(
    ("response", "reusable"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n", False),  # bytes after the response
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\n{}", True),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n0\r\n\r\n", False),
    ],
    ids=["keep-alive", "close", "explicit-keep-alive", "http-1.0", "trailing-bytes", "repeated-length", "both-framings"],
)
def test_when_the_connection_can_be_reused(response: bytes, reusable: bool) -> None:
    assert read([response]).reusable is reusable


@pytest.mark.parametrize(
    ("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304), ("HEAD", 404)]
)
def test_responses_without_a_body_ignore_their_framing_headers(method: str, status: int) -> None:
    response = b"HTTP/1.1 %d X\r\nContent-Length: 20\r\nTransfer-Encoding: whatever\r\n\r\n" % status
    outcome = read([response], method)
    assert (outcome.head.status, outcome.body, outcome.reusable) == (status, b"", True)


def test_interim_responses_are_skipped_but_101_is_not() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    outcome = read([interim + OK])
    assert (outcome.head.status, outcome.head.headers[0], outcome.body) == (200, ("Content-Type", "application/json"), b"{}")
    assert read([interim, OK]) == outcome
    switched = read([b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"])
    assert (switched.head.status, switched.body, switched.reusable) == (101, b"", False)


def test_one_reader_reads_one_response_after_another() -> None:
    reader = ResponseReader()
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"x" * 70_000) + b"0\r\n\r\n"
    for response, body in [(OK, b"{}"), (chunked, b"x" * 70_000), (OK, b"{}")]:
        outcome = read([response], reader=reader)
        assert (outcome.body, outcome.reusable) == (body, True)


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "match"),
    [
        ([b""], "without sending a response"),
        ([b"HTTP/1.1 100 Continue\r\n\r\n", b""], "without sending a response"),
        ([b"HTTP/1.1 200 OK\r\nContent-", b""], "middle of the response head"),
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", b""], "after 9 of 100 body bytes"),
        ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", b""], "middle of a chunked body"),
        ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n", b""], "middle of a chunked body"),
        ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTrailer: 1\r\n", b""], "middle of a chunked body"),
    ],
    ids=["nothing", "only-interim", "mid-head", "short-body", "mid-chunk", "no-last-chunk", "mid-trailers"],
)
def test_input_that_ends_early_is_incomplete(parts: list[bytes], match: str) -> None:
    error = failure(parts)
    assert isinstance(error, IncompleteResponseError)
    assert match in str(error)


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "conflicting Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "unsupported Transfer-Encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk-size line"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", "invalid chunk-size line"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 17 + b"\r\n", "invalid chunk-size line"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "longer than its chunk-size"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + b"T: 1\r\n" * (MAX_HEADERS + 1) + b"\r\n",
            "more than 100 trailer lines",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + b"x" * MAX_LINE + b"\r\n", "longer than 65536"),
    ],
)
def test_invalid_framing_is_refused(response: bytes, match: str) -> None:
    error = failure([response, b""])
    assert isinstance(error, MalformedResponseError)
    assert match in str(error)


def test_an_endless_chunk_size_line_is_refused_before_it_ends() -> None:
    parts = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;"] + [b"x" * 8192] * 9
    with pytest.raises(MalformedResponseError, match="longer than 65536"):
        read(parts)


def test_the_reader_says_when_it_is_used_out_of_order() -> None:
    reader = ResponseReader()
    with pytest.raises(RuntimeError, match="start"):
        reader.next_head()
    reader.start("GET")
    with pytest.raises(RuntimeError, match="before next_head"):
        reader.read_body()


@pytest.mark.parametrize(
    ("error", "summary"),
    [
        (MalformedResponseError("not an HTTP/1.x status line: 'garbage'"), "not valid HTTP/1.1"),
        (IncompleteResponseError("the connection closed after 9 of 100 body bytes"), "before the response was complete"),
        # The same meanings from http.client, which the requests-based client reads with.
        (http.client.BadStatusLine("HTPT/1.1 200 OK"), "not valid HTTP/1.1"),
        (http.client.LineTooLong("header line"), "not valid HTTP/1.1"),
        (http.client.RemoteDisconnected("Remote end closed connection without response"), "before the response was complete"),
    ],
)
def test_reader_errors_map_to_connection_closed(error: Exception, summary: str) -> None:
    mapped = map_transport_error(error)
    assert type(mapped) is ConnectionClosedError
    assert mapped.request_sent is True and not mapped.retryable
    assert summary in str(mapped) and str(error) in str(mapped)
    assert mapped.__cause__ is error


def test_an_incomplete_answer_after_a_failed_write_on_a_reused_connection_says_not_sent() -> None:
    error = IncompleteResponseError("the server closed the connection without sending a response")
    tag(error, "idle")
    mapped = map_transport_error(error)
    assert type(mapped) is ConnectionClosedError and mapped.request_sent is False


# -- any split of the input -----------------------------------------------------------------

_names = st.sampled_from(["X-A", "x-b", "Content-Type", "Set-Cookie", "Server"])
_values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters=","), max_size=20)
_bodies = st.one_of(st.binary(max_size=20), st.binary(min_size=65, max_size=400))  # some longer than a tiny buffer


_spaces = st.sampled_from(["", " ", "\t", " \t "])
_line_ends = st.sampled_from(["\r\n", "\n"])


@st.composite
def responses(draw: st.DrawFn) -> tuple[ResponseHead, bytes, list[bytes], bool]:
    """A valid response: its bytes, the pieces its body should come in, whether it ends at EOF.

    Its header values carry optional whitespace around them and may be folded over two lines;
    the parsed head must give them back trimmed and unfolded, in order.
    """
    status = draw(st.sampled_from([200, 404, 424, 500]))
    head = b"HTTP/1.1 %d Reason\r\n" % status
    if draw(st.booleans()):
        head = b"HTTP/1.1 100 Continue\r\n\r\n" + head
    expected = []
    for name, value, folded in draw(st.lists(st.tuples(_names, _values, _values), max_size=6)):
        line = f"{name}:{draw(_spaces)}{value}{draw(_spaces)}{draw(_line_ends)}"
        if folded and draw(st.booleans()):  # obs-fold: the value goes on, on the next line
            line += f"{draw(st.sampled_from([' ', chr(9)]))}{folded}{draw(_line_ends)}"
            value = f"{value} {folded}" if value else folded
        head += line.encode("latin-1")
        expected.append((name, value))
    head += b"X-Last: 1\r\n"
    expected.append(("X-Last", "1"))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    if framing == "length":
        body = draw(_bodies)
        expected.append(("Content-Length", str(len(body))))
        data = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        return ResponseHead(status, "Reason", tuple(expected)), data, [body] if body else [], False
    if framing == "close":
        body = draw(_bodies)
        expected.append(("Connection", "close"))
        data = head + b"Connection: close\r\n\r\n" + body
        return ResponseHead(status, "Reason", tuple(expected)), data, [body] if body else [], True
    chunks = draw(st.lists(_bodies.filter(bool), max_size=5))
    extensions = draw(st.lists(st.sampled_from([b"", b";a=b", b' ; q="x"']), min_size=len(chunks), max_size=len(chunks)))
    trailers = draw(st.sampled_from([b"", b"T: 1\r\n", b"T: 1\r\nU: 2\r\n"]))
    encoded = b"".join(chunk(data, extension) for data, extension in zip(chunks, extensions, strict=True))
    expected.append(("Transfer-Encoding", "chunked"))
    data = head + b"Transfer-Encoding: chunked\r\n\r\n" + encoded + b"0\r\n" + trailers + b"\r\n"
    return ResponseHead(status, "Reason", tuple(expected)), data, chunks, False


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@FAST
@given(responses(), st.lists(st.integers(0, 10_000), max_size=12))
def test_any_response_split_at_any_byte_boundary_parses_the_same(
    response: tuple[ResponseHead, bytes, list[bytes], bool], cuts: list[int]
) -> None:
    head, data, chunks, until_close = response
    end = [b""] if until_close else []
    whole = read([data, *end])
    assert whole.head == head
    assert whole.body == b"".join(chunks)
    if b"Transfer-Encoding" in data:
        assert whole.pieces == chunks  # as the server framed them
    assert whole.reusable is not until_close

    split = read([*split_at(data, cuts), *end])
    assert split.head == whole.head
    tiny = read([*split_at(data, cuts), *end], reader=ResponseReader(buffer_size=64))  # long bodies, chunks: sinks
    assert (tiny.head, tiny.body, tiny.reusable) == (whole.head, whole.body, whole.reusable)
    if b"Transfer-Encoding" in data:
        assert tiny.pieces == chunks
    assert split.body == whole.body
    assert split.reusable == whole.reusable
    if b"Transfer-Encoding" in data:
        assert split.pieces == chunks
    streamed = read([*split_at(data, cuts), *end], max_size=7)
    assert streamed.body == whole.body
    if b"Transfer-Encoding" in data:
        assert streamed.pieces == chunks
    else:
        assert all(len(piece) <= 7 for piece in streamed.pieces)
    # Chunks longer than whole_chunk_limit come as they arrive, never two in one piece.
    trickled = read([*split_at(data, cuts), *end], max_size=7, reader=ResponseReader(whole_chunk_limit=3))
    assert trickled.body == whole.body
    assert all(len(piece) <= 7 for piece in trickled.pieces)
    if b"Transfer-Encoding" in data:
        assert set(itertools.accumulate(map(len, chunks))) <= set(itertools.accumulate(map(len, trickled.pieces)))
        assert all(chunk in trickled.pieces for chunk in chunks if len(chunk) <= 3)


# -- a body that is already here --------------------------------------------------------------


def _head_read(parts: list[bytes], method: str = "POST") -> tuple[ResponseReader, Feed]:
    reader = ResponseReader()
    reader.start(method)
    feed = Feed(reader, parts)
    while reader.next_head() is None:
        feed.receive()
    return reader, feed


def test_arrived_body_takes_a_whole_length_body_that_came_with_its_head() -> None:
    reader, _ = _head_read([OK])
    assert reader.arrived_body() == b"{}"
    assert reader.complete and reader.reusable


@pytest.mark.parametrize(
    ("parts", "method"),
    [
        ([b"HTTP/1.1 204 No Content\r\n\r\n"], "POST"),
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"], "HEAD"),
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], "POST"),
    ],
    ids=["204", "head", "empty"],
)
def test_arrived_body_of_a_response_without_one_is_empty(parts: list[bytes], method: str) -> None:
    reader, _ = _head_read(parts, method)
    assert reader.arrived_body() == b""
    assert reader.complete


@pytest.mark.parametrize(
    "parts",
    [
        [b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}", b"{}"],  # half of it so far
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"{}") + b"0\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\n\r\n{}", b""],  # ends with the connection
    ],
    ids=["partial", "chunked", "until-close"],
)
def test_arrived_body_reads_nothing_when_it_cannot_take_the_whole_body(parts: list[bytes]) -> None:
    reader, feed = _head_read(parts)
    assert reader.arrived_body() is None
    pieces = []
    while (piece := reader.read_body()) != b"":
        if piece is None:
            feed.receive()
        else:
            pieces.append(piece)
    assert b"".join(pieces) in (b"{}{}", b"{}")
