"""HTTP/2 bidirectional streaming: the floor, and the transport's connection reuse.

:func:`raw_echo_rtts` is the floor a bidirectional-streaming round trip is compared with: the
least a Python client can do on one HTTP/2 stream. It speaks h2 over a blocking socket with
``TCP_NODELAY``, opens one stream, then ``count`` times sends one DATA frame and waits for the
server's echo of it, acknowledging received data at once; no signing, no event framing, no
asyncio. It returns each round trip in seconds.

Run as a script, it starts hypercorn with :func:`echo_app` in a child process (cleartext HTTP/2
with prior knowledge on a loopback port) and prints, in one run against that server:

* the floor's round trip and :class:`~smruntime.transport.H2HTTPClient`'s on the same kind of
  stream (µs, median);
* the floor for 1,000 short streams one after another on one connection (raw h2);
* 1,000 sequential streams and 64 concurrent streams (10 rounds), each sending a small body and
  reading its echo, with one shared connection (``multiplex=True``) and with a connection per
  stream (``multiplex=False``): the figures the client's reuse decision rests on.

    python -m benchmarks.h2_floor [--sequential 1000] [--concurrent 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from typing import Any

__all__ = ["echo_app", "raw_echo_rtts", "raw_sequential_streams"]


def raw_echo_rtts(url: str, *, path: str = "/echo", payload: bytes = b"x" * 64, count: int = 1000) -> list[float]:
    """Round trips (seconds) of ``payload`` through an HTTP/2 echo at ``url`` + ``path``, on one
    stream over cleartext HTTP/2 with prior knowledge."""
    import h2.config
    import h2.connection
    import h2.events

    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    stream_id = conn.get_next_available_stream_id()
    authority = parts.netloc
    conn.send_headers(stream_id, [(":method", "POST"), (":scheme", "http"), (":authority", authority), (":path", path)])
    sock.sendall(conn.data_to_send())
    rtts = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            conn.send_data(stream_id, payload)
            sock.sendall(conn.data_to_send())
            echoed = 0
            while echoed < len(payload):
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("the server closed the connection")
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                        echoed += len(event.data)
                        conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                    elif isinstance(event, h2.events.StreamReset):
                        raise ConnectionError(f"the server reset the stream ({event.error_code!r})")
                pending = conn.data_to_send()
                if pending:
                    sock.sendall(pending)
            rtts.append(time.perf_counter() - started)
        conn.end_stream(stream_id)
        conn.close_connection()
        sock.sendall(conn.data_to_send())
    finally:
        sock.close()
    return rtts


def raw_sequential_streams(url: str, *, path: str = "/echo", payload: bytes = b"s" * 64, count: int = 1000) -> float:
    """Seconds for ``count`` streams one after another on one connection, each sending
    ``payload`` with END_STREAM and reading the echo to its end: the floor for a short stream."""
    import h2.config
    import h2.connection
    import h2.events

    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    headers = [(":method", "POST"), (":scheme", "http"), (":authority", parts.netloc), (":path", path)]
    started = time.perf_counter()
    try:
        for _ in range(count):
            stream_id = conn.get_next_available_stream_id()
            conn.send_headers(stream_id, headers)
            conn.send_data(stream_id, payload, end_stream=True)
            sock.sendall(conn.data_to_send())
            ended = False
            while not ended:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("the server closed the connection")
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                        ended = ended or event.stream_id == stream_id
                pending = conn.data_to_send()
                if pending:
                    sock.sendall(pending)
        return time.perf_counter() - started
    finally:
        sock.close()


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app that answers at once and sends back each request chunk as it arrives."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        if message.get("body"):
            await send({"type": "http.response.body", "body": message["body"], "more_body": True})
        if not message.get("more_body"):
            break
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class EchoServer:
    """hypercorn with :func:`echo_app` in a child process, on a loopback port it is handed."""

    def __enter__(self) -> EchoServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        fd = listener.fileno()
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "hypercorn", "--bind", f"fd://{fd}", "--log-level", "error", "benchmarks.h2_floor:echo_app"],
            pass_fds=(fd,),
            cwd=root,
        )
        listener.close()  # the child holds its own copy
        for _ in range(100):  # wait until it answers
            try:
                raw_echo_rtts(self.url, count=1)
                break
            except OSError:
                time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        self._process.wait(10)


async def _exchange(client: Any, url: str, payload: bytes) -> None:
    from smruntime.http import HTTPRequest

    stream = await client.open_stream(HTTPRequest("POST", url + "/echo"))
    await stream.send(payload)
    await stream.end_input()
    response = await stream.response()
    assert await response.body.read() == payload
    await stream.aclose()


async def _client_rtts(url: str, payload: bytes, count: int) -> list[float]:
    from smruntime.http import HTTPRequest
    from smruntime.transport import H2HTTPClient

    async with H2HTTPClient() as client:
        stream = await client.open_stream(HTTPRequest("POST", url + "/echo"))
        chunks = (await stream.response()).body.aiter_chunks()
        rtts = []
        for _ in range(count):
            started = time.perf_counter()
            await stream.send(payload)
            got = 0
            while got < len(payload):
                got += len(await anext(chunks))
            rtts.append(time.perf_counter() - started)
        await stream.end_input()
        await stream.aclose()
    return rtts


async def _sequential(url: str, count: int, *, multiplex: bool) -> float:
    from smruntime.transport import H2HTTPClient

    async with H2HTTPClient(multiplex=multiplex) as client:
        started = time.perf_counter()
        for _ in range(count):
            await _exchange(client, url, b"s" * 64)
        return time.perf_counter() - started


async def _concurrent(url: str, width: int, rounds: int, *, multiplex: bool) -> list[float]:
    from smruntime.transport import H2HTTPClient

    times = []
    async with H2HTTPClient(multiplex=multiplex, max_pool_connections=width) as client:
        for _ in range(rounds):
            started = time.perf_counter()
            await asyncio.gather(*(_exchange(client, url, b"c" * 64) for _ in range(width)))
            times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=1000)
    parser.add_argument("--concurrent", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--rtts", type=int, default=2000)
    args = parser.parse_args(argv)
    with EchoServer() as server:
        floor = statistics.median(raw_echo_rtts(server.url, count=args.rtts)) * 1e6
        ours = statistics.median(asyncio.run(_client_rtts(server.url, b"x" * 64, args.rtts))) * 1e6
        print(f"round trip of 64 B on one stream: raw h2 floor {floor:.0f} µs, H2HTTPClient {ours:.0f} µs ({ours / floor:.2f}x)")
        raw = raw_sequential_streams(server.url, count=args.sequential)
        print(f"raw h2 floor: {args.sequential} sequential streams on one connection {raw * 1e3:.0f} ms")
        for multiplex in (True, False):
            label = "one shared connection " if multiplex else "a connection per stream"
            sequential = asyncio.run(_sequential(server.url, args.sequential, multiplex=multiplex))
            concurrent = asyncio.run(_concurrent(server.url, args.concurrent, args.rounds, multiplex=multiplex))
            print(
                f"{label}: {args.sequential} sequential streams {sequential * 1e3:.0f} ms "
                f"({sequential / args.sequential * 1e6:.0f} µs each); {args.concurrent} concurrent streams "
                f"{statistics.median(concurrent) * 1e3:.1f} ms a round (median of {args.rounds})"
            )


if __name__ == "__main__":
    main()
