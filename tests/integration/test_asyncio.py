"""AsyncClient on a real event loop against real servers: no blocking call on the loop,
cancellation, closing with calls in flight, abandoned streams, and aiobotocore as a peer."""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import smruntime.transport
from benchmarks.server import LoopbackServer
from smruntime import AsyncClient, PayloadPart
from smruntime.errors import ClientClosedError, PoolTimeoutError, SageMakerRuntimeError
from smruntime.local import EndpointConfig, LocalConfig, LocalEndpoint
from smruntime.transport import AsyncFastHTTPClient
from smruntime.transport.shared import CLOSED_IN_FLIGHT, CLOSED_WHILE_WAITING
from tests.async_clients import LoopThread, SlowCallbacks
from tests.servers import HTTPTestServer, Reply, Send, Sleep, Wait, chunked, respond

CREDENTIALS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
REGION = "us-east-1"


def http_client() -> AsyncFastHTTPClient:
    return AsyncFastHTTPClient()


def async_client(url: str, **fields: Any) -> AsyncClient:
    """An AsyncClient with its default asyncio HTTP client."""
    return AsyncClient(**{"region": REGION, "endpoint_url": url, "credentials": CREDENTIALS, "retry_mode": "none", **fields})


@pytest.fixture
def slow_callbacks() -> Iterator[SlowCallbacks]:
    handler = SlowCallbacks()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


# --- nothing blocks the event loop ------------------------------------------------------------


def test_calls_and_streams_never_block_the_event_loop(slow_callbacks: SlowCallbacks) -> None:
    """Debug mode reports every callback that holds the loop longer than 50 ms (half the
    default; a loaded two-core machine pauses a process for 20 ms now and then). The server
    runs in another process, so nothing but the client competes with the loop for the GIL.
    A blocking call shows up in every run; the machine pausing the process (it is shared)
    does not every time, so the test passes on the first of three runs that sees none."""

    async def scenario(url: str) -> None:
        loop = asyncio.get_running_loop()
        async with async_client(url) as client:
            # The first call imports and composes what the later ones reuse: not measured.
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
            stream = await client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b'{"bytes": 1024, "part": 64}')
            async with stream:
                [part async for part in stream]
            loop.slow_callback_duration = 0.05
            # A full collection of the test process's heap (botocore, moto…) takes tens of ms
            # wherever it happens to run: frozen, it is not counted against the client.
            gc.freeze()
            for _ in range(10):  # in batches: debug mode makes creating many tasks at once slow itself
                await asyncio.gather(*(client.invoke_endpoint(endpoint_name="ep", body=b"{}") for _ in range(20)))

            async def read_stream() -> int:
                stream = await client.invoke_endpoint_with_response_stream(
                    endpoint_name="ep", body=b'{"bytes": 262144, "part": 4096}')
                async with stream:
                    return sum([len(data) async for data in stream.payloads()])

            assert await asyncio.gather(*(read_stream() for _ in range(4))) == [262144] * 4

    with LoopbackServer() as server:
        try:
            for _ in range(3):
                slow_callbacks.seen.clear()
                asyncio.run(scenario(server.url), debug=True)
                if not slow_callbacks.seen:
                    break
        finally:
            gc.unfreeze()
    assert slow_callbacks.seen == []


