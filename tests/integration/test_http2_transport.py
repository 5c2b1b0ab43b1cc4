"""H2HTTPClient over real sockets: hypercorn (h2c with prior knowledge, and TLS with ALPN h2)
and a scripted raw-h2 server for the faults (resets, GOAWAY, drops, withheld windows)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from smruntime.errors import (
    ClientClosedError,
    ConnectError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ResponseTooLargeError,
)
from smruntime.http import HTTPRequest
from smruntime.transport import ConnectionTerminatedError, H2HTTPClient, HTTP2Stream, StreamResetError
from smruntime.transport.http2_protocol import AsyncHTTP2Client
from tests.http2_servers import HypercornServer, RawH2Server, TLSFiles, make_tls, refusing_port

T = TypeVar("T")
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def h2c() -> Iterator[HypercornServer]:
    with HypercornServer() as server:
        yield server


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls(str(tmp_path_factory.mktemp("h2tls")))


@pytest.fixture(scope="module")
def h2_tls(tls_files: TLSFiles) -> Iterator[HypercornServer]:
    with HypercornServer(tls=tls_files) as server:
        yield server


@pytest.fixture
def raw() -> Iterator[RawH2Server]:
    with RawH2Server() as server:
        yield server


def run(scenario: Callable[[H2HTTPClient], Awaitable[T]], **options: Any) -> T:
    """Run ``scenario`` with a fresh client on a fresh loop; no task may outlive it."""

    async def main() -> T:
        async with H2HTTPClient(**{"read_timeout": 10.0, "connect_timeout": 10.0, **options}) as client:
            result = await scenario(client)
        leftover = asyncio.all_tasks() - {asyncio.current_task()}
        assert not leftover, leftover
        return result

    return asyncio.run(main())


def post(url: str, path: str, **headers: str) -> HTTPRequest:
    return HTTPRequest("POST", url + path, headers)


async def read_all(stream: HTTP2Stream) -> bytes:
    response = await stream.response()
    return await response.body.read()


async def echo(client: H2HTTPClient, url: str, data: bytes) -> bytes:
    """One short stream: send ``data`` to ``/echo``, end the input, read the whole answer."""
    stream = await client.open_stream(post(url, "/echo"))
    await stream.send(data)
    await stream.end_input()
    return await read_all(stream)


def test_the_client_is_an_async_http2_client() -> None:
    client: AsyncHTTP2Client = H2HTTPClient()
    assert callable(client.open_stream)


# -- full duplex -----------------------------------------------------------------------------


def test_full_duplex_each_echo_arrives_before_the_next_send(h2c: HypercornServer) -> None:
    async def scenario(client: H2HTTPClient) -> list[bytes]:
        stream = await client.open_stream(post(h2c.url, "/echo"))
        response = await stream.response()  # before any input: this server answers at once
        assert response.status_code == 200 and response.headers["x-path"] == "/echo"
        chunks = response.body.aiter_chunks()
        echoed = []
        for index in range(5):
            await stream.send(b"part %d" % index)
            echoed.append(await anext(chunks))
        await stream.end_input()
        echoed.extend([chunk async for chunk in chunks])
        await stream.aclose()
        return echoed

    assert run(scenario) == [b"part %d" % index for index in range(5)]


def test_a_server_that_waits_for_input_answers_after_the_first_send(h2c: HypercornServer) -> None:
    async def scenario(client: H2HTTPClient) -> bytes:
        stream = await client.open_stream(post(h2c.url, "/after-input"))
        waiting = asyncio.ensure_future(stream.response())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # nothing sent yet: no answer
        await stream.send(b"first")
        response = await waiting
        await stream.end_input()
        return await response.body.read()

    assert run(scenario) == b"first"


def test_large_bodies_both_ways_go_past_many_windows(h2c: HypercornServer) -> None:
    size = 6 * MiB

    async def scenario(client: H2HTTPClient) -> tuple[bytes, bytes, int]:
        upload = await client.open_stream(post(h2c.url, "/sink"))
        await upload.send(b"u" * size)
        await upload.end_input()
        uploaded = await read_all(upload)

        download = await client.open_stream(post(h2c.url, f"/source?size={size}"))
        await download.end_input()
        downloaded = await read_all(download)

        echo = await client.open_stream(post(h2c.url, "/echo"))
        data = bytes(range(256)) * (size // 256)

        async def writer() -> None:
            await echo.send(data)
            await echo.end_input()

        sending = asyncio.ensure_future(writer())
        echoed = await read_all(echo)
        await sending
        return uploaded, downloaded, int(echoed == data)

    uploaded, downloaded, same = run(scenario)
    assert uploaded == str(size).encode()
    assert downloaded == b"s" * size
    assert same


def test_https_negotiates_h2_with_alpn_and_checks_the_certificate(h2_tls: HypercornServer, tls_files: TLSFiles) -> None:
    async def scenario(client: H2HTTPClient) -> bytes:
        return await echo(client, h2_tls.url, b"over tls")

    assert run(scenario, verify=tls_files.ca_file) == b"over tls"
    with pytest.raises(ConnectError, match=r"TLS|certificate") as caught:
        run(scenario, verify=True)  # certifi does not know the test CA
    assert caught.value.request_sent is False


def test_a_tls_server_that_does_not_choose_h2_is_refused(tls_files: TLSFiles) -> None:
    with HypercornServer(tls=tls_files, alpn=("http/1.1",)) as server:

        async def scenario(client: H2HTTPClient) -> None:
            await client.open_stream(post(server.url, "/echo"))

        with pytest.raises(ConnectError, match="ALPN offered h2, the server chose nothing") as caught:
            run(scenario, verify=tls_files.ca_file)
    assert caught.value.request_sent is False


# -- flow control ----------------------------------------------------------------------------


def test_a_slow_reader_holds_the_server_back_at_the_stream_window(raw: RawH2Server) -> None:
    size = 4 * MiB

    async def scenario(client: H2HTTPClient) -> bytes:
        stream = await client.open_stream(post(raw.url, f"/flood?size={size}"))
        response = await stream.response()
        await asyncio.to_thread(raw.wait_for, lambda: raw.flood_sent >= 65535)
        await asyncio.sleep(0.2)  # time the server would need to send more, were the window open
        assert raw.flood_sent == 65535  # nothing read: no WINDOW_UPDATE, the server waits
        await stream.end_input()
        return await response.body.read()

    assert run(scenario, stream_window=65535) == b"f" * size
    assert raw.flood_sent == size


def test_sending_waits_for_the_servers_window_and_then_completes(raw: RawH2Server) -> None:
    async def scenario(client: H2HTTPClient) -> bytes:
        stream = await client.open_stream(post(raw.url, "/stall"))
        sending = asyncio.ensure_future(stream.send(b"w" * 200_000))
        await asyncio.to_thread(raw.wait_for, lambda: bool(raw.streams) and len(raw.streams[-1].received) >= 65535)
        await asyncio.sleep(0.1)
        assert not sending.done()  # the window is used up
        assert len(raw.streams[-1].received) == 65535
        for _ in range(200):  # each release lets h2 on the server hand some window back
            raw.release_window()
            await asyncio.wait([sending], timeout=0.02)
            if sending.done():
                break
        await sending
        await stream.end_input()
        return await read_all(stream)

    assert run(scenario) == b""
    assert len(raw.streams[-1].received) == 200_000


def test_a_window_that_never_opens_fails_the_send_with_a_read_timeout(raw: RawH2Server) -> None:
    async def scenario(client: H2HTTPClient) -> None:
        stream = await client.open_stream(post(raw.url, "/stall"))
        await stream.send(b"w" * 100_000)

    with pytest.raises(ReadTimeoutError, match="flow-control window"):
        run(scenario, read_timeout=0.3)
    raw.wait_for(lambda: raw.streams[-1].reset_code == 8)  # the stream was cancelled


def test_a_body_read_whole_stops_at_max_response_body_size(h2c: HypercornServer) -> None:
    async def scenario(client: H2HTTPClient) -> None:
        stream = await client.open_stream(post(h2c.url, f"/source?size={2 * MiB}"))
        await stream.end_input()
        await read_all(stream)

    with pytest.raises(ResponseTooLargeError):
        run(scenario, max_response_body_size=MiB)


# -- faults ----------------------------------------------------------------------------------


def test_a_server_reset_fails_the_stream_with_the_code_name(raw: RawH2Server) -> None:
    async def scenario(client: H2HTTPClient) -> None:
        stream = await client.open_stream(post(raw.url, "/reset?code=2"))
        response = await stream.response()
        await stream.send(b"trigger")
        await response.body.read()

    with pytest.raises(StreamResetError, match="RST_STREAM INTERNAL_ERROR") as caught:
        run(scenario)
    assert caught.value.error_name == "INTERNAL_ERROR" and caught.value.request_sent


def test_a_refused_stream_may_be_sent_again(raw: RawH2Server) -> None:
    async def scenario(client: H2HTTPClient) -> None:
        stream = await client.open_stream(post(raw.url, "/reset?code=7&now=1"))
        await read_all(stream)

    with pytest.raises(StreamResetError) as caught:
        run(scenario)
    assert caught.value.error_name == "REFUSED_STREAM"
    assert caught.value.request_sent is False and caught.value.retryable


@pytest.mark.parametrize(("query", "processed"), [("code=0&last=0", False), ("code=2", True)])
def test_goaway_fails_the_stream_and_the_next_stream_gets_a_new_connection(
    raw: RawH2Server, query: str, processed: bool
) -> None:
    async def scenario(client: H2HTTPClient) -> bytes:
        stream = await client.open_stream(post(raw.url, f"/goaway?{query}"))
        with pytest.raises(ConnectionTerminatedError) as caught:
            await read_all(stream)
        assert caught.value.processed is processed and caught.value.request_sent is processed
        assert "going away" in str(caught.value)
        return await echo(client, raw.url, b"again")

    assert run(scenario) == b"again"
    assert raw.connections == 2


def test_a_connection_dropped_mid_stream_hands_over_what_arrived_then_fails(raw: RawH2Server) -> None:
    async def scenario(client: H2HTTPClient) -> list[bytes]:
        stream = await client.open_stream(post(raw.url, "/drop"))
        response = await stream.response()
        got = []
        with pytest.raises(ConnectionClosedError, match="HTTP/2 connection closed"):
            async for chunk in response.body.aiter_chunks():
                got.append(chunk)
        with pytest.raises(ConnectionClosedError):
            await stream.send(b"late")
        return got

    assert run(scenario) == [b"partial"]


def test_connection_refused_is_a_connect_error() -> None:
    with refusing_port() as port:

        async def scenario(client: H2HTTPClient) -> None:
            await client.open_stream(post(f"http://127.0.0.1:{port}", "/"))

        with pytest.raises(ConnectError, match="could not connect") as caught:
            run(scenario)
    assert caught.value.request_sent is False and caught.value.retryable


def test_a_tls_handshake_that_never_ends_is_a_connect_timeout() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does), never speaks TLS
    try:

        async def scenario(client: H2HTTPClient) -> None:
            await client.open_stream(post(f"https://127.0.0.1:{listener.getsockname()[1]}", "/"))

        with pytest.raises(ConnectTimeoutError, match="timed out") as caught:
            run(scenario, connect_timeout=0.3, verify=False)
        assert caught.value.request_sent is False
    finally:
        listener.close()


def test_streams_opened_at_once_wait_for_one_connection_and_share_its_failure() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # the kernel accepts; nobody speaks TLS
    try:

        async def scenario(client: H2HTTPClient) -> list[BaseException]:
            url = f"https://127.0.0.1:{listener.getsockname()[1]}"
            opening = [client.open_stream(post(url, "/")) for _ in range(5)]
            return list(await asyncio.gather(*opening, return_exceptions=True))  # type: ignore[arg-type]

        errors = run(scenario, connect_timeout=0.3, verify=False)
        assert all(isinstance(error, ConnectTimeoutError) for error in errors), errors
        listener.setblocking(False)
        accepted = []
        with contextlib.suppress(BlockingIOError):
            while True:
                accepted.append(listener.accept()[0])
        for sock in accepted:
            sock.close()
        assert len(accepted) == 1  # one connection attempt, not five
    finally:
        listener.close()


def test_no_response_within_read_timeout_fails_and_cancels_the_stream(raw: RawH2Server) -> None:
    async def scenario(client: H2HTTPClient) -> None:
        stream = await client.open_stream(post(raw.url, "/hold"))
        await stream.response()

    with pytest.raises(ReadTimeoutError, match=r"no response headers from the server for 0\.3 s"):
        run(scenario, read_timeout=0.3)
    raw.wait_for(lambda: raw.streams[-1].reset_code == 8)


def test_every_wait_has_its_own_read_timeout_however_long_the_stream_lasts(raw: RawH2Server) -> None:
    # Four waits of 0.3 s each on one stream, with read_timeout 0.5 s: the stream outlives its
    # read_timeout many times over, and no wait may be cut short by an earlier one's deadline.
    async def scenario(client: H2HTTPClient) -> None:
        stream = await client.open_stream(post(raw.url, "/echo"))
        chunks = (await stream.response()).body.aiter_chunks()

        async def send_later(data: bytes) -> None:
            await asyncio.sleep(0.3)
            await stream.send(data)

        for n in range(4):
            sending = asyncio.ensure_future(send_later(b"%d" % n))
            assert await anext(chunks) == b"%d" % n
            await sending
        await stream.aclose()

    run(scenario, read_timeout=0.5)


# -- cancellation and closing ----------------------------------------------------------------


async def _read_body(stream: HTTP2Stream) -> bytes:
    response = await stream.response()
    return await response.body.read()


@pytest.mark.parametrize(("where", "path"), [("response", "/hold"), ("send", "/stall"), ("body", "/echo")])
def test_a_cancelled_task_resets_the_stream_and_frees_its_slot(raw: RawH2Server, where: str, path: str) -> None:
    async def scenario(client: H2HTTPClient) -> bytes:
        stream = await client.open_stream(post(raw.url, path))
        waits = {"response": stream.response, "send": lambda: stream.send(b"c" * 200_000), "body": lambda: _read_body(stream)}
        waiting = asyncio.ensure_future(waits[where]())
        await asyncio.to_thread(raw.wait_for, lambda: len(raw.streams) == 1)
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.to_thread(raw.wait_for, lambda: raw.streams[0].reset_code == 8)  # RST_STREAM CANCEL
        with pytest.raises(ConnectionClosedError, match="cancelled: a task waiting on it"):  # says why it is over
            await stream.send(b"more")
        (origin,) = client._origins.values()
        assert all(not conn.streams for conn in origin.connections)
        return await echo(client, raw.url, b"ok")  # the connection is still good

    assert run(scenario) == b"ok"
    assert raw.connections == 1


def test_closing_a_stream_wakes_the_task_waiting_on_its_response(raw: RawH2Server) -> None:
    async def scenario(client: H2HTTPClient) -> None:
        stream = await client.open_stream(post(raw.url, "/echo"))
        body = (await stream.response()).body
        reading = asyncio.ensure_future(body.read())
        await asyncio.sleep(0.05)
        await stream.aclose()
        with pytest.raises(ConnectionClosedError, match="closed before its response was read to the end"):
            await reading

    run(scenario)
    raw.wait_for(lambda: raw.streams[0].reset_code == 8)


def test_aclose_fails_open_streams_with_client_closed(raw: RawH2Server) -> None:
    async def scenario(client: H2HTTPClient) -> None:
        stream = await client.open_stream(post(raw.url, "/hold"))
        waiting = asyncio.ensure_future(stream.response())
        await asyncio.to_thread(raw.wait_for, lambda: len(raw.streams) == 1)
        await client.aclose()
        with pytest.raises(ClientClosedError, match="closed while this stream was open"):
            await waiting
        with pytest.raises(ClientClosedError):
            await stream.send(b"after close")
        await stream.aclose()  # idempotent, and quiet after the client closed

    run(scenario)


# -- reuse and limits ------------------------------------------------------------------------


def test_later_and_concurrent_streams_share_one_connection(raw: RawH2Server) -> None:
    async def scenario(client: H2HTTPClient) -> list[bytes]:
        first = [await echo(client, raw.url, b"first"), await echo(client, raw.url, b"second")]
        return first + list(await asyncio.gather(*(echo(client, raw.url, b"%d" % i) for i in range(20))))

    assert run(scenario) == [b"first", b"second", *(b"%d" % i for i in range(20))]
    assert raw.connections == 1
    assert [s.stream_id for s in raw.streams[:2]] == [1, 3]


def test_a_connection_the_server_closed_while_idle_is_replaced(raw: RawH2Server) -> None:
    async def scenario(client: H2HTTPClient) -> list[bytes]:
        first = await echo(client, raw.url, b"before")
        raw.goaway()
        (origin,) = client._origins.values()
        while origin.connections:  # the GOAWAY arrives
            await asyncio.sleep(0.01)
        return [first, await echo(client, raw.url, b"after")]

    assert run(scenario) == [b"before", b"after"]
    assert raw.connections == 2


def test_a_connection_with_no_stream_past_idle_timeout_is_closed_and_the_next_stream_opens_another(
    raw: RawH2Server,
) -> None:
    async def scenario(client: H2HTTPClient) -> list[bytes]:
        answers = [await echo(client, raw.url, b"one"), await echo(client, raw.url, b"two")]  # one connection
        await asyncio.sleep(0.5)
        return [*answers, await echo(client, raw.url, b"three")]

    assert run(scenario, idle_timeout=0.3) == [b"one", b"two", b"three"]
    assert raw.connections == 2
    raw.wait_for(lambda: raw.goaways_received == 2)  # the idle one said goodbye, then the other at aclose


@pytest.mark.parametrize("idle_timeout", [0, -1.0, float("inf"), float("nan")])
def test_idle_timeout_is_positive_and_finite_or_none(idle_timeout: float) -> None:
    with pytest.raises(ValueError, match="idle_timeout must be a positive number of seconds or None"):
        H2HTTPClient(idle_timeout=idle_timeout)
    assert H2HTTPClient().idle_timeout == 90.0
    assert H2HTTPClient(idle_timeout=None).idle_timeout is None


def test_without_multiplexing_each_stream_has_its_own_connection_within_the_pool_limit(raw: RawH2Server) -> None:
    async def scenario(client: H2HTTPClient) -> None:
        first = await client.open_stream(post(raw.url, "/echo"))
        with pytest.raises(ConnectTimeoutError, match="waiting to open an HTTP/2 stream"):
            await client.open_stream(post(raw.url, "/echo"))  # the one connection allowed is taken
        await first.aclose()
        assert await echo(client, raw.url, b"x") == b"x"

    run(scenario, multiplex=False, max_pool_connections=1, connect_timeout=0.3)
    assert raw.connections == 2


def test_headers_reach_the_server_as_the_request_has_them(raw: RawH2Server) -> None:
    async def scenario(client: H2HTTPClient) -> None:
        request = HTTPRequest(
            "POST",
            raw.url + "/echo?model=a%20b",
            {"X-Amzn-SageMaker-Target-Variant": "v1", "Content-Type": "application/vnd.amazon.eventstream"},
        )
        stream = await client.open_stream(request)
        await stream.end_input()
        await read_all(stream)

    run(scenario)
    assert raw.streams[0].headers == [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", f"127.0.0.1:{raw.port}"),
        (":path", "/echo?model=a%20b"),
        ("x-amzn-sagemaker-target-variant", "v1"),
        ("content-type", "application/vnd.amazon.eventstream"),
    ]


def test_a_server_thread_is_not_left_running(h2c: HypercornServer) -> None:
    names = {thread.name for thread in threading.enumerate()}
    assert "raw-h2" not in names  # the raw server of earlier tests stopped with its block
