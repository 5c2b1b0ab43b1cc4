"""A sans-IO HTTP/1.1 response reader: bytes in, a response head and body pieces out.

Nothing here touches a socket. The caller moves bytes from its connection into
:meth:`ResponseReader.receive_buffer` and says how many arrived with
:meth:`ResponseReader.received` (0: the peer closed); the reader parses them where they landed,
in one buffer per connection::

    reader.start("POST")
    while (head := reader.next_head()) is None:
        reader.received(sock.recv_into(reader.receive_buffer()))
    while (piece := reader.read_body()) != b"":
        if piece is None:
            reader.received(sock.recv_into(reader.receive_buffer()))
        else:
            ...  # use the piece
    keep_the_connection = reader.reusable

What it accepts (RFC 9112, with http.client's limits): a status line ``HTTP/1.x NNN reason``;
header lines ``name: value`` with a token for a name (an obsolete folded line is joined to the
one before it with a space); lines ending in CRLF or a bare LF; at most 100 headers, no line
longer than 64 KiB. Interim 1xx responses are skipped, except 101. The body is framed by
``Transfer-Encoding: chunked`` (chunk extensions and trailers are read and dropped), else by
``Content-Length``, else by the end of the connection; a response to HEAD, and a 1xx, 204 or
304 response, has none. Anything else raises :class:`MalformedResponseError`; input that ends
before the response does raises :class:`IncompleteResponseError`.
"""

from __future__ import annotations

import io
import re

import attrs

from smruntime.middleware.reprs import fields_repr

__all__ = [
    "MAX_HEADERS",
    "MAX_LINE",
    "WHOLE_CHUNK_LIMIT",
    "IncompleteResponseError",
    "MalformedResponseError",
    "ResponseHead",
    "ResponseReader",
    "parse_head",
]

MAX_LINE = 65536
"""The longest line of a head, a chunk-size line or a trailer, in bytes (as http.client)."""
MAX_HEADERS = 100
"""The most header lines in a head, or trailer lines after a chunked body (as http.client)."""

_BUFFER_SIZE = 64 * 1024
"""Each connection's buffer: room for any ordinary response in one receive."""
_LARGEST_SINK = 64 * 1024 * 1024
"""A body or chunk longer than the buffer is received straight into a bytes object of its size,
but one of at most this size: a declared length allocates no more than this before data arrives
(longer ones come in pieces of this size)."""
WHOLE_CHUNK_LIMIT = 1024 * 1024
"""When streaming, a chunk up to this size is handed over whole (an event stream's server sends
one event per chunk, which the decoder then takes in one piece); a longer one as it arrives, so
that a chunk's declared size never makes the reader buffer more than this."""
_LARGEST_PIECE = 1024 * 1024
"""A body that ends with the connection is handed over this much at a time when read whole."""
_MIN_FREE = 16 * 1024
"""Never receive into less room than this (or a quarter of a smaller buffer): no small reads."""
_MAX_HEAD = (MAX_HEADERS + 1) * (MAX_LINE + 2)
"""The longest head the line limits allow."""