class WatchedFile(io.RawIOBase):
    """A file body that notes the thread of every read."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        self.reader_threads: set[int] = set()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.reader_threads.add(threading.get_ident())
        return self._file.readinto(buffer)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()
        super().close()


@pytest.mark.parametrize("make_transport", [AsyncFastHTTPClient, "aiohttp"], ids=["AsyncFastHTTPClient", "aiohttp"])
def test_a_file_body_is_read_off_the_event_loop(make_transport: Any, tmp_path: Any) -> None:
    """Hashing it for the signature and sending it read the disk, which must not hold the loop."""
    if make_transport == "aiohttp":
        from smruntime.transport import AiohttpHTTPClient

        make_transport = AiohttpHTTPClient
    content = bytes(range(256)) * 12_000  # 3 MB: several blocks
    path = tmp_path / "payload.bin"
    path.write_bytes(content)

    async def scenario(url: str) -> bool:
        body = WatchedFile(str(path))
        transport = make_transport()
        try:
            async with async_client(url, http_client=transport) as client:
                await client.invoke_endpoint(endpoint_name="ep", body=body, content_type="application/octet-stream")
        finally:
            await transport.aclose()
            body.close()
        assert body.reader_threads, "the body was never read"
        return threading.get_ident() in body.reader_threads  # the loop's thread

    with HTTPTestServer() as server:
        server.enqueue(respond(200, b"{}"))
        read_on_the_loop = asyncio.run(scenario(server.url))
        assert server.requests[0].body == content
    assert not read_on_the_loop


# --- cancellation, closing, abandoning ----------------------------------------------------------


async def dropped_and_replaced(server: HTTPTestServer, client: AsyncClient) -> None:
    """The server's only connection was dropped, not pooled half-read, and the client goes on
    with a new one."""
    deadline = time.monotonic() + 5
    while server.open_connections and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert server.open_connections == 0
    server.enqueue(respond(200, b"{}"))
    assert (await client.invoke_endpoint(endpoint_name="ep", body=b"x")).body == b"{}"
    assert server.connections_accepted == 2


def test_a_cancelled_call_releases_its_connection_and_leaves_no_task() -> None:
    held = threading.Event()

    async def scenario(server: HTTPTestServer) -> None:
        async with async_client(server.url) as client:
            call = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"x"))
            while not server.requests:
                await asyncio.sleep(0.005)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            assert asyncio.all_tasks() == {asyncio.current_task()}
            held.set()  # the server answers now: on a dropped connection, so it sees it closed
            await dropped_and_replaced(server, client)

    with HTTPTestServer(default=respond(200, b"late", wait=held)) as server:
        asyncio.run(scenario(server))
        held.set()


def test_aclose_with_calls_in_flight_ends_them_without_hanging_and_refuses_new_ones() -> None:
    release = threading.Event()

    async def scenario(server: HTTPTestServer) -> list[Any]:
        transport = http_client()
        client = AsyncClient(region=REGION, endpoint_url=server.url, credentials=CREDENTIALS, retry_mode="none",
                             http_client=transport)
        calls = [asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"x")) for _ in range(3)]
        while len(server.requests) < 3:
            await asyncio.sleep(0.005)
        await client.aclose()
        with pytest.raises(SageMakerRuntimeError, match="closed"):
            await client.invoke_endpoint(endpoint_name="ep", body=b"x")
        release.set()
        outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
        await transport.aclose()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        return outcomes

    with HTTPTestServer(default=respond(200, b"{}", wait=release)) as server:
        outcomes = asyncio.run(scenario(server))
    # Each call in flight either finished or failed with the library's error: none hung.
    assert all(getattr(o, "body", None) == b"{}" or isinstance(o, SageMakerRuntimeError) for o in outcomes), outcomes


@pytest.mark.parametrize("transport", ["AsyncFastHTTPClient", "AiohttpHTTPClient"])
def test_calls_waiting_for_a_connection_fail_when_the_client_closes_and_no_retry_reopens_it(transport: str) -> None:
    """Three calls on a pool of one connection, retries on: closing the client fails all of
    them with ClientClosedError, which is never retried, so no connection is opened after."""
    release = threading.Event()

    async def scenario(server: HTTPTestServer) -> list[Any]:
        http = getattr(smruntime.transport, transport)(max_pool_connections=1)
        client = AsyncClient(region=REGION, endpoint_url=server.url, credentials=CREDENTIALS, http_client=http)
        calls = [asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"x")) for _ in range(3)]
        while not server.requests:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # the other two are waiting for the connection
        await http.aclose()
        outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
        await client.aclose()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        return outcomes

    with HTTPTestServer(default=respond(200, b"{}", wait=release)) as server:
        outcomes = asyncio.run(scenario(server))
        release.set()
        assert server.connections_accepted == 1
    assert all(isinstance(outcome, ClientClosedError) for outcome in outcomes), outcomes
    in_flight, *waiting = sorted(outcomes, key=lambda error: not error.request_sent)
    assert str(in_flight).endswith(CLOSED_IN_FLIGHT) and in_flight.request_sent
    assert all(str(error).endswith(CLOSED_WHILE_WAITING) and not error.request_sent for error in waiting)


def test_a_call_that_gets_no_pooled_connection_in_time_fails_once_without_spending_the_retry_quota() -> None:
    """(AiohttpHTTPClient cannot tell this wait from connecting: it retries it as a connect timeout.)"""
    release = threading.Event()

    async def scenario(url: str) -> None:
        client = async_client(url, retry_mode="standard", max_pool_connections=1, connect_timeout=0.2)
        async with client:
            held = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"x"))
            await asyncio.sleep(0.05)
            with pytest.raises(PoolTimeoutError, match="waiting for one of 1 pooled connections"):
                await client.invoke_endpoint(endpoint_name="ep", body=b"x")
            release.set()
            assert (await held).body == b"{}"

    with HTTPTestServer(default=respond(200, b"{}", wait=release)) as server:
        asyncio.run(scenario(server.url))
        assert len(server.requests) == 1


def _echo(client: AsyncClient, bidirectional: bool) -> Any:
    async def call() -> bytes:
        if not bidirectional:
            return (await client.invoke_endpoint(endpoint_name="echo", body=b"x")).body
        async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as stream:
            await stream.send(b"x")
            await stream.end_input()
            return b"".join([part.bytes async for part in stream])

    return asyncio.wait_for(call(), 10)


@pytest.mark.parametrize("transport", ["AsyncFastHTTPClient", "AiohttpHTTPClient", "H2HTTPClient"])
def test_a_client_left_open_by_one_asyncio_run_works_in_the_next(transport: str) -> None:
    """The connections of a finished loop are dropped (only Python can close them now, as it
    does any socket left open); the client opens new ones on the running loop."""
    bidirectional = transport == "H2HTTPClient"
    with LocalEndpoint(credentials=CREDENTIALS) as endpoint:
        fields: dict[str, Any] = {"http2_endpoint_url": endpoint.http2_url} if bidirectional else {
            "http_client": getattr(smruntime.transport, transport)()}
        client = async_client(endpoint.url, **fields)
        assert asyncio.run(_echo(client, bidirectional)) == b"x"  # and not closed

        async def last() -> bytes:
            async with client:
                answer = await _echo(client, bidirectional)
            if "http_client" in fields:
                await fields["http_client"].aclose()
            return answer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # for what the first run left open
            logging.disable(logging.ERROR)  # aiohttp logs its unclosed session
            try:
                assert asyncio.run(last()) == b"x"
                gc.collect()
            finally:
                logging.disable(logging.NOTSET)


@pytest.mark.parametrize("transport", ["AsyncFastHTTPClient", "AiohttpHTTPClient", "H2HTTPClient"])
def test_a_client_used_by_one_asyncio_run_is_closed_by_the_next(transport: str) -> None:
    """A test fixture's teardown, on a loop of its own: the connections of the finished loop
    are dropped, not closed through it (which raised 'Event loop is closed')."""
    bidirectional = transport == "H2HTTPClient"
    with LocalEndpoint(credentials=CREDENTIALS) as endpoint:
        http = None if bidirectional else getattr(smruntime.transport, transport)()
        fields: dict[str, Any] = {"http2_endpoint_url": endpoint.http2_url} if bidirectional else {"http_client": http}
        client = async_client(endpoint.url, **fields)
        assert asyncio.run(_echo(client, bidirectional)) == b"x"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # for what the first run left open
            logging.disable(logging.ERROR)  # aiohttp logs its unclosed session
            try:
                asyncio.run(client.aclose())
                if http is not None:
                    asyncio.run(http.aclose())
                gc.collect()
            finally:
                logging.disable(logging.NOTSET)


def test_closing_from_another_thread_closes_on_the_loop_that_uses_the_client() -> None:
    with HTTPTestServer(default=respond(200, b"{}")) as server:
        client = async_client(server.url)
        elsewhere = LoopThread()
        try:
            assert elsewhere.run(client.invoke_endpoint(endpoint_name="ep", body=b"x")).body == b"{}"
            assert server.open_connections == 1
            asyncio.run(client.aclose())  # awaits the closing done on the other thread's loop
            server.wait_connections_closed()
        finally:
            elsewhere.close()


def test_a_client_in_use_on_a_loop_in_another_thread_is_refused_on_a_second_loop() -> None:
    with LocalEndpoint(credentials=CREDENTIALS) as endpoint:
        client = async_client(endpoint.url)
        elsewhere = LoopThread()
        try:
            assert elsewhere.run(_echo(client, False)) == b"x"
            with pytest.raises(RuntimeError, match="in use on an event loop running in another thread"):
                asyncio.run(_echo(client, False))
            elsewhere.run(client.aclose())
        finally:
            elsewhere.close()


def _tokens_endpoint() -> LocalEndpoint:
    def tokens(request: Any) -> Iterator[bytes]:
        for index in range(50):
            yield f"token-{index} ".encode()

    return LocalEndpoint(LocalConfig(endpoints=(EndpointConfig.serving("tokens", tokens),
                                               EndpointConfig.serving("echo", "echo"))), credentials=CREDENTIALS)


def test_an_abandoned_stream_is_cleaned_up() -> None:
    async def scenario(url: str) -> None:
        async with async_client(url) as client:
            stream = await client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"x")
            response = stream._response
            assert await stream.__anext__() == PayloadPart(b"token-0 ")
            del stream
            gc.collect()
            for _ in range(20):
                await asyncio.sleep(0.01)
            with pytest.raises(Exception):  # noqa: B017 - released: the body can no longer be read
                await response.body.read()
            # and the client goes on
            assert (await client.invoke_endpoint(endpoint_name="echo", body=b"ok")).body == b"ok"

    with _tokens_endpoint() as endpoint:
        asyncio.run(scenario(endpoint.url))


# --- aiobotocore as a peer -----------------------------------------------------------------------


def test_aiobotocore_gets_the_same_answers_from_the_local_endpoint() -> None:
    from aiobotocore.session import get_session

    async def scenario(url: str) -> None:
        session = get_session()
        async with async_client(url) as client, session.create_client(
            "sagemaker-runtime", endpoint_url=url, region_name=REGION,
            aws_access_key_id=CREDENTIALS[0], aws_secret_access_key=CREDENTIALS[1],
        ) as peer:
            ours = await client.invoke_endpoint(endpoint_name="echo", body=b'{"x": 1}', content_type="application/json")
            theirs = await peer.invoke_endpoint(EndpointName="echo", Body=b'{"x": 1}', ContentType="application/json")
            assert ours.body == await theirs["Body"].read()
            assert ours.content_type == theirs["ContentType"]
            assert ours.invoked_production_variant == theirs["InvokedProductionVariant"]

            stream = await client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"x")
            async with stream:
                our_parts = [data async for data in stream.payloads()]
            answer = await peer.invoke_endpoint_with_response_stream(EndpointName="tokens", Body=b"x")
            their_parts = [event["PayloadPart"]["Bytes"] async for event in answer["Body"]]
            assert b"".join(our_parts) == b"".join(their_parts) == b"".join(f"token-{i} ".encode() for i in range(50))

    with _tokens_endpoint() as endpoint:
        asyncio.run(scenario(endpoint.url))


# --- each event surfaces as soon as its bytes arrive ------------------------------------------------

STREAM_HEADERS = [("Content-Type", "application/vnd.amazon.eventstream"),
                  ("X-Amzn-SageMaker-Content-Type", "text/plain")]


def _frame(data: bytes) -> bytes:
    from smruntime.eventstream import encode_message

    return encode_message({":event-type": "PayloadPart", ":content-type": "application/octet-stream",
                           ":message-type": "event"}, data)


def _transports() -> list[Any]:
    from smruntime.transport import AiohttpHTTPClient

    return [AsyncFastHTTPClient, AiohttpHTTPClient]


@pytest.mark.parametrize("make_transport", _transports(), ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("layout", ["a chunk per event", "a chunk in two writes", "an event in two chunks"])
def test_each_event_is_handed_out_before_the_server_sends_the_next_bytes(make_transport: Any, layout: str) -> None:
    """The server writes an event's last byte, then waits until the client has that event
    before it writes anything more. A client that held an event back until more bytes came
    (a full read buffer, the next chunk, the next frame) would wait for bytes that never
    come: an await below would time out instead. (SageMaker sends one event per HTTP chunk;
    the transports hand on a chunk of up to 1 MiB whole, so an event packed into a longer
    chunk with others surfaces when that chunk ends.)"""
    words = [b"alpha", b"beta", b"gamma", b"delta"]
    got = [threading.Event() for _ in words]
    steps: list[Any] = []
    for word, seen in zip(words, got, strict=True):
        frame = _frame(word)
        half = len(frame) // 2
        if layout == "a chunk per event":
            steps.append(Send(b"%x\r\n%b\r\n" % (len(frame), frame)))
        elif layout == "a chunk in two writes":
            steps += [Send(b"%x\r\n%b" % (len(frame), frame[:half])), Sleep(0.02), Send(frame[half:] + b"\r\n")]
        else:
            steps += [Send(b"%x\r\n%b\r\n" % (half, frame[:half])), Sleep(0.02),
                      Send(b"%x\r\n%b\r\n" % (len(frame) - half, frame[half:]))]
        steps.append(Wait(seen, timeout=60))
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"%s: %s\r\n" % (n.encode(), v.encode()) for n, v in STREAM_HEADERS)
    reply = Reply([Send(head + b"Transfer-Encoding: chunked\r\n\r\n"), *steps, Send(b"0\r\n\r\n")])

    async def scenario(url: str) -> list[bytes]:
        transport = make_transport()
        try:
            async with async_client(url, http_client=transport) as client:
                stream = await asyncio.wait_for(
                    client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x"), 10)
                received = []
                async with stream:
                    events = stream.__aiter__()
                    for seen in got:
                        received.append((await asyncio.wait_for(events.__anext__(), 10)).bytes)
                        seen.set()  # only now does the server write the next bytes
                    with pytest.raises(StopAsyncIteration):
                        await asyncio.wait_for(events.__anext__(), 10)
                return received
        finally:
            await transport.aclose()

    with HTTPTestServer(default=reply) as server:
        try:
            assert asyncio.run(scenario(server.url)) == words
        finally:
            for seen in got:
                seen.set()


def test_a_stream_cancelled_mid_flight_releases_its_connection_and_leaves_no_task() -> None:
    more = threading.Event()
    frame = _frame(b"first")
    reply = chunked([frame, Wait(more, timeout=60), _frame(b"second")], headers=STREAM_HEADERS)

    async def scenario(server: HTTPTestServer) -> None:
        async with async_client(server.url) as client:
            first = asyncio.get_running_loop().create_future()

            async def read() -> None:
                stream = await client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
                async with stream:
                    async for event in stream:
                        first.set_result(event.bytes)

            reader = asyncio.create_task(read())
            assert await asyncio.wait_for(first, 10) == b"first"
            reader.cancel()  # while it waits for the second event
            with pytest.raises(asyncio.CancelledError):
                await reader
            assert asyncio.all_tasks() == {asyncio.current_task()}
            more.set()  # the server writes on: on a dropped connection, so it sees it closed
            await dropped_and_replaced(server, client)

    with HTTPTestServer(default=reply) as server:
        try:
            asyncio.run(scenario(server))
        finally:
            more.set()
