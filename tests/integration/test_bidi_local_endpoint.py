"""InvokeEndpointWithBidirectionalStream on the local endpoint, over real HTTP/2 sockets.

A raw h2 client (``h2_raw_client``) signs the request and every event like the SDKs do; the
local endpoint on ephemeral loopback ports serves built-in and ``module:function`` models.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import h2.settings
import pytest

from smruntime import AsyncClient
from smruntime.auth import payload_sha256
from smruntime.eventstream import Message, encode_message
from smruntime.local import EndpointConfig, LocalConfig, LocalEndpoint, ServerLimits, TLSFiles, VariantConfig
from smruntime.transport import H2HTTPClient
from tests.integration.h2_raw_client import CREDENTIALS, ConnectionGone, RawBidiStream, inner_part, path_of

MODELS = "tests.integration.bidi_test_models"


def _config() -> LocalConfig:
    return LocalConfig(endpoints=(
        EndpointConfig.serving("echo", "echo"),
        EndpointConfig.serving("turns", "turns"),
        EndpointConfig.serving("sum", "sum"),
        EndpointConfig.serving("shout", f"{MODELS}:shout"),
        EndpointConfig.serving("greeter", f"{MODELS}:greet_first"),
        EndpointConfig.serving("chatty", f"{MODELS}:chatty"),
        EndpointConfig.serving("mixed", f"{MODELS}:big_then_small"),
        EndpointConfig.serving("firehose", f"{MODELS}:firehose"),
        EndpointConfig.serving("pieces", f"{MODELS}:pieces"),
        EndpointConfig.serving("failing", f"{MODELS}:fail_on_boom"),
        EndpointConfig.serving("done", f"{MODELS}:one_answer"),
        EndpointConfig.serving("deaf", f"{MODELS}:deaf"),
        EndpointConfig(name="ab", variants=(VariantConfig(name="a", model=f"{MODELS}:describe"),
                                            VariantConfig(name="b", model=f"{MODELS}:describe"))),
    ))


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    with LocalEndpoint(_config(), credentials=CREDENTIALS) as running:
        yield running


def run(endpoint: LocalEndpoint, scenario: Callable[[int], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(scenario(endpoint.http2_port), 30))


def texts(messages: list[Message]) -> list[str]:
    return [message.payload.decode() for message in messages]


def test_the_http2_url_is_a_second_port(endpoint: LocalEndpoint) -> None:
    assert endpoint.http2_url == f"http://127.0.0.1:{endpoint.http2_port}"
    assert endpoint.http2_port != endpoint.port


def test_echo_answers_each_part_as_it_arrives(endpoint: LocalEndpoint) -> None:
    async def scenario(port: int) -> None:
        async with await RawBidiStream.open(port, "echo") as stream:
            assert await stream.response() == 200
            assert stream.headers["content-type"] == "application/vnd.amazon.eventstream"
            assert stream.headers["x-amzn-invoked-production-variant"] == "AllTraffic"
            assert stream.headers["x-amzn-requestid"]
            for index in range(5):
                # Each answer arrives while the input is still open.
                await stream.send_part(f"part {index}".encode(), data_type="UTF8", completion_state="PARTIAL",
                                       p="xx")
                answer = await stream.next_message()
                assert answer is not None and answer.payload == f"part {index}".encode()
                assert answer.message_type == "event" and answer.event_type == "PayloadPart"
                assert answer.content_type == "application/octet-stream"
                assert answer.headers["DataType"] == "UTF8"
                assert answer.headers["CompletionState"] == "PARTIAL"
                assert answer.headers["P"] == "xx"
            await stream.send_part(b"\x00\x01")
            plain = await stream.next_message()
            assert plain is not None and plain.payload == b"\x00\x01"
            # Missing headers take the defaults.
            assert (plain.headers["DataType"], plain.headers["CompletionState"]) == ("BINARY", "COMPLETE")
            await stream.end_input()
            assert await stream.read_all() == []

    run(endpoint, scenario)


def test_parts_sent_before_any_reply_are_all_answered(endpoint: LocalEndpoint) -> None:
    async def scenario(port: int) -> list[str]:
        async with await RawBidiStream.open(port, "shout") as stream:
            for word in (b"one", b"two", b"three"):
                await stream.send_part(word)
            await stream.end_input()
            assert await stream.response() == 200
            return texts(await stream.read_all())

    assert run(endpoint, scenario) == ["ONE", "TWO", "THREE"]


def test_a_model_may_speak_before_it_has_read_anything(endpoint: LocalEndpoint) -> None:
    async def scenario(port: int) -> list[str]:
        async with await RawBidiStream.open(port, "greeter") as stream:
            greeting = await stream.next_message()  # nothing sent yet
            assert greeting is not None
            await stream.send_part(b"Ada", data_type="UTF8")
            answer = await stream.next_message()
            assert answer is not None
            await stream.end_input()
            assert await stream.read_all() == []
            return texts([greeting, answer])

    assert run(endpoint, scenario) == ["hello, who is there?", "nice to meet you, Ada"]


def test_turns_are_answered_once_complete_word_by_word(endpoint: LocalEndpoint) -> None:
    async def scenario(port: int) -> list[tuple[str, str, str]]:
        async with await RawBidiStream.open(port, "turns") as stream:
            await stream.send_part(b"hello big ", data_type="UTF8", completion_state="PARTIAL")
            await stream.send_part(b"world", data_type="UTF8", completion_state="COMPLETE")
            first_turn = [await stream.next_message() for _ in range(3)]
            await stream.send_part(b"again", data_type="UTF8")  # CompletionState left out: COMPLETE
            second = await stream.next_message()
            await stream.end_input()
            assert await stream.read_all() == []
            found = [*first_turn, second]
            return [(m.payload.decode(), str(m.headers["CompletionState"]), str(m.headers["DataType"]))
                    for m in found if m is not None]

    assert run(endpoint, scenario) == [
        ("hello", "PARTIAL", "UTF8"), (" big", "PARTIAL", "UTF8"), (" world", "COMPLETE", "UTF8"),
        ("again", "COMPLETE", "UTF8"),
    ]


def test_a_request_response_model_takes_turns(endpoint: LocalEndpoint) -> None:
    async def scenario(port: int) -> list[dict[str, Any]]:
        async with await RawBidiStream.open(port, "sum") as stream:
            await stream.send_part(b'{"numbers": [1, ', completion_state="PARTIAL")
            await stream.send_part(b'2]}')
            await stream.send_part(b'{"numbers": [5]}')
            await stream.end_input()
            return [json.loads(m.payload) for m in await stream.read_all()]

    answers = run(endpoint, scenario)
    assert [(a["sum"], a["count"]) for a in answers] == [(3, 2), (5, 1)]


def test_a_model_may_answer_several_times_per_part(endpoint: LocalEndpoint) -> None:
    async def scenario(port: int) -> list[tuple[str, str]]:
        async with await RawBidiStream.open(port, "chatty") as stream:
            await stream.send_part(b"a")
            first = [await stream.next_message() for _ in range(3)]
            await stream.send_part(b"b")
            await stream.end_input()
            found = [*first, *await stream.read_all()]
            return [(m.payload.decode(), str(m.headers["CompletionState"])) for m in found if m is not None]

    assert run(endpoint, scenario) == [("a#0", "PARTIAL"), ("a#1", "PARTIAL"), ("a#2", "COMPLETE"),
                                       ("b#0", "PARTIAL"), ("b#1", "PARTIAL"), ("b#2", "COMPLETE")]


def test_the_model_sees_the_stream_headers_and_the_chosen_variant(endpoint: LocalEndpoint) -> None:
    headers = [("X-Amzn-SageMaker-Target-Variant", "b"),
               ("X-Amzn-SageMaker-Model-Invocation-Path", "v1/listen"),
               ("X-Amzn-SageMaker-Model-Query-String", "model=nova-3&lang=en")]

    async def scenario(port: int) -> tuple[str, list[str]]:
        async with await RawBidiStream.open(port, "ab", headers=headers) as stream:
            await stream.send_part(b"x")
            await stream.send_part(b"y")
            await stream.end_input()
            await stream.response()
            return stream.headers["x-amzn-invoked-production-variant"], texts(await stream.read_all())

    variant, (described, count) = run(endpoint, scenario)
    assert variant == "b"
    assert json.loads(described) == {"endpoint_name": "ab", "variant_name": "b", "target_variant": "b",
                                     "model_invocation_path": "v1/listen",
                                     "model_query_string": "model=nova-3&lang=en"}
    assert count == "read 2 parts"


@pytest.mark.parametrize(("header", "value", "member"), [
    ("X-Amzn-SageMaker-Model-Invocation-Path", "/leading/slash", "modelInvocationPath"),
    ("X-Amzn-SageMaker-Model-Query-String", "no-equals-sign", "modelQueryString"),
    ("X-Amzn-SageMaker-Target-Variant", "bad_variant!", "targetVariant"),
])
def test_invalid_stream_headers_are_a_validation_error(endpoint: LocalEndpoint, header: str, value: str,
                                                      member: str) -> None:
    async def scenario(port: int) -> tuple[int, str, dict[str, Any]]:
        async with await RawBidiStream.open(port, "echo", headers=[(header, value)]) as stream:
            status = await stream.response()
            await stream.read_all()
            return status, stream.headers["x-amzn-errortype"], json.loads(stream.body)

    status, code, body = run(endpoint, scenario)
    assert (status, code) == (400, "ValidationError")
    assert f"at '{member}' failed to satisfy constraint" in body["Message"]


def test_an_unknown_endpoint_is_a_validation_error(endpoint: LocalEndpoint) -> None:
    async def scenario(port: int) -> tuple[int, str, dict[str, Any]]:
        async with await RawBidiStream.open(port, "nope") as stream:
            status = await stream.response()
            await stream.read_all()
            return status, stream.headers["x-amzn-errortype"], json.loads(stream.body)

    assert run(endpoint, scenario) == (400, "ValidationError",
                                       {"Message": "Endpoint nope of account 123456789012 not found."})


def test_the_stream_ends_when_the_model_is_done_even_while_the_caller_sends(endpoint: LocalEndpoint) -> None:
    async def scenario(port: int) -> list[str]:
        async with await RawBidiStream.open(port, "done") as stream:
            answers = texts(await stream.read_all())
            # Late parts are dropped, and the connection stays up for the caller to finish.
            await stream.send_part(b"still talking")
            await stream.end_input()
            return answers

    assert run(endpoint, scenario) == ["done already"]
    assert run(endpoint, _echo_once) == "ok"


async def _echo_once(port: int) -> str:
    async with await RawBidiStream.open(port, "echo") as stream:
        await stream.send_part(b"ok")
        await stream.end_input()
        return texts(await stream.read_all())[0]


def test_a_request_signed_with_the_empty_body_hash_is_accepted(endpoint: LocalEndpoint) -> None:
    # The Rust SDK signs the opening request with the empty body's hash and no X-Amz-Content-SHA256.
    async def scenario(port: int) -> list[str]:
        async with await RawBidiStream.open(port, "echo", payload_hash=payload_sha256(b"")) as stream:
            await stream.send_part(b"rust")
            await stream.end_input()
            return texts(await stream.read_all())

    assert run(endpoint, scenario) == ["rust"]


def test_with_verification_off_unsigned_frames_are_taken_as_they_are() -> None:
    config = LocalConfig(endpoints=(EndpointConfig.serving("echo", "echo"),), verify_signatures=False)
    with LocalEndpoint(config, credentials=CREDENTIALS) as lenient:
        async def scenario(port: int) -> list[str]:
            async with await RawBidiStream.open(port, "echo", credentials=None) as stream:
                await stream.send_raw(encode_message({":date": "unchecked"}, inner_part(b"unsigned")))
                await stream.send_raw(encode_message({}), end_stream=True)
                return texts(await stream.read_all())

        assert run(lenient, scenario) == ["unsigned"]


def test_without_a_config_the_default_endpoints_are_served() -> None:
    with LocalEndpoint(credentials=CREDENTIALS) as plain:
        assert run(plain, _echo_once) == "ok"


def test_with_a_certificate_it_serves_tls_with_alpn_h2(tmp_path: Any) -> None:
    import ssl

    import trustme

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.cert_chain_pems[0].write_to_path(certfile)
    for blob in certificate.cert_chain_pems[1:]:
        blob.write_to_path(certfile, append=True)
    certificate.private_key_pem.write_to_path(keyfile)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    client_context.set_alpn_protocols(["h2"])
    with LocalEndpoint(credentials=CREDENTIALS, http2_tls=TLSFiles(str(certfile), str(keyfile))) as secure:
        assert secure.http2_url == f"https://127.0.0.1:{secure.http2_port}"

        async def scenario(port: int) -> list[str]:
            async with await RawBidiStream.open(port, "echo", tls=client_context) as stream:
                await stream.send_part(b"over tls")
                await stream.end_input()
                return texts(await stream.read_all())

        assert run(secure, scenario) == ["over tls"]


def test_http1_on_the_http2_port_is_refused(endpoint: LocalEndpoint) -> None:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", endpoint.http2_port, timeout=10)
    try:
        connection.request("POST", path_of("echo"), body=b"")
        response = connection.getresponse()
        assert response.status == 400
        assert b"requires HTTP/2" in response.read()
    finally:
        connection.close()


def test_a_stream_with_nothing_moving_ends_after_the_idle_timeout() -> None:
    limits = ServerLimits(stream_idle_timeout=0.3)
    with LocalEndpoint(_config(), credentials=CREDENTIALS, limits=limits) as strict:
        async def scenario(port: int) -> list[Message]:
            async with await RawBidiStream.open(port, "echo") as stream:
                await stream.send_part(b"then silence")
                return await stream.read_all()

        answer, timeout = run(strict, scenario)
    assert answer.payload == b"then silence"
    assert (timeout.message_type, timeout.exception_type) == ("exception", "ModelStreamError")
    assert json.loads(timeout.payload)["ErrorCode"] == "StreamIdleTimeout"


# --- flow control ---------------------------------------------------------------------------

def test_large_events_both_ways_flow_through_the_windows(endpoint: LocalEndpoint) -> None:
    part = bytes(range(256)) * 256  # 64 KiB, past the default 64 KiB windows once framed

    async def scenario(port: int) -> tuple[int, bool]:
        async with await RawBidiStream.open(port, "echo") as stream:
            for _ in range(48):  # 3 MiB sent before anything is read
                await stream.send_part(part)
            await stream.end_input()
            answers = await stream.read_all()
            return len(answers), all(answer.payload == part for answer in answers)

    assert run(endpoint, scenario) == (48, True)


def test_answers_too_large_to_send_at_once_keep_their_place_among_short_ones(endpoint: LocalEndpoint) -> None:
    # A short answer is written at once only while nothing of the stream waits in hypercorn's
    # send buffer; a large one (past one frame, or the window the unread answers use up) waits there.
    words = [f"w{index}" for index in range(12)]

    async def scenario(port: int) -> list[bytes]:
        async with await RawBidiStream.open(port, "mixed") as stream:
            for word in words:
                await stream.send_part(word.encode())
            await stream.end_input()
            return [message.payload for message in await stream.read_all()]

    expected = []
    for word in words:
        expected.append(b"w" * 100_000)
        expected += [f"{word}.{index}".encode() for index in range(10)]
    assert run(endpoint, scenario) == expected


def test_streams_sharing_a_connection_each_get_their_answers_whole_and_in_order(endpoint: LocalEndpoint) -> None:
    # Twenty streams multiplexed on one connection with 64 KiB windows: the connection's writer
    # is often busy and windows run out, so short answers go now directly, now through hypercorn.
    async def one(client: AsyncClient, index: int) -> bool:
        words = [f"s{index}w{turn}" for turn in range(3)]
        async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="mixed") as stream:
            for word in words:
                await stream.send(word)
            await stream.end_input()
            got = [part.bytes async for part in stream]
        expected = []
        for word in words:
            expected.append(word[:1].encode() * 100_000)
            expected += [f"{word}.{short}".encode() for short in range(10)]
        return got == expected

    async def scenario(port: int) -> list[bool]:
        async with H2HTTPClient(multiplex=True, stream_window=65535, connection_window=1 << 20) as http, \
                AsyncClient(region="us-east-1", credentials=CREDENTIALS, http2_endpoint_url=f"http://127.0.0.1:{port}",
                            http2_client=http) as client:
            return await asyncio.gather(*(one(client, index) for index in range(20)))

    assert run(endpoint, scenario) == [True] * 20


def test_a_model_answering_in_a_tight_loop_lets_go_once_its_stream_is_reset() -> None:
    # Sending an answer need not suspend the model's task (a reset stream's answers are dropped
    # at once): without a pause now and then, such a model held the listener for ever.
    with LocalEndpoint(_config(), credentials=CREDENTIALS) as own:
        async def scenario(port: int) -> str:
            async with await RawBidiStream.open(port, "firehose") as hose:
                await hose.send_part(b"go")
                for _ in range(100):
                    assert await hose.next_message() is not None
                await hose.reset()
                return await _echo_once(port)

        assert run(own, scenario) == "ok"


def test_resets_while_the_connection_is_backed_up_leave_its_send_window_whole() -> None:
    # h2 counts a frame against the connection's send window once it is queued. A frame queued
    # and then dropped with its stream's cancelled task (reset while the write waited for the
    # connection) would shrink the window for good, until the connection could send nothing.
    with LocalEndpoint(_config(), credentials=CREDENTIALS) as own:
        async def scenario(port: int) -> int:
            first = await RawBidiStream.open(port, "echo", receive_buffer=4096)
            try:
                conn = first.conn
                # Wide windows: TCP, not flow control, holds the server back.
                conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
                conn.increment_flow_control_window(16 * 1024 * 1024 - conn.inbound_flow_control_window)
                await first._flush()
                for _ in range(2):
                    busy = [await first.open_another("pieces") for _ in range(10)]
                    for stream in busy:
                        await stream.send_part(b"100000:16000")
                    await asyncio.sleep(0.05)
                    await first.pause_reading()
                    await asyncio.sleep(1.0)  # the server's writes back up
                    for stream in busy:
                        await stream.reset()
                    await asyncio.sleep(0.3)
                    first.resume_reading()
                    await asyncio.sleep(0.7)
                # The server may now send all the window the client has open: ask for nearly that,
                # acknowledging nothing, and it must all arrive.
                checker = await first.open_another("pieces")
                checker.acknowledging = False
                count = (conn.inbound_flow_control_window - 64 * 1024) // 16_200  # 16,000 B and the framing
                await checker.send_part(f"{count}:16000".encode())
                for _ in range(count):
                    assert await checker.next_message() is not None
                return count
            finally:
                await first.close()

        assert run(own, scenario) > 400  # over 6 MiB asked for: more than a few frames lost would show


def test_a_model_that_does_not_read_holds_the_caller_back(endpoint: LocalEndpoint) -> None:
    part = b"x" * 65536

    async def scenario(port: int) -> int:
        async with await RawBidiStream.open(port, "deaf") as stream:
            assert await stream.next_message() is not None  # "listening"
            sent = 0
            while sent < 64 * 1024 * 1024:
                try:
                    await asyncio.wait_for(stream.send_part(part), 1.0)
                except TimeoutError:
                    return sent  # the windows ran out: flow control holds it back
                sent += len(part)
            return sent

    sent = run(endpoint, scenario)
    assert 1024 * 1024 <= sent < 4 * 1024 * 1024
    assert run(endpoint, _echo_once) == "ok"


# --- faults ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "code"), [(503, "ServiceUnavailable"), (500, "InternalFailure"),
                                              (424, "ModelError"), (400, "ThrottlingException")])
def test_a_scheduled_error_is_answered_before_the_stream_starts(endpoint: LocalEndpoint, status: int,
                                                                code: str) -> None:
    endpoint.faults("echo").fail_next(1, status=status)
    runs = endpoint.counters("echo").model_runs

    async def scenario(port: int) -> tuple[int, str]:
        async with await RawBidiStream.open(port, "echo") as stream:
            await stream.send_part(b"never answered")
            answered = await stream.response()
            await stream.read_all()
            return answered, stream.headers["x-amzn-errortype"]

    assert run(endpoint, scenario) == (status, code)
    assert endpoint.counters("echo").model_runs == runs
    assert run(endpoint, _echo_once) == "ok"


def test_a_delayed_stream_still_answers(endpoint: LocalEndpoint) -> None:
    endpoint.faults("echo").delay_next(0.05)
    assert run(endpoint, _echo_once) == "ok"
    assert endpoint.faults("echo").pending["delays"] == []


@pytest.mark.parametrize(("parts", "through_receive"), [(3, False), (40, True)])
def test_parts_sent_while_the_stream_opens_are_answered_in_order(
    endpoint: LocalEndpoint, caplog: pytest.LogCaptureFixture, parts: int, through_receive: bool
) -> None:
    # While the stream waits (a delay fault), the server queues what arrives. A few messages are
    # then handed over with the rest as they are read; past the queue's room (hypercorn holds
    # ten), the stream reads its input through receive() instead. Either way, nothing is lost.
    async def scenario(port: int) -> list[str]:
        async with await RawBidiStream.open(port, "echo") as stream:
            for index in range(parts):
                await stream.send_part(f"{index}".encode())
            await stream.end_input()
            return texts(await stream.read_all())

    endpoint.faults("echo").delay_next(0.3)
    with caplog.at_level(logging.DEBUG, logger="smruntime.local"):
        assert run(endpoint, scenario) == [f"{index}" for index in range(parts)]
    read_through_receive = any("reads its input through receive()" in r.getMessage() for r in caplog.records)
    assert read_through_receive is through_receive


def test_a_reset_fault_drops_the_connection(endpoint: LocalEndpoint) -> None:
    endpoint.faults("echo").reset_next(1)

    async def scenario(port: int) -> None:
        async with await RawBidiStream.open(port, "echo") as stream:
            with pytest.raises(ConnectionGone):
                await stream.response()

    run(endpoint, scenario)
    assert run(endpoint, _echo_once) == "ok"


@pytest.mark.parametrize("count", [0, 2])
def test_a_broken_stream_fault_cuts_the_connection_after_n_parts(endpoint: LocalEndpoint, count: int) -> None:
    endpoint.faults("echo").break_stream_after(count)

    async def scenario(port: int) -> list[bytes]:
        received = []
        async with await RawBidiStream.open(port, "echo") as stream:
            for word in (b"a", b"b", b"c"):
                await stream.send_part(word)
            with pytest.raises(ConnectionGone):
                while (message := await stream.next_message()) is not None:
                    received.append(message.payload)
        return received

    assert run(endpoint, scenario) == [b"a", b"b"][:count]
    assert run(endpoint, _echo_once) == "ok"


async def _send_without_ending(port: int, endpoint: str, *parts: bytes) -> list[Message]:
    """What the stream answers to ``parts``, when it ends without the caller ending its input."""
    async with await RawBidiStream.open(port, endpoint) as stream:
        for part in parts:
            await stream.send_part(part)
        return await stream.read_all()


def test_a_model_failing_mid_stream_ends_it_with_a_model_stream_error(endpoint: LocalEndpoint) -> None:
    fine, error = run(endpoint, lambda port: _send_without_ending(port, "failing", b"fine", b"boom"))
    assert fine.payload == b"fine"
    assert (error.message_type, error.exception_type) == ("exception", "ModelStreamError")
    document = json.loads(error.payload)
    assert document["ErrorCode"] == "StreamBroken"
    assert "the model fell over" in document["Message"]


def test_an_injected_stream_failure_ends_the_stream_with_an_internal_stream_failure(endpoint: LocalEndpoint) -> None:
    endpoint.faults("echo").fail_stream_after(1)

    answer, failure = run(endpoint, lambda port: _send_without_ending(port, "echo", b"a", b"b"))
    assert answer.payload == b"a"
    assert (failure.message_type, failure.exception_type) == ("exception", "InternalStreamFailure")
    assert "injected fault" in json.loads(failure.payload)["Message"]
    assert run(endpoint, _echo_once) == "ok"


# --- smruntime serve ------------------------------------------------------------------------

def test_serve_prints_the_http2_url_serves_it_and_stops_both_on_ctrl_c(tmp_path: Any) -> None:
    import os
    import signal
    import subprocess
    import sys

    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=CREDENTIALS[0], AWS_SECRET_ACCESS_KEY=CREDENTIALS[1],
               AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(tmp_path / "config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"))
    process = subprocess.Popen([sys.executable, "-m", "smruntime", "serve", "--port", "0"],
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    try:
        assert process.stderr is not None
        # The banner, the example pair's export hint, the endpoints' export line, the HTTP/2 URL.
        lines = [process.stderr.readline() for _ in range(6)]
        banner_url = lines[0].split(" on ", 1)[1].split(" ", 1)[0]
        exported = dict(pair.split("=", 1) for pair in lines[4].split("export ", 1)[1].split())
        assert exported["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] == banner_url
        url = exported["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2"]
        assert lines[5].strip() == f"InvokeEndpointWithBidirectionalStream (HTTP/2) on {url}"
        port = int(url.rsplit(":", 1)[1])
        assert asyncio.run(asyncio.wait_for(_echo_once(port), 30)) == "ok"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) in (0, 130)  # 130: the interrupt, passed on
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()



# --- several streams on one connection ------------------------------------------------------

def test_streams_sharing_a_connection_are_independent(endpoint: LocalEndpoint) -> None:
    async def scenario(port: int) -> tuple[list[str], list[str], int]:
        async with await RawBidiStream.open(port, "echo") as first:
            second = await first.open_another("shout")
            missing = await first.open_another("missing")
            for word in (b"a", b"b"):
                await first.send_part(word)
                await second.send_part(word)
            status = await missing.response()  # answered early, while its caller could still send
            await missing.send_part(b"late")
            await first.end_input()
            await second.end_input()
            return texts(await first.read_all()), texts(await second.read_all()), status

    assert run(endpoint, scenario) == (["a", "b"], ["A", "B"], 400)


def test_a_held_back_stream_does_not_stall_the_others_on_its_connection(endpoint: LocalEndpoint) -> None:
    part = b"x" * 65536

    async def scenario(port: int) -> list[str]:
        async with await RawBidiStream.open(port, "deaf") as deaf:
            assert await deaf.next_message() is not None
            while True:
                try:
                    await asyncio.wait_for(deaf.send_part(part), 1.0)
                except TimeoutError:
                    break  # held back
            other = await deaf.open_another("echo")
            await asyncio.wait_for(other.send_part(b"through"), 5.0)
            await other.end_input()
            return texts(await other.read_all())

    assert run(endpoint, scenario) == ["through"]
