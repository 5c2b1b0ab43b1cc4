"""A loopback keep-alive HTTP server that answers at once, in a separate process.

Every ``POST`` gets ``200`` with ``Content-Type: application/json``,
``x-Amzn-Invoked-Production-Variant`` and the body ``{}`` (``Content-Length: 2``), from one
thread with a selector over raw non-blocking sockets (``TCP_NODELAY``), so the server costs
as little as possible and the same for every client. A ``POST`` to
``…/invocations-response-stream`` instead streams an event stream, generated on the fly with
``smruntime.eventstream.encode_message``: ``PayloadPart`` frames of ``part`` bytes, one HTTP
chunk each, ``bytes`` in all (both from the JSON request body; 1 MiB of 64 KiB parts by
default); that connection moves to a thread of its own.

``LoopbackServer(delay=0.01)`` holds each small answer for 10 ms (the selector thread keeps
the due answers in a heap, so any number of requests wait at once), like a model that takes
that long.

The parent reads how many connections the server accepted (``accepts``) over the child's
stdin/stdout; closing its stdin stops it.

    with LoopbackServer() as server:
        ... server.url ...; server.accepts
"""

from __future__ import annotations

import heapq
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from typing import Any

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"x-Amzn-Invoked-Production-Variant: AllTraffic\r\n"
    b"x-amzn-RequestId: 5f0c4a8e-2b1d-4c47-9a8f-1d2e3f405162\r\n"
    b"Content-Length: 2\r\n"
    b"\r\n"
    b"{}"
)
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/vnd.amazon.eventstream\r\n"
    b"X-Amzn-SageMaker-Content-Type: application/octet-stream\r\n"
    b"x-Amzn-Invoked-Production-Variant: AllTraffic\r\n"
    b"x-amzn-RequestId: 5f0c4a8e-2b1d-4c47-9a8f-1d2e3f405163\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
DEFAULT_STREAM_BYTES = 1024 * 1024
DEFAULT_PART_BYTES = 64 * 1024
_RECV = 64 * 1024  # below glibc's mmap threshold: no map/unmap per read


class _Request:
    __slots__ = ("body", "path")

    def __init__(self, path: str, body: bytes) -> None:
        self.path = path
        self.body = body


