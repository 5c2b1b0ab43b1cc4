"""Both clients' bidirectional streams against the local endpoint, over real HTTP/2 sockets on
ephemeral loopback ports: the default HTTP/2 transport, the local endpoint's signature checks
of the opening request and of every event, its models and its faults."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from smruntime import errors
from smruntime.eventstream import TruncatedStreamError
from smruntime.local import EndpointConfig, LocalConfig, LocalEndpoint
from smruntime.retry import StandardRetryer
from tests.bidi_support import KINDS, Stream, open_client, open_stream

KEYS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
MODELS = "tests.integration.bidi_test_models"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    config = LocalConfig(endpoints=(
        EndpointConfig.serving("echo", "echo"),
        EndpointConfig.serving("turns", "turns"),
        EndpointConfig.serving("chatty", f"{MODELS}:chatty"),
        EndpointConfig.serving("greeter", f"{MODELS}:greet_first"),
        EndpointConfig.serving("failing", f"{MODELS}:fail_on_boom"),
        EndpointConfig.serving("done", f"{MODELS}:one_answer"),
        EndpointConfig.serving("silent", f"{MODELS}:silent"),
    ))
    with LocalEndpoint(config, credentials=KEYS) as running:
        yield running


def scenario(kind: str, endpoint: LocalEndpoint, name: str, body: Any, **fields: Any) -> Any:
    """Run ``body(stream)`` on a stream to ``name`` opened by a ``kind`` client; its result."""

    async def run() -> Any:
        settings = {"region": "us-east-1", "credentials": KEYS, "http2_endpoint_url": endpoint.http2_url, **fields}
        async with open_client(kind, **settings) as client, open_stream(client, endpoint_name=name) as stream:
            return await body(stream)

    return asyncio.run(asyncio.wait_for(run(), 60))


@pytest.mark.parametrize("kind", KINDS)
def test_both_directions_interleave(kind: str, endpoint: LocalEndpoint) -> None:
    async def body(stream: Stream) -> list[bytes]:
        got = []
        for index in range(20):
            await stream.send(b"turn %d" % index, data_type="BINARY")
            part = await stream.next()
            assert part is not None and part.data_type == "BINARY"
            got.append(part.bytes)
        await stream.end_input()
        assert await stream.parts() == []
        assert stream.invoked_production_variant == "AllTraffic"
        return got

    assert scenario(kind, endpoint, "echo", body) == [b"turn %d" % index for index in range(20)]


@pytest.mark.parametrize("kind", KINDS)
def test_everything_sent_before_the_first_reply_is_answered(kind: str, endpoint: LocalEndpoint) -> None:
    async def body(stream: Stream) -> list[bytes]:
        for word in ("one", "two", "three", "four"):
            await stream.send(word)
        await stream.end_input()
        return [part.bytes for part in await stream.parts()]

    assert scenario(kind, endpoint, "echo", body) == [b"one", b"two", b"three", b"four"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_model_may_speak_first_and_answer_several_times_per_input(kind: str, endpoint: LocalEndpoint) -> None:
    async def greeted(stream: Stream) -> list[bytes]:
        first = await stream.next()  # before anything was sent
        await stream.send("Ada")
        await stream.end_input()
        return [first.bytes if first else b"", *(part.bytes for part in await stream.parts())]

    assert scenario(kind, endpoint, "greeter", greeted) == [b"hello, who is there?", b"nice to meet you, Ada"]

    async def chatty(stream: Stream) -> list[tuple[bytes, str | None]]:
        await stream.send("a")
        await stream.send("b")
        await stream.end_input()
        return [(part.bytes, part.completion_state) for part in await stream.parts()]

    assert scenario(kind, endpoint, "chatty", chatty) == [
        (b"a#0", "PARTIAL"), (b"a#1", "PARTIAL"), (b"a#2", "COMPLETE"),
        (b"b#0", "PARTIAL"), (b"b#1", "PARTIAL"), (b"b#2", "COMPLETE"),
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_turns_are_answered_word_by_word(kind: str, endpoint: LocalEndpoint) -> None:
    async def body(stream: Stream) -> list[bytes]:
        await stream.send("the quick ", completion_state="PARTIAL")
        await stream.send("brown fox", completion_state="COMPLETE")
        await stream.end_input()
        return [part.bytes for part in await stream.parts()]

    assert b"".join(scenario(kind, endpoint, "turns", body)).split() == [b"the", b"quick", b"brown", b"fox"]


@pytest.mark.parametrize("kind", KINDS)
def test_large_events_exhaust_the_windows_and_arrive_whole(kind: str, endpoint: LocalEndpoint) -> None:
    # 16 events of 1 MiB each way: far past every HTTP/2 flow-control window, so both sides
    # wait for WINDOW_UPDATEs while the other reads.
    events = [hashlib.sha256(b"%d" % index).digest() * (1 << 15) for index in range(16)]

    async def body(stream: Stream) -> list[str]:
        async def send_all() -> None:
            for event in events:
                await stream.send(event)
            await stream.end_input()

        sender = asyncio.ensure_future(send_all())
        parts = await stream.parts()
        await sender
        return [hashlib.sha256(part.bytes).hexdigest() for part in parts]

    assert scenario(kind, endpoint, "echo", body) == [hashlib.sha256(event).hexdigest() for event in events]


@pytest.mark.parametrize("kind", KINDS)
def test_the_server_cutting_the_stream_is_an_error_after_the_parts_before_it(kind: str, endpoint: LocalEndpoint) -> None:
    endpoint.faults("echo").break_stream_after(2)

    async def body(stream: Stream) -> list[bytes]:
        got = []
        for word in (b"a", b"b", b"c"):
            await stream.send(word)
        with pytest.raises((TruncatedStreamError, errors.ConnectionClosedError)):
            while (part := await stream.next()) is not None:
                got.append(part.bytes)
        return got

    assert scenario(kind, endpoint, "echo", body) == [b"a", b"b"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_stream_ends_when_the_model_is_done_though_the_caller_still_sends(kind: str, endpoint: LocalEndpoint) -> None:
    async def body(stream: Stream) -> list[bytes]:
        await stream.send("are you there?")
        return [part.bytes for part in await stream.parts()]

    assert scenario(kind, endpoint, "done", body) == [b"done already"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_client_cancelling_leaves_the_connection_usable(kind: str, endpoint: LocalEndpoint) -> None:
    async def body(stream: Stream) -> None:
        await stream.send("first")
        part = await stream.next()
        assert part is not None
        # leaving now, input not ended: the stream is reset

    async def run() -> list[bytes]:
        settings = {"region": "us-east-1", "credentials": KEYS, "http2_endpoint_url": endpoint.http2_url}
        async with open_client(kind, **settings) as client:
            for _ in range(3):
                async with open_stream(client, endpoint_name="echo") as stream:
                    await body(stream)
            async with open_stream(client, endpoint_name="echo") as stream:
                await stream.send("after the cancels")
                await stream.end_input()
                return [part.bytes for part in await stream.parts()]

    assert asyncio.run(asyncio.wait_for(run(), 60)) == [b"after the cancels"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_model_failing_mid_stream_raises_model_stream_error(kind: str, endpoint: LocalEndpoint) -> None:
    async def body(stream: Stream) -> bytes:
        await stream.send(b"fine")
        await stream.send(b"boom")
        part = await stream.next()
        assert part is not None
        with pytest.raises(errors.ModelStreamError) as raised:
            await stream.next()
        assert raised.value.error_code == "StreamBroken"
        return part.bytes

    assert scenario(kind, endpoint, "failing", body) == b"fine"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("status", "error_type"),
    [(503, errors.ServiceUnavailable), (500, errors.InternalFailure), (424, errors.ModelError), (400, errors.APIError)],
)
def test_a_scheduled_http_error_raises_as_for_the_other_operations(
    kind: str, endpoint: LocalEndpoint, status: int, error_type: type[errors.APIError]
) -> None:
    endpoint.faults("echo").fail_next(1, status=status)

    async def body(stream: Stream) -> errors.APIError:
        with pytest.raises(error_type) as raised:
            await stream.wait_for_response()
        return raised.value

    error = scenario(kind, endpoint, "echo", body, max_attempts=1)  # a 503 before any event is retried
    assert error.http_status == status and error.request_id
    assert error.operation == "InvokeEndpointWithBidirectionalStream"


@pytest.mark.parametrize("kind", KINDS)
def test_a_503_before_any_event_is_retried_by_the_retry_policy(kind: str, endpoint: LocalEndpoint) -> None:
    endpoint.faults("echo").fail_next(1, status=503)

    async def body(stream: Stream) -> list[bytes]:
        await stream.wait_for_response()
        await stream.send("after the retry")
        await stream.end_input()
        return [part.bytes for part in await stream.parts()]

    assert scenario(kind, endpoint, "echo", body, retryer=StandardRetryer(random=lambda: 0.0)) == [b"after the retry"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_delayed_stream_still_answers(kind: str, endpoint: LocalEndpoint) -> None:
    endpoint.faults("echo").delay_next(0.05)

    async def body(stream: Stream) -> list[bytes]:
        await stream.send("late")
        await stream.end_input()
        return [part.bytes for part in await stream.parts()]

    assert scenario(kind, endpoint, "echo", body) == [b"late"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_reset_connection_fails_the_stream_with_a_transport_error(kind: str, endpoint: LocalEndpoint) -> None:
    endpoint.faults("echo").reset_next(1)

    async def body(stream: Stream) -> None:
        with pytest.raises(errors.TransportError) as raised:
            await stream.wait_for_response()
        assert raised.value.operation == "InvokeEndpointWithBidirectionalStream"

    scenario(kind, endpoint, "echo", body)


@pytest.mark.parametrize("kind", KINDS)
def test_the_http1_url_by_mistake_says_the_stream_needs_the_http2_one(kind: str, endpoint: LocalEndpoint) -> None:
    async def run() -> None:
        settings = {"region": "us-east-1", "credentials": KEYS, "http2_endpoint_url": endpoint.url,
                    "retryer": StandardRetryer(random=lambda: 0.0)}
        async with open_client(kind, **settings) as client:
            with pytest.raises(errors.SageMakerRuntimeError) as raised:
                async with open_stream(client, endpoint_name="echo") as stream:
                    await stream.wait_for_response()
            error = raised.value.__cause__ or raised.value
            assert isinstance(error, errors.ConnectionClosedError)
            assert "is this an HTTP/1.1 endpoint? The bidirectional stream needs the HTTP/2 one" in str(error)

    asyncio.run(asyncio.wait_for(run(), 60))


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_connection_is_retried_then_reported(kind: str) -> None:
    import socket

    with socket.socket() as placeholder:  # a port nothing listens on
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]

    async def run() -> None:
        settings = {"region": "us-east-1", "credentials": KEYS, "http2_endpoint_url": f"http://127.0.0.1:{port}",
                    "retryer": StandardRetryer(random=lambda: 0.0)}
        async with open_client(kind, **settings) as client:
            with pytest.raises(errors.MaxAttemptsExceededError) as raised:
                async with open_stream(client, endpoint_name="echo"):
                    pass
            assert isinstance(raised.value.__cause__, errors.ConnectError)
            assert raised.value.attempts == 3

    asyncio.run(asyncio.wait_for(run(), 60))


def test_wrong_keys_are_refused_by_the_local_endpoint(endpoint: LocalEndpoint) -> None:
    async def run() -> None:
        async with open_client("AsyncClient", region="us-east-1", credentials=("AKIDEXAMPLE", "not-the-secret"),
                               http2_endpoint_url=endpoint.http2_url) as client, open_stream(
            client, endpoint_name="echo"
        ) as stream:
            with pytest.raises(errors.APIError) as raised:
                await stream.wait_for_response()
            assert raised.value.http_status == 403

    asyncio.run(asyncio.wait_for(run(), 60))


def test_the_demo_shows_turns_on_one_stream() -> None:
    import io

    from smruntime.demo import run

    out = io.StringIO()
    assert run(out) == 0
    text = out.getvalue()
    assert "== InvokeEndpointWithBidirectionalStream: turns on one HTTP/2 stream ==" in text
    assert "sent      'hello over HTTP/2'" in text
    assert "received  ' chained' (COMPLETE)" in text  # read the way it was sent


@pytest.mark.parametrize("kind", KINDS)
def test_a_model_silent_past_the_read_timeout_stalls_the_stream(kind: str, endpoint: LocalEndpoint) -> None:
    async def body(stream: Stream) -> None:
        await stream.send("hello")  # the model answers only once the input ends
        with pytest.raises(TruncatedStreamError, match="stalled") as raised:
            await stream.next()
        assert raised.value.timeout

    scenario(kind, endpoint, "silent", body, read_timeout=0.3)


def _refusing_server_run(kind: str, server: Any, body: Any, **retryer: Any) -> None:
    async def run() -> None:
        settings = {"region": "us-east-1", "credentials": KEYS, "http2_endpoint_url": server.url,
                    "retryer": StandardRetryer(random=lambda: 0.0, **retryer)}
        async with open_client(kind, **settings) as client:
            await body(client)

    asyncio.run(asyncio.wait_for(run(), 60))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("refusal", ["refuse_next", "unavailable_next"])
def test_a_stream_refused_before_any_event_is_opened_again(kind: str, refusal: str) -> None:
    from tests.http2_servers import RawH2Server

    with RawH2Server() as server:
        setattr(server, refusal, 2)  # REFUSED_STREAM, or a 503 answer, twice: the third attempt is answered

        async def body(client: Any) -> None:
            async with open_stream(client, endpoint_name="echo") as stream:
                await stream.wait_for_response()  # nothing sent yet: the refusals are retried
                await stream.send(b"hello")
                await stream.end_input()
                server.wait_for(lambda: len(server.streams) == 3 and server.streams[2].ended)
                assert stream.metadata.attempts == 3

        _refusing_server_run(kind, server, body)
        assert [s.received for s in server.streams[:2]] == [b"", b""]
        assert b"hello" in server.streams[2].received  # the event went on the stream that was answered
        # One call to the service: one invocation id, the attempts numbered on.
        sent = [dict(s.headers) for s in server.streams]
        assert [h["amz-sdk-request"] for h in sent] == ["attempt=1; max=3", "attempt=2; max=3", "attempt=3; max=3"]
        assert len({h["amz-sdk-invocation-id"] for h in sent}) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_refusals_past_the_retry_policys_attempts_are_raised(kind: str) -> None:
    from tests.http2_servers import RawH2Server

    with RawH2Server() as server:
        server.refuse_next = 5

        async def body(client: Any) -> None:
            async with open_stream(client, endpoint_name="echo") as stream:
                with pytest.raises(errors.ConnectionClosedError) as raised:
                    await stream.wait_for_response()
                assert raised.value.request_sent is False

        _refusing_server_run(kind, server, body, max_attempts=2)
        assert len(server.streams) == 2



def test_a_forked_child_streams_on_a_loop_and_connection_of_its_own(endpoint: LocalEndpoint) -> None:
    # The blocking client's event loop is the parent's epoll set after a fork, and its HTTP/2
    # connection the parent's socket: a child must make its own of both, and leave the parent's be.
    import os

    from smruntime import Client

    def echo(client: Client, text: str) -> list[bytes]:
        with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as stream:
            stream.send(text)
            stream.end_input()
            return [part.bytes for part in stream]

    with Client(region="us-east-1", credentials=KEYS, http2_endpoint_url=endpoint.http2_url) as client:
        assert echo(client, "parent") == [b"parent"]
        parents = client.options.http2_client
        pid = os.fork()
        if pid == 0:  # the child: its own stream, then out, past pytest
            code = 2  # the stream failed
            try:
                code = 0 if echo(client, "child") == [b"child"] and client.options.http2_client is not parents else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert echo(client, "parent again") == [b"parent again"]
        assert client.options.http2_client is parents  # the parent's connection served it