_END_OF_HEAD = re.compile(rb"\n\r?\n")
_STATUS_LINE = re.compile(r"HTTP/1\.([0-9]) ([1-9][0-9][0-9])(?: (.*))?")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_LINE = re.compile(r"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*)\n", re.MULTILINE)
_DECIMAL = re.compile(r"[0-9]{1,18}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_WHITESPACE = " \t"

# Reader states, in the order a response goes through them.
_IDLE = "idle"  # start() was not called yet
_HEAD = "head"
_LENGTH = "length"  # a body of Content-Length bytes
_UNTIL_CLOSE = "until close"  # a body that ends when the connection does
_CHUNK_SIZE = "chunk size"  # a chunk-size line is next
_CHUNK_DATA = "chunk data"
_CHUNK_END = "chunk end"  # the line end after a chunk's data is next
_TRAILERS = "trailers"
_DONE = "done"


class MalformedResponseError(Exception):
    """The server's bytes are not an HTTP/1.1 response, or one beyond the reader's limits."""


class IncompleteResponseError(Exception):
    """The connection ended before the response did."""


# Not frozen, as HTTPResponse in smruntime.http: a frozen attrs __init__ costs ~0.7 µs more per response.
@attrs.define(slots=True, on_setattr=attrs.setters.NO_OP)
class ResponseHead:
    """A response's status line and its headers, in the order they came."""

    __repr__ = fields_repr

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    http_version: str = "1.1"


def parse_head(block: bytes | bytearray | memoryview) -> ResponseHead:
    """The response head in ``block``: a status line and header lines, then the blank line that ends it.

    Raises:
        MalformedResponseError: the head breaks the grammar or the limits.
    """
    text = str(block, "latin-1").replace("\r\n", "\n")
    if not text.endswith("\n\n"):
        raise MalformedResponseError("a response head must end with a blank line")
    if "\r" in text or "\x00" in text:
        raise MalformedResponseError("the response head holds a NUL or a CR outside a line end")
    line_count = text.count("\n") - 1  # the status line and the header lines
    if line_count > MAX_HEADERS + 1:
        raise MalformedResponseError(f"the response has more than {MAX_HEADERS} headers")
    if len(text) > MAX_LINE and max(map(len, text.split("\n"))) > MAX_LINE:
        raise MalformedResponseError(f"a line of the response head is longer than {MAX_LINE} bytes")
    status_line, _, fields = text.partition("\n")
    match = _STATUS_LINE.fullmatch(status_line)
    if match is None:
        raise MalformedResponseError(f"not an HTTP/1.x status line: {status_line[:100]!r}")
    minor, status, reason = match.groups()
    # One regex pass takes every ordinary "name: value" line; when it did not take them all
    # (folded lines, whitespace to strip after a value, an invalid line), go line by line.
    headers: list[tuple[str, str]] = _FIELD_LINE.findall(fields)
    if len(headers) != line_count - 1 or " \n" in fields or "\t\n" in fields:
        headers = _fields_one_by_one(fields[:-2].split("\n"))
    return ResponseHead(int(status), (reason or "").strip(_WHITESPACE), tuple(headers), f"1.{minor}")


def _fields_one_by_one(lines: list[str]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for line in lines:
        if not line:
            raise MalformedResponseError("a blank line in the middle of the response head")
        if line[0] in _WHITESPACE:  # obs-fold: the value goes on from the line before
            if not headers:
                raise MalformedResponseError(f"the first header line is a continuation line: {line[:100]!r}")
            name, value = headers[-1]
            more = line.strip(_WHITESPACE)
            headers[-1] = (name, f"{value} {more}" if value and more else value or more)
            continue
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise MalformedResponseError(f"invalid header line in the response: {line[:100]!r}")
        headers.append((name, value.strip(_WHITESPACE)))
    return headers


class ResponseReader:
    """Reads the responses on one connection, one after another, out of one buffer.

    Call :meth:`start` before each response, then :meth:`next_head` until it returns the head,
    then :meth:`read_body` until it returns ``b""``. Whenever either returns None, receive more:
    write at most ``len(receive_buffer())`` bytes into that buffer, then call :meth:`received`.
    """

    __slots__ = (
        "_buffer",
        "_buffer_size",
        "_chunk_left",
        "_chunk_parts",
        "_chunk_whole",
        "_end",
        "_eof",
        "_head_lines",
        "_keep_alive",
        "_largest_sink",
        "_length",
        "_line_offset",
        "_method",
        "_min_free",
        "_remaining",
        "_scanned",
        "_sink",
        "_sink_filled",
        "_sink_view",
        "_start",
        "_state",
        "_trailer_lines",
        "_view",
        "_whole",
        "_whole_chunk_limit",
    )

    def __init__(
        self, buffer_size: int = _BUFFER_SIZE, largest_sink: int = _LARGEST_SINK, whole_chunk_limit: int = WHOLE_CHUNK_LIMIT
    ) -> None:
        self._buffer_size = buffer_size
        self._whole_chunk_limit = whole_chunk_limit
        self._min_free = min(_MIN_FREE, buffer_size // 4)
        self._largest_sink = largest_sink
        self._use_buffer(bytearray(buffer_size))
        self._start = self._end = 0  # the unread bytes are _buffer[_start:_end]
        self._state = _IDLE
        self._method = ""
        self._eof = False
        self._keep_alive = False
        self._length = self._remaining = 0  # Content-Length, and how much of it is still to come
        self._chunk_left = 0
        self._chunk_whole = True  # the current chunk is handed over whole, even when streaming
        self._chunk_parts: list[bytes] = []  # a chunk longer than the largest sink, so far
        self._trailer_lines = 0
        self._scanned = self._line_offset = self._head_lines = 0
        self._whole = True  # the last read_body() wanted whole pieces
        # A long body or chunk goes into a bytes object of its own size (see _start_sink).
        self._sink: io.BytesIO | None = None
        self._sink_view = memoryview(b"")
        self._sink_filled = 0

    def start(self, method: str) -> None:
        """Get ready for the response to a ``method`` request. Bytes left from before are dropped."""
        if len(self._buffer) != self._buffer_size:  # a large body grew it: give the memory back
            self._use_buffer(bytearray(self._buffer_size))
        self._method = method
        self._start = self._end = 0
        self._eof = False
        if self._chunk_parts:
            self._chunk_parts = []
        if self._sink is not None:
            self._sink_view.release()
            self._sink = None
            self._sink_filled = 0
        self._begin_head()

    # -- input ------------------------------------------------------------------------------

    def receive_buffer(self) -> memoryview:
        """Where the next bytes from the connection go, with room for what the reader waits for."""
        if self._sink is None:
            unread = self._end - self._start
            unit = 0  # what the reader waits for whole: the rest of a chunk, or of a body read whole
            if self._state == _CHUNK_DATA and (self._whole or self._chunk_whole):
                unit = self._chunk_left
            elif self._state == _LENGTH and self._whole:
                unit = self._remaining
            capacity = len(self._buffer)
            if unit and unit + 2 > capacity:  # (+ 2: the line end after a chunk)
                self._start_sink(unit, unread)
            else:
                # Room for the rest of the unit, and more if the buffer has it; the buffer grows
                # only for a long head, or a body that ends with the connection.
                wanted = min(max(unit + 2 - unread, self._min_free), capacity - unread) if unit else self._min_free
                if capacity - self._end < wanted:
                    self._make_room(unread, wanted)
                return self._view[self._end :]
        return self._sink_view[self._sink_filled :]

    def received(self, count: int) -> None:
        """``count`` bytes were written at the start of the last receive buffer; 0: the peer closed."""
        if not count:
            self._eof = True
        elif self._sink is None:
            self._end += count
        else:
            self._sink_filled += count

    # -- output -----------------------------------------------------------------------------

    def next_head(self) -> ResponseHead | None:
        """The head of the final response once it has all arrived (1xx heads but 101 are skipped); else None.

        Raises:
            MalformedResponseError: the head is invalid or over the limits.
            IncompleteResponseError: the input ended first.
        """
        if self._state != _HEAD:
            raise RuntimeError(f"next_head() called in state {self._state!r}; call start() first")
        while True:
            start, end = self._start, self._end
            match = _END_OF_HEAD.search(self._buffer, start + max(self._scanned - 2, 0), end)
            if match is None:
                self._check_partial_head()
                return None
            head = parse_head(self._view[start : match.end()])
            self._consume(match.end() - start)
            unread = self._end - self._start
            if len(self._buffer) > self._buffer_size >= unread:  # a long head grew it: give the memory back
                view = self._view[self._start : self._end]
                self._use_buffer(bytearray(self._buffer_size))
                self._view[:unread] = view
                self._start, self._end = 0, unread
            if 100 <= head.status < 200 and head.status != 101:
                self._begin_head()  # an interim response (100 Continue, 103 Early Hints…)
                continue
            self._begin_body(head)
            return head

    def read_body(self, max_size: int | None = None) -> bytes | None:
        """The next piece of the body; ``b""`` once it has all been read; None when more input is needed.

        With ``max_size`` (for streaming), a piece is whatever has arrived, up to that many
        bytes, except that a chunk of at most ``whole_chunk_limit`` bytes (1 MiB) comes whole,
        as the server framed it; a piece never spans two chunks. Without ``max_size``, a
        chunked body comes one whole chunk at a time (longer than 64 MiB, gathered), a
        Content-Length body whole (past 64 MiB, in 64 MiB pieces) and a body that ends with the
        connection in pieces of about 1 MiB (for reading a body whole).

        Raises:
            MalformedResponseError: the chunked framing is invalid or over the limits.
            IncompleteResponseError: the input ended before the body.
        """
        state = self._state
        self._whole = max_size is None
        if state == _LENGTH:
            return self._read_length(max_size)
        if state == _DONE:
            return b""
        if state == _UNTIL_CLOSE:
            return self._read_until_close(max_size)
        if state in (_IDLE, _HEAD):
            raise RuntimeError("read_body() called before next_head() returned the head")
        return self._read_chunked(max_size)

    def arrived_body(self) -> bytes | None:
        """The whole body, read, if it has a Content-Length (or none) and has all arrived; else
        None, and nothing is read (use :meth:`read_body`)."""
        state = self._state
        if state == _DONE:
            return b""
        if state != _LENGTH or self._sink is not None or self._end - self._start < self._remaining:
            return None
        return self._read_length(None)

    @property
    def remaining_length(self) -> int | None:
        """How many bytes of a Content-Length body are still to be read; None for a chunked
        body or one that ends with the connection."""
        if self._state == _LENGTH:
            return self._remaining
        return 0 if self._state == _DONE else None

    @property
    def complete(self) -> bool:
        """The whole response has been read."""
        return self._state == _DONE

    @property
    def reusable(self) -> bool:
        """The connection can carry another request: the response is complete, the server keeps
        the connection open, and no byte followed the response."""
        return self._state == _DONE and self._keep_alive and not self._eof and self._start == self._end

    # -- the head ---------------------------------------------------------------------------

    def _begin_head(self) -> None:
        self._state = _HEAD
        self._scanned = 0  # bytes of the pending head already searched for its end
        self._line_offset = 0  # where its last, unfinished line starts
        self._head_lines = 0  # finished lines so far

    def _check_partial_head(self) -> None:
        """Refuse an unfinished head that is already over the limits, or that the input cut short."""
        start, end = self._start, self._end
        if self._eof:
            if start == end:
                raise IncompleteResponseError("the server closed the connection without sending a response")
            raise IncompleteResponseError("the connection closed in the middle of the response head")
        pending = end - start
        newlines = self._buffer.count(b"\n", start + self._scanned, end)
        if newlines:
            self._head_lines += newlines
            self._line_offset = self._buffer.rfind(b"\n", start + self._scanned, end) + 1 - start
        self._scanned = pending
        if self._head_lines > MAX_HEADERS + 1:
            raise MalformedResponseError(f"the response has more than {MAX_HEADERS} headers")
        if pending - self._line_offset > MAX_LINE:
            raise MalformedResponseError(f"a line of the response head is longer than {MAX_LINE} bytes")
        if pending > _MAX_HEAD:
            raise MalformedResponseError(f"the response head is longer than {_MAX_HEAD} bytes")

    def _begin_body(self, head: ResponseHead) -> None:
        """Decide how the body is framed (RFC 9112 §6.3) and whether the connection stays open."""
        lengths = codings = connection = None
        for name, value in head.headers:
            lowered = name.lower()
            if lowered == "content-length":
                lengths = value if lengths is None else f"{lengths},{value}"
            elif lowered == "transfer-encoding":
                codings = value if codings is None else f"{codings},{value}"
            elif lowered == "connection":
                connection = value if connection is None else f"{connection},{value}"
        status = head.status
        self._keep_alive = head.http_version != "1.0" and status != 101
        if connection is not None and "close" in _tokens(connection):
            self._keep_alive = False
        if self._method == "HEAD" or status in (204, 304) or status < 200:
            self._state = _DONE
        elif codings is not None:
            if _tokens(codings) != ["chunked"]:
                raise MalformedResponseError(f"unsupported Transfer-Encoding: {codings[:100]!r}")
            self._state = _CHUNK_SIZE
            if lengths is not None:  # both framings: what follows the body cannot be trusted
                self._keep_alive = False
        elif lengths is not None:
            self._length = self._remaining = _content_length(lengths)
            self._state = _LENGTH if self._length else _DONE
        else:
            self._state = _UNTIL_CLOSE
            self._keep_alive = False

    # -- the body ---------------------------------------------------------------------------

    def _read_length(self, max_size: int | None) -> bytes | None:
        remaining = self._remaining
        if self._sink is not None:
            piece = self._sink_piece()
            size = len(piece) if piece is not None else 0
        else:
            size = min(self._end - self._start, remaining)
            if max_size is not None:
                size = min(size, max_size)
            elif size < remaining:
                size = 0  # wait for the whole body
            piece = self._take(size) if size else None
        if piece is None:
            if self._eof:
                received = self._length - remaining + self._end - self._start + self._sink_filled
                raise IncompleteResponseError(f"the connection closed after {received} of {self._length} body bytes")
            return None
        self._remaining = remaining - size
        if not self._remaining:
            self._state = _DONE
        return piece

    def _read_until_close(self, max_size: int | None) -> bytes | None:
        size = self._end - self._start
        if size and (max_size is not None or self._eof or size >= _LARGEST_PIECE):
            return self._take(size if max_size is None else min(size, max_size))
        if self._eof:
            self._state = _DONE
            return b""
        return None

    def _read_chunked(self, max_size: int | None) -> bytes | None:
        while True:
            state = self._state
            if state == _CHUNK_DATA:
                left = self._chunk_left
                available = self._end - self._start
                if self._sink is not None:
                    piece = self._sink_piece()
                elif available >= left and (max_size is None or self._chunk_whole):
                    piece = self._take(left)
                elif max_size is not None and not self._chunk_whole and available:
                    piece = self._take(min(available, left, max_size))
                else:
                    piece = None
                if piece is None:
                    self._check_chunked_eof()
                    return None
                self._chunk_left = left - len(piece)
                if self._chunk_left:
                    if max_size is not None:
                        return piece
                    self._chunk_parts.append(piece)  # a chunk longer than the largest sink: gather it
                    continue
                self._state = _CHUNK_END
                if self._chunk_parts:
                    piece = b"".join([*self._chunk_parts, piece])
                    self._chunk_parts = []
                return piece
            if state == _DONE:
                return b""
            line = self._line()
            if line is None:
                self._check_chunked_eof()
                return None
            if state == _CHUNK_SIZE:
                size_field = line.split(b";", 1)[0].strip(b" \t")  # extensions are dropped
                if not _HEX.fullmatch(size_field):
                    raise MalformedResponseError(f"invalid chunk-size line: {bytes(line[:100])!r}")
                self._chunk_left = int(size_field, 16)
                self._chunk_whole = self._chunk_left <= self._whole_chunk_limit
                self._state = _CHUNK_DATA if self._chunk_left else _TRAILERS
                self._trailer_lines = 0
            elif state == _CHUNK_END:
                if line:
                    raise MalformedResponseError("a chunk is longer than its chunk-size line says")
                self._state = _CHUNK_SIZE
            elif line:  # a trailer field: dropped, as http.client does
                self._trailer_lines += 1
                if self._trailer_lines > MAX_HEADERS:
                    raise MalformedResponseError(f"the response has more than {MAX_HEADERS} trailer lines")
            else:
                self._state = _DONE

    def _check_chunked_eof(self) -> None:
        if self._eof:
            raise IncompleteResponseError("the connection closed in the middle of a chunked body")

    def _line(self) -> bytearray | None:
        """The next line without its line end, once it has all arrived."""
        start, end = self._start, self._end
        newline = self._buffer.find(b"\n", start, end)
        if newline < 0:
            if end - start > MAX_LINE:
                raise MalformedResponseError(f"a line of the chunked framing is longer than {MAX_LINE} bytes")
            return None
        if newline - start > MAX_LINE + 1:
            raise MalformedResponseError(f"a line of the chunked framing is longer than {MAX_LINE} bytes")
        line = self._buffer[start:newline]
        self._consume(newline + 1 - start)
        return line[:-1] if line.endswith(b"\r") else line

    # -- the buffer -------------------------------------------------------------------------

    def _take(self, size: int) -> bytes:
        start = self._start
        piece = self._view[start : start + size].tobytes()
        self._consume(size)
        return piece

    def _consume(self, size: int) -> None:
        start = self._start + size
        if start == self._end:  # all read: receive at the front again
            self._start = self._end = 0
        else:
            self._start = start

    def _start_sink(self, size: int, unread: int) -> None:
        """Receive the next ``size`` bytes (those already buffered first) into a bytes object of that size.

        BytesIO's buffer is a bytes object that ``getbuffer()`` lets recv_into fill in place and
        ``getvalue()`` hands over without a copy: a long body is allocated once and copied once,
        where gathering buffer-sized pieces and joining them costs twice the memory and copies.
        """
        size = min(size, self._largest_sink)
        sink = io.BytesIO()
        sink.seek(size - 1)
        sink.write(b"\0")
        view = sink.getbuffer()
        buffered = min(unread, size)
        view[:buffered] = self._view[self._start : self._start + buffered]
        self._consume(buffered)
        self._sink, self._sink_view, self._sink_filled = sink, view, buffered

    def _sink_piece(self) -> bytes | None:
        """The sink's bytes once it is full (then the buffer takes the input again), else None."""
        if self._sink is None or self._sink_filled < len(self._sink_view):
            return None
        self._sink_view.release()  # getvalue() copies while a view is out
        piece = self._sink.getvalue()
        self._sink = None
        self._sink_filled = 0
        return piece

    def _make_room(self, unread: int, wanted: int) -> None:
        """Room for ``wanted`` more bytes after the unread ones: move them to the front, or grow."""
        view = self._view
        if unread + wanted <= len(self._buffer):
            view[:unread] = view[self._start : self._end]
        else:
            grown = bytearray(max(unread + wanted, 2 * len(self._buffer)))
            grown[:unread] = view[self._start : self._end]
            self._use_buffer(grown)
        self._start, self._end = 0, unread

    def _use_buffer(self, buffer: bytearray) -> None:
        # Never resized in place: a memoryview handed out by receive_buffer may still be alive.
        self._buffer = buffer
        self._view = memoryview(buffer)


def _tokens(value: str) -> list[str]:
    return [token.strip(_WHITESPACE).lower() for token in value.split(",") if token.strip(_WHITESPACE)]


def _content_length(value: str) -> int:
    """A Content-Length value; repeats of one length ("42, 42") are allowed, as RFC 9110 says."""
    if _DECIMAL.fullmatch(value):
        return int(value)
    lengths = {length.strip(_WHITESPACE) for length in value.split(",")}
    if len(lengths) != 1:
        raise MalformedResponseError(f"conflicting Content-Length values: {value[:100]!r}")
    (length,) = lengths
    if not _DECIMAL.fullmatch(length):
        raise MalformedResponseError(f"invalid Content-Length: {value[:100]!r}")
    return int(length)