def _parse(buffer: bytearray) -> tuple[_Request | None, bool]:
    """The next whole request in ``buffer`` (consumed), and whether it waits for 100-continue."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None, False
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    path = parts[1] if len(parts) > 1 else "/"
    length = 0
    expect = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "expect" and value.strip().lower() == "100-continue":
            expect = True
        elif name == "transfer-encoding":
            raise ValueError("chunked request bodies are not supported by the benchmark server")
    if len(buffer) < end + 4 + length:
        return None, expect
    body = bytes(buffer[end + 4 : end + 4 + length])
    del buffer[: end + 4 + length]
    return _Request(path, body), False


def _is_stream(request: _Request) -> bool:
    return request.path.split("?", 1)[0].endswith("/invocations-response-stream")


def _stream(sock: socket.socket, request: _Request) -> None:
    """Write an event-stream response: PayloadPart frames, one chunk each, made as they are sent."""
    from smruntime.eventstream import encode_message

    try:
        spec: Any = json.loads(request.body or b"{}")
    except ValueError:
        spec = {}
    total = int(spec.get("bytes", DEFAULT_STREAM_BYTES)) if isinstance(spec, dict) else DEFAULT_STREAM_BYTES
    part = int(spec.get("part", DEFAULT_PART_BYTES)) if isinstance(spec, dict) else DEFAULT_PART_BYTES
    headers = {":event-type": "PayloadPart", ":content-type": "application/octet-stream", ":message-type": "event"}
    block = bytes(range(256)) * (part // 256 + 1)
    sock.sendall(STREAM_HEAD)
    sent = 0
    index = 0
    while sent < total:
        size = min(part, total - sent)
        payload = index.to_bytes(8, "big") + block[8:size] if size >= 8 else block[:size]
        frame = encode_message(headers, payload)
        sock.sendall(b"%x\r\n" % len(frame) + frame + b"\r\n")
        sent += size
        index += 1
    sock.sendall(b"0\r\n\r\n")


def _serve_blocking(sock: socket.socket, buffer: bytearray) -> None:
    """A connection that left the selector for a stream: go on serving it with blocking I/O."""
    sock.setblocking(True)
    try:
        while True:
            request, expect = _parse(buffer)
            if request is None:
                if expect:
                    sock.sendall(CONTINUE)
                data = sock.recv(_RECV)
                if not data:
                    return
                buffer += data
                continue
            if _is_stream(request):
                _stream(sock, request)
            else:
                sock.sendall(RESPONSE)
    except (OSError, ValueError):
        return
    finally:
        sock.close()


def _serve(listener: socket.socket, counts: _Counts, delay: float = 0.0) -> None:
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    buffers: dict[socket.socket, bytearray] = {}
    due: list[tuple[float, int, socket.socket]] = []  # answers held back by ``delay``
    held = 0
    while True:
        timeout = max(due[0][0] - time.monotonic(), 0.0) if due else None
        ready = selector.select(timeout)
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, conn = heapq.heappop(due)
            if conn in buffers:
                try:
                    _send_small(conn, RESPONSE)
                except OSError:
                    selector.unregister(conn)
                    del buffers[conn]
                    conn.close()
        for key, _ in ready:
            if key.data is None:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                counts.accepts += 1
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.setblocking(False)
                buffers[conn] = bytearray()
                selector.register(conn, selectors.EVENT_READ, "conn")
                continue
            conn = key.fileobj  # type: ignore[assignment]
            buffer = buffers[conn]
            try:
                data = conn.recv(_RECV)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                selector.unregister(conn)
                del buffers[conn]
                conn.close()
                continue
            buffer += data
            try:
                while True:
                    request, expect = _parse(buffer)
                    if request is None:
                        if expect:
                            conn.sendall(CONTINUE)
                        break
                    if _is_stream(request):
                        selector.unregister(conn)
                        del buffers[conn]
                        conn.setblocking(True)
                        _stream_then_serve(conn, request, buffer)
                        break
                    if delay:
                        held += 1
                        heapq.heappush(due, (time.monotonic() + delay, held, conn))
                    else:
                        _send_small(conn, RESPONSE)
            except (OSError, ValueError):
                if conn in buffers:
                    selector.unregister(conn)
                    del buffers[conn]
                conn.close()


def _send_small(conn: socket.socket, data: bytes) -> None:
    # A small answer fits the empty send buffer of a client that waits for it: one send.
    try:
        sent = conn.send(data)
    except BlockingIOError:
        sent = 0
    if sent < len(data):
        conn.setblocking(True)
        conn.sendall(data[sent:])
        conn.setblocking(False)


def _stream_then_serve(conn: socket.socket, request: _Request, buffer: bytearray) -> None:
    def run() -> None:
        try:
            _stream(conn, request)
        except OSError:
            conn.close()
            return
        _serve_blocking(conn, buffer)

    threading.Thread(target=run, daemon=True).start()


class _Counts:
    accepts = 0


def main() -> None:
    """Serve on an ephemeral port; print ``PORT n``; answer ``accepts`` lines on stdin; exit on EOF.

    Arguments: the host (default 127.0.0.1) and the seconds each small answer is held (default 0).
    """
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(512)
    counts = _Counts()
    threading.Thread(target=_serve, args=(listener, counts, delay), daemon=True).start()
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    for line in sys.stdin:  # the control channel: the parent asks, we answer
        if line.strip() == "accepts":
            print(counts.accepts, flush=True)
    os._exit(0)  # stdin closed: the parent is done (or gone)


class LoopbackServer:
    """The benchmark server in a child process (``python -m benchmarks.server``)."""

    def __init__(self, host: str = "127.0.0.1", *, delay: float = 0.0) -> None:
        self.host = host
        self.delay = delay
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def accepts(self) -> int:
        """Connections the server accepted since it started."""
        process = self._running()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write("accepts\n")
        process.stdin.flush()
        return int(process.stdout.readline())

    def start(self) -> LoopbackServer:
        from benchmarks.common import subprocess_env

        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.server", self.host, str(self.delay)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=subprocess_env(),
        )
        self._process = process
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()  # the server exits when its stdin closes
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()

    def _running(self) -> subprocess.Popen[str]:
        if self._process is None:
            raise RuntimeError("the benchmark server is not running")
        return self._process

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
