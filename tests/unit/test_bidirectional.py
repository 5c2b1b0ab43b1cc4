"""InvokeEndpointWithBidirectionalStream above the transport seam, on both clients: the
stream's protocol (signed and chained events, the end frame, cancellation), its errors, its
stack and event steps, retries and endpoints. The transport is AsyncHTTP2MockClient, which
checks every event's chained signature as the service does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from smruntime import AsyncClient, Client, errors
from smruntime.auth import ANONYMOUS
from smruntime.eventstream import TruncatedStreamError, encode_message
from smruntime.http import HTTPRequest
from smruntime.middleware import MetadataKey, Position, StackError, Transform
from smruntime.middleware.events import event_middleware
from smruntime.options import Options, resolve_defaults
from smruntime.retry import StandardRetryer
from smruntime.transport import AsyncHTTP2MockClient
from smruntime.types import RequestPayloadPart, ResponsePayloadPart
from tests.bidi_support import KINDS, open_client, open_stream, run

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CREDENTIALS = ("AKIDEXAMPLE", SECRET)
OPERATION = "InvokeEndpointWithBidirectionalStream"


async def echo(request: HTTPRequest, events: AsyncIterator[RequestPayloadPart]) -> AsyncIterator[ResponsePayloadPart]:
    async for event in events:
        yield ResponsePayloadPart(event.bytes, event.data_type, event.completion_state)


def mock(model: Any = echo, **kwargs: Any) -> AsyncHTTP2MockClient:
    kwargs.setdefault("headers", {"x-amzn-invoked-production-variant": "AllTraffic", "x-amzn-RequestId": "req-1"})
    return AsyncHTTP2MockClient(model, secret_access_key=SECRET, **kwargs)


def fields(http2: Any, **more: Any) -> dict[str, Any]:
    return {"region": "us-east-1", "credentials": CREDENTIALS, "http2_client": http2, **more}


# -- the exchange -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_events_go_signed_and_chained_and_the_input_ends_with_the_signed_end_frame(kind: str) -> None:
    http2 = mock()

    async def exchange() -> list[ResponsePayloadPart]:
        async with open_client(kind, **fields(http2)) as client, open_stream(client, endpoint_name="ep") as stream:
            await stream.send(b"one", data_type="BINARY", completion_state="PARTIAL")
            await stream.send("two")
            await stream.end_input()
            parts = await stream.parts()
            assert stream.invoked_production_variant == "AllTraffic"
            assert stream.metadata.request_id == "req-1"
            assert stream.metadata.http_status == 200
            return parts

    parts = run(exchange())

    assert parts == [ResponsePayloadPart(b"one", "BINARY", "PARTIAL"), ResponsePayloadPart(b"two", "UTF8", None)]
    (opened,) = http2.streams
    assert opened.verify_error is None  # every frame's chained signature checked out
    assert opened.events == [RequestPayloadPart(b"one", "BINARY", "PARTIAL"), RequestPayloadPart(b"two", "UTF8")]
    assert opened.end_frame and opened.end_stream and not opened.reset
    assert len(opened.frames) == 3  # two events and the end frame
    request = opened.request
    assert request.url == "https://runtime.sagemaker.us-east-1.amazonaws.com:8443/endpoints/ep/invocations-bidirectional-stream"
    assert request.headers["x-amz-content-sha256"] == "STREAMING-AWS4-HMAC-SHA256-EVENTS"
    assert request.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert "x-amz-content-sha256" in request.headers["authorization"].split("SignedHeaders=")[1]


@pytest.mark.parametrize("kind", KINDS)
def test_the_inputs_travel_as_their_headers(kind: str) -> None:
    http2 = mock()

    async def exchange() -> None:
        async with open_client(kind, **fields(http2)) as client, open_stream(
            client, endpoint_name="ep", target_variant="v2", model_invocation_path="v1/listen",
            model_query_string="model=nova-3&x=%20",
        ) as stream:
            await stream.end_input()
            assert await stream.parts() == []

    run(exchange())

    headers = http2.streams[0].request.headers
    assert headers["x-amzn-sagemaker-target-variant"] == "v2"
    assert headers["x-amzn-sagemaker-model-invocation-path"] == "v1/listen"
    assert headers["x-amzn-sagemaker-model-query-string"] == "model=nova-3&x=%20"


@pytest.mark.parametrize("kind", KINDS)
def test_the_caller_sends_before_the_model_answers_and_reads_while_it_sends(kind: str) -> None:
    async def waits_for_two(request: HTTPRequest, events: AsyncIterator[RequestPayloadPart]) -> AsyncIterator[Any]:
        seen = []
        async for event in events:
            seen.append(event.bytes)
            if len(seen) % 2 == 0:  # answers every second input, three times
                for index in range(3):
                    yield ResponsePayloadPart(b"+".join(seen[-2:]) + b"#%d" % index)

    http2 = mock(waits_for_two)

    async def exchange() -> list[bytes]:
        got = []
        async with open_client(kind, **fields(http2)) as client, open_stream(client, endpoint_name="ep") as stream:
            await stream.send(b"a")
            await stream.send(b"b")  # the model has said nothing yet
            for _ in range(3):
                part = await stream.next()
                assert part is not None
                got.append(part.bytes)
            await stream.send(b"c")
            await stream.send(b"d")
            await stream.end_input()
            got.extend(part.bytes for part in await stream.parts())
        return got

    assert run(exchange()) == [b"a+b#0", b"a+b#1", b"a+b#2", b"c+d#0", b"c+d#1", b"c+d#2"]


@pytest.mark.parametrize("kind", KINDS)
def test_leaving_without_ending_the_input_cancels_the_stream(kind: str) -> None:
    http2 = mock()

    async def exchange() -> None:
        async with open_client(kind, **fields(http2)) as client, open_stream(client, endpoint_name="ep") as stream:
            await stream.send(b"x")
            part = await stream.next()
            assert part is not None and part.bytes == b"x"

    run(exchange())

    (opened,) = http2.streams
    assert opened.reset and not opened.end_frame and not opened.end_stream


def test_concurrent_sends_from_two_tasks_stay_in_signing_order() -> None:
    http2 = mock()

    async def exchange() -> list[bytes]:
        async with AsyncClient(**fields(http2)) as client, client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
            await asyncio.gather(*(stream.send(b"%d" % n) for n in range(50)))
            await stream.end_input()
            return [part.bytes async for part in stream]

    got = run(exchange())

    assert sorted(got, key=int) == [b"%d" % n for n in range(50)]
    assert http2.streams[0].verify_error is None  # the wire order is the signing order


@pytest.mark.parametrize("kind", KINDS)
def test_end_input_is_idempotent_and_a_send_after_it_is_refused(kind: str) -> None:
    http2 = mock()

    async def exchange() -> None:
        async with open_client(kind, **fields(http2)) as client, open_stream(client, endpoint_name="ep") as stream:
            await stream.end_input()
            await stream.end_input()
            with pytest.raises(errors.SageMakerRuntimeError, match="after end_input"):
                await stream.send(b"late")

    run(exchange())

    assert len(http2.streams[0].frames) == 1


def test_anonymous_calls_send_the_events_unsigned() -> None:
    http2 = AsyncHTTP2MockClient(echo)

    async def exchange() -> list[ResponsePayloadPart]:
        async with AsyncClient(region="us-east-1", credentials=ANONYMOUS, http2_client=http2) as client, client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
            await stream.send(b"plain")
            await stream.end_input()
            return [part async for part in stream]

    assert run(exchange()) == [ResponsePayloadPart(b"plain")]
    (opened,) = http2.streams
    assert "authorization" not in opened.request.headers
    assert opened.events == [RequestPayloadPart(b"plain")] and not opened.end_frame and opened.end_stream


# -- input checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs_are_refused_before_any_io(kind: str) -> None:
    http2 = mock()

    async def exchange() -> None:
        async with open_client(kind, **fields(http2)) as client:
            with pytest.raises(errors.InvalidParamsError) as found:
                async with open_stream(client, endpoint_name="bad name!", model_invocation_path="/leading"):
                    pass
            assert list(found.value.fields) == ["endpoint_name", "model_invocation_path"]

    run(exchange())

    assert http2.streams == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"data": 12}, "data"),
        ({"data": b"x", "data_type": "TEXT"}, "data_type"),
        ({"data": b"x", "completion_state": "DONE"}, "completion_state"),
        ({"data": b"x", "p": "p" * 40000}, "p"),
    ],
)
def test_a_bad_event_is_refused_before_it_is_sent(kind: str, arguments: dict[str, Any], field: str) -> None:
    http2 = mock()

    async def exchange() -> None:
        async with open_client(kind, **fields(http2)) as client, open_stream(client, endpoint_name="ep") as stream:
            given = dict(arguments)
            data = given.pop("data")
            with pytest.raises(errors.InvalidParamsError) as found:
                await stream.send(data, **given)
            assert list(found.value.fields) == [field]
            await stream.send(b"still fine")
            await stream.end_input()
            assert [part.bytes for part in await stream.parts()] == [b"still fine"]

    run(exchange())


def test_an_event_over_16_mib_is_refused() -> None:
    from smruntime.bidirectional import MAX_EVENT_BYTES, request_part

    with pytest.raises(errors.InvalidParamsError, match="at most 16777216 bytes"):
        request_part(b"x" * (MAX_EVENT_BYTES + 1), None, None, None, OPERATION)


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_an_http_error_raises_as_for_the_other_operations(kind: str) -> None:
    body = json.dumps({"Message": "container refused", "OriginalStatusCode": 500, "ErrorCode": "ModelError"}).encode()
    http2 = mock(status=424, headers={"x-amzn-errortype": "ModelError", "x-amzn-RequestId": "req-9"}, body=body)

    async def exchange() -> None:
        async with open_client(kind, **fields(http2)) as client, open_stream(client, endpoint_name="ep") as stream:
            with pytest.raises(errors.ModelError) as raised:
                await stream.wait_for_response()
            assert raised.value.http_status == 424 and raised.value.original_status_code == 500
            assert raised.value.request_id == "req-9" and raised.value.operation == OPERATION
            with pytest.raises(errors.ModelError):  # a send once the refusal is known
                await stream.send(b"x")
            with pytest.raises(errors.ModelError):
                await stream.next()

    run(exchange())


def test_its_errors_name_its_own_service_sagemaker_runtime_http2() -> None:
    prefix = f"operation error SageMaker Runtime HTTP2: {OPERATION}, "
    body = json.dumps({"Message": "container refused"}).encode()
    refusing = mock(status=424, headers={"x-amzn-errortype": "ModelError"}, body=body)

    async def exchange() -> None:
        async with AsyncClient(**fields(refusing)) as client:
            with pytest.raises(errors.InvalidParamsError) as invalid:
                async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name=""):
                    pass
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
                with pytest.raises(errors.ModelError) as refused:
                    await stream.wait_for_response()
            with pytest.raises(errors.SageMakerRuntimeError) as closed:
                await stream.send(b"x")
        for raised in (invalid, refused, closed):
            assert str(raised.value).startswith(prefix), str(raised.value)

    run(exchange())
    assert str(errors.ModelError("m", operation="InvokeEndpoint")).startswith("operation error SageMaker Runtime: InvokeEndpoint, ")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("exception", "error_type"),
    [("ModelStreamError", errors.ModelStreamError), ("InternalStreamFailure", errors.InternalStreamFailure)],
)
def test_exception_events_raise_their_error_after_the_parts_before_them(kind: str, exception: str, error_type: type[Exception]) -> None:
    async def fails(request: HTTPRequest, events: AsyncIterator[RequestPayloadPart]) -> AsyncIterator[Any]:
        async for event in events:
            yield ResponsePayloadPart(event.bytes)
            yield encode_message(
                {":message-type": "exception", ":exception-type": exception, ":content-type": "application/json"},
                json.dumps({"Message": "the model broke", "ErrorCode": "StreamBroken"}).encode(),
            )

    async def exchange() -> None:
        async with open_client(kind, **fields(mock(fails))) as client, open_stream(client, endpoint_name="ep") as stream:
            await stream.send(b"first")
            part = await stream.next()
            assert part is not None and part.bytes == b"first"
            with pytest.raises(error_type) as raised:
                await stream.next()
            assert raised.value.operation == OPERATION
            if isinstance(raised.value, errors.ModelStreamError):
                assert raised.value.error_code == "StreamBroken"
            assert await stream.next() is None

    run(exchange())


@pytest.mark.parametrize("kind", KINDS)
def test_parts_that_arrive_with_an_exception_event_in_one_chunk_come_before_its_error(kind: str) -> None:
    async def part_then_error(request: HTTPRequest, events: AsyncIterator[RequestPayloadPart]) -> AsyncIterator[Any]:
        async for event in events:
            yield encode_message({":message-type": "event", ":event-type": "PayloadPart"}, event.bytes) + encode_message(
                {":message-type": "exception", ":exception-type": "ModelStreamError"}, b'{"Message": "broke"}'
            )

    async def exchange() -> None:
        async with open_client(kind, **fields(mock(part_then_error))) as client, open_stream(client, endpoint_name="ep") as stream:
            await stream.send(b"fine")
            part = await stream.next()
            assert part is not None and part.bytes == b"fine"
            with pytest.raises(errors.ModelStreamError):
                await stream.next()

    run(exchange())


@pytest.mark.parametrize("kind", KINDS)
def test_the_server_cutting_the_stream_mid_event_is_an_error_not_an_end(kind: str) -> None:
    async def cuts(request: HTTPRequest, events: AsyncIterator[RequestPayloadPart]) -> AsyncIterator[Any]:
        async for _ in events:
            yield encode_message({":message-type": "event", ":event-type": "PayloadPart"}, b"whole")[:-6]
            return

    async def exchange() -> None:
        async with open_client(kind, **fields(mock(cuts))) as client, open_stream(client, endpoint_name="ep") as stream:
            await stream.send(b"x")
            with pytest.raises(TruncatedStreamError):
                await stream.next()

    run(exchange())


@pytest.mark.parametrize("kind", KINDS)
def test_a_reset_stream_fails_the_reader_as_cut_off(kind: str) -> None:
    async def breaks(request: HTTPRequest, events: AsyncIterator[RequestPayloadPart]) -> AsyncIterator[Any]:
        async for _ in events:
            yield ResponsePayloadPart(b"before")
            raise RuntimeError("crash")

    async def exchange() -> None:
        async with open_client(kind, **fields(mock(breaks))) as client, open_stream(client, endpoint_name="ep") as stream:
            await stream.send(b"x")
            with pytest.raises(TruncatedStreamError, match="cut off"):
                await stream.parts()

    run(exchange())


# -- retries ------------------------------------------------------------------------------


class FlakyOpen(AsyncHTTP2MockClient):
    """Fails to open the first ``failures`` streams as a refused connection would."""

    def __init__(self, failures: int, **kwargs: Any) -> None:
        super().__init__(echo, secret_access_key=SECRET, **kwargs)
        self.failures = failures
        self.attempts = 0

    async def open_stream(self, request: HTTPRequest) -> Any:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise errors.ConnectError("connection refused")
        return await super().open_stream(request)


@pytest.mark.parametrize("kind", KINDS)
def test_opening_is_retried_and_each_attempt_seeds_the_chain_anew(kind: str) -> None:
    http2 = FlakyOpen(2)

    async def exchange() -> None:
        async with open_client(kind, **fields(http2, retryer=StandardRetryer(random=lambda: 0.0))) as client, open_stream(
            client, endpoint_name="ep"
        ) as stream:
            await stream.send(b"after retries")
            await stream.end_input()
            assert [part.bytes for part in await stream.parts()] == [b"after retries"]
            assert stream.metadata.attempts == 3

    run(exchange())

    assert http2.attempts == 3
    assert http2.streams[0].verify_error is None
    assert http2.streams[0].request.headers["amz-sdk-request"] == "attempt=3; max=3"


class FailingSend(AsyncHTTP2MockClient):
    """Opens, then loses the connection at the first event."""

    async def open_stream(self, request: HTTPRequest) -> Any:
        stream = await super().open_stream(request)

        async def lost(data: bytes) -> None:
            raise errors.ConnectionClosedError("connection reset")

        stream.send = lost  # type: ignore[method-assign]
        return stream


@pytest.mark.parametrize("kind", KINDS)
def test_nothing_is_retried_once_the_stream_is_open(kind: str) -> None:
    http2 = FailingSend(echo, secret_access_key=SECRET)

    async def exchange() -> None:
        async with open_client(kind, **fields(http2, retryer=StandardRetryer(random=lambda: 0.0))) as client, open_stream(
            client, endpoint_name="ep"
        ) as stream:
            with pytest.raises(errors.ConnectionClosedError) as raised:
                await stream.send(b"x")
            assert raised.value.operation == OPERATION

    run(exchange())

    assert len(http2.streams) == 1


# -- the stack and its event steps ---------------------------------------------------------


METER: MetadataKey[dict[str, int]] = MetadataKey("meter")


def meter_and_redact(stack: Any) -> None:
    """Counts the bytes both ways in the call's metadata; redacts digits going out."""

    class Redact(Transform[Any, None]):
        id = "RedactDigits"

        def before(self, ctx: Any, event: Any) -> Any:
            return attrs.evolve(event, bytes=bytes(ord("#") if chr(c).isdigit() else c for c in event.bytes))

    def meter(direction: str) -> Any:
        def handle(ctx: Any, event: Any, next: Any) -> None:
            counts = ctx.metadata.get(METER) or {"sent": 0, "received": 0}
            counts[direction] += len(event.bytes)
            ctx.metadata.set(METER, counts)
            next(ctx, event)

        return handle

    stack.send_event.add(Redact())
    stack.send_event.add(event_middleware("MeterSent", meter("sent")))
    stack.receive_event.add(event_middleware("MeterReceived", meter("received")))



@pytest.mark.parametrize("kind", KINDS)
def test_event_middleware_sees_and_changes_every_event_both_ways(kind: str) -> None:
    http2 = mock()

    async def exchange() -> None:
        async with open_client(kind, **fields(http2, api_options=[meter_and_redact])) as client:
            assert "\tSendEvent stack step\n\t\tRedactDigits\n\t\tMeterSent\n\tReceiveEvent stack step\n\t\tMeterReceived\n" in str(
                client.stack(OPERATION)
            )
            async with open_stream(client, endpoint_name="ep") as stream:
                await stream.send(b"card 4111")
                await stream.send(b"ok")
                await stream.end_input()
                assert [part.bytes for part in await stream.parts()] == [b"card ####", b"ok"]
                assert stream.metadata.values.get(METER) == {"sent": 11, "received": 11}

    run(exchange())

    assert [event.bytes for event in http2.streams[0].events] == [b"card ####", b"ok"]
    assert http2.streams[0].verify_error is None  # what is signed is what the middleware passed on


def test_event_middleware_may_drop_or_split_events() -> None:
    def split_and_drop(stack: Any) -> None:
        def split(ctx: Any, event: Any, next: Any) -> None:
            if event.bytes == b"drop":
                return
            for piece in event.bytes.split(b","):
                next(ctx, attrs.evolve(event, bytes=piece))

        stack.send_event.add(event_middleware("Split", split))

    http2 = mock()

    async def exchange() -> list[bytes]:
        async with AsyncClient(**fields(http2, api_options=[split_and_drop])) as client, client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
            await stream.send(b"a,b,c")
            await stream.send(b"drop")
            await stream.end_input()
            return [part.bytes async for part in stream]

    assert run(exchange()) == [b"a", b"b", b"c"]
    assert http2.streams[0].verify_error is None


def test_an_event_middleware_must_pass_on_a_request_event_and_a_failed_send_signs_nothing() -> None:
    def breaks(stack: Any) -> None:
        def valid_then_not(ctx: Any, event: Any, next: Any) -> None:
            next(ctx, event)
            if event.bytes == b"bad":
                next(ctx, event.bytes)

        stack.send_event.add(event_middleware("Breaks", valid_then_not))

    http2 = mock()

    async def exchange() -> None:
        async with AsyncClient(**fields(http2, api_options=[breaks])) as client, \
                client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
            with pytest.raises(errors.SerializationError, match="passed on a bytes, not a RequestPayloadPart"):
                await stream.send(b"bad")
            await stream.send(b"good")  # chained on the last event sent, not on one signed and dropped
            await stream.end_input()
            assert [part.bytes async for part in stream] == [b"good"]

    run(exchange())

    assert http2.streams[0].verify_error is None


def test_an_async_event_middleware_is_refused_when_the_stack_is_composed() -> None:
    async def waits(ctx: Any, event: Any, next: Any) -> None:
        next(ctx, event)

    with pytest.raises(StackError, match="not async def"):
        event_middleware("Waits", waits)

    class OnlyAsync:
        id = "OnlyAsync"

        async def ahandle(self, ctx: Any, event: Any, next: Any) -> None:
            next(ctx, event)

    async def exchange() -> None:
        async with AsyncClient(**fields(mock(), api_options=[lambda stack: stack.receive_event.add(OnlyAsync())])) as client:
            with pytest.raises(errors.StackError, match="OnlyAsync"):
                async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep"):
                    pass

    run(exchange())


def test_the_event_steps_follow_the_stack_rules() -> None:
    stack = Client(region="us-east-1", credentials=CREDENTIALS).stack(OPERATION)
    stack.send_event.add(event_middleware("A", lambda ctx, event, next: next(ctx, event)))
    stack.send_event.add(event_middleware("B", lambda ctx, event, next: next(ctx, event)), Position.BEFORE)
    with pytest.raises(errors.StackError, match="already exists, A"):
        stack.send_event.add(event_middleware("A", lambda ctx, event, next: None))
    with pytest.raises(errors.StackError, match="not found, Z"):
        stack.receive_event.remove("Z")
    assert stack.list()[-4:] == ["SendEvent stack step", "B", "A", "ReceiveEvent stack step"]


# -- endpoints ------------------------------------------------------------------------------


def opened_url(**more: Any) -> str:
    http2 = mock()

    async def exchange() -> None:
        async with AsyncClient(**fields(http2, **more)) as client, client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep"):
            pass

    run(exchange())
    url: str = http2.streams[0].request.url
    return url


def test_http2_endpoint_url_wins_then_endpoint_url_then_the_http2_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    action = "/endpoints/ep/invocations-bidirectional-stream"
    assert opened_url(http2_endpoint_url="http://127.0.0.1:9/h2", endpoint_url="http://127.0.0.1:8") == f"http://127.0.0.1:9/h2{action}"
    assert opened_url(endpoint_url="http://127.0.0.1:8") == f"http://127.0.0.1:8{action}"
    assert opened_url(region="cn-north-1") == f"https://runtime.sagemaker.cn-north-1.amazonaws.com.cn:8443{action}"
    assert opened_url(use_fips_endpoint=True) == f"https://runtime-fips.sagemaker.us-east-1.amazonaws.com:8443{action}"


def test_a_vpc_endpoint_url_signs_for_its_own_region() -> None:
    http2 = mock()
    vpce = "https://vpce-0abc-1234.runtime.sagemaker.eu-west-1.vpce.amazonaws.com"

    async def exchange() -> None:
        async with AsyncClient(**fields(http2, http2_endpoint_url=vpce)) as client, client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
            await stream.send(b"x")
            await stream.end_input()
            assert [part.bytes async for part in stream] == [b"x"]

    run(exchange())

    opened = http2.streams[0]
    assert "/eu-west-1/sagemaker/aws4_request" in opened.request.headers["authorization"]
    assert opened.verify_error is None  # the events are signed for eu-west-1 too


def test_a_fixed_url_with_fips_is_a_configuration_error() -> None:
    async def exchange() -> None:
        async with AsyncClient(**fields(mock(), http2_endpoint_url="https://h2.example", use_fips_endpoint=True)) as client:
            with pytest.raises(errors.EndpointResolutionError, match="FIPS and custom endpoint"):
                async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep"):
                    pass

    run(exchange())


def test_the_http2_endpoint_url_comes_from_the_environment_or_the_services_section(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(
        "[profile dev]\nservices = local\n\n[services local]\nsagemaker_runtime_http2 =\n"
        "  endpoint_url = http://127.0.0.1:8443\n"
    )
    env = {"AWS_CONFIG_FILE": str(config), "AWS_PROFILE": "dev"}
    assert resolve_defaults(Options(), env).http2_endpoint_url == "http://127.0.0.1:8443"
    env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2"] = "http://127.0.0.1:9443"
    assert resolve_defaults(Options(), env).http2_endpoint_url == "http://127.0.0.1:9443"
    assert resolve_defaults(Options(http2_endpoint_url="http://given"), env).http2_endpoint_url == "http://given"


# -- the clients --------------------------------------------------------------------------


def test_the_blocking_client_runs_its_streams_on_the_calling_thread_on_one_loop_closed_on_close() -> None:
    import threading

    http2 = mock()
    client = Client(**fields(http2))
    before = set(threading.enumerate())
    loops = set()
    for _ in range(2):
        with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
            stream.send(b"x")
            stream.end_input()
            assert [part.bytes for part in stream] == [b"x"]
            loops.add(stream._stream._loop)
    assert set(threading.enumerate()) == before  # no thread of its own
    (loop,) = loops
    client.close()
    assert loop.is_closed()
    with pytest.raises(errors.ClientClosedError, match="client is closed"):
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep")


def test_a_blocking_stream_shared_by_a_reading_and_a_sending_thread() -> None:
    # The reader drives the loop while it waits; each send is handed to it, and when the reader
    # stops (the stream ended) a call still waiting drives the loop itself.
    import threading

    client = Client(**fields(mock()))
    with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.extend(part.bytes for part in stream))
        reader.start()
        for n in range(50):
            stream.send(b"%d" % n)
        stream.end_input()
        reader.join(10)
        assert not reader.is_alive()
    client.close()
    assert got == [b"%d" % n for n in range(50)]


async def silent(request: HTTPRequest, events: AsyncIterator[RequestPayloadPart]) -> AsyncIterator[ResponsePayloadPart]:
    """Reads every event, answers nothing until the input ends."""
    async for _ in events:
        pass
    yield ResponsePayloadPart(b"never reached")


def test_ctrl_c_while_a_blocking_stream_waits_cancels_it_and_resets_the_stream() -> None:
    import os
    import signal
    import threading

    http2 = mock(silent)
    client = Client(**fields(http2))
    stream = client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep")
    stream.__enter__()
    stream.send(b"x")
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        next(stream)  # waits for an answer that never comes
    timer.join()
    with pytest.raises(errors.ConnectionClosedError, match="stream was cancelled"):
        next(stream)  # not a quiet end, as if the model were done
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    stream.close()
    assert http2.streams[0].reset
    client.close()


def test_threads_with_streams_of_their_own_on_one_blocking_client_take_turns_driving_its_loop() -> None:
    import threading
    import time

    client = Client(**fields(mock()))
    answers: dict[int, list[bytes]] = {}

    def converse(n: int) -> None:
        with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
            got = answers[n] = []
            for i in range(40):
                stream.send(b"%d-%d" % (n, i))
                got.append(next(stream).bytes)
                if i % 7 == n % 7:
                    time.sleep(0.002)  # away from the loop a while: another thread drives it
            stream.end_input()
            assert list(stream) == []

    threads = [threading.Thread(target=converse, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not any(thread.is_alive() for thread in threads)
    client.close()
    assert answers == {n: [b"%d-%d" % (n, i) for i in range(40)] for n in range(4)}


def test_a_blocking_call_from_inside_a_running_event_loop_still_works() -> None:
    client = Client(**fields(mock()))

    async def inside() -> list[bytes]:
        with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
            stream.send(b"x")
            stream.end_input()
            return [part.bytes for part in stream]

    assert asyncio.run(inside()) == [b"x"]
    client.close()


def test_a_client_that_streamed_closes_inside_a_running_event_loop() -> None:
    # Jupyter, async test frameworks, sync code called from an async handler.
    client = Client(**fields(mock()))

    async def inside() -> None:
        with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
            stream.send(b"x")
            stream.end_input()
            assert [part.bytes for part in stream] == [b"x"]
        client.close()

    asyncio.run(inside())
    with pytest.raises(errors.ClientClosedError, match="client is closed"):
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep")


def test_a_blocking_stream_used_after_its_client_closed_says_so() -> None:
    client = Client(**fields(mock()))
    stream = client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep")
    client.close()
    with pytest.raises(errors.ClientClosedError, match="client is closed"):
        stream.send(b"x")


def test_a_client_closes_the_http2_client_it_made_but_not_one_it_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    made = mock()
    monkeypatch.setattr("smruntime.transport.default_http2_client", lambda options: made)

    async def exchange(given: Any) -> None:
        async with AsyncClient(**fields(given)) as client, client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
            await stream.end_input()

    run(exchange(None))
    assert made.closed and made.streams
    given = mock()
    run(exchange(given))
    assert not given.closed


def test_the_answer_is_logged_when_it_arrives_with_log_mode_response(caplog: pytest.LogCaptureFixture) -> None:
    from smruntime import LogMode

    async def exchange() -> None:
        async with AsyncClient(**fields(mock(), log_mode=LogMode.REQUEST | LogMode.RESPONSE)) as client, \
                client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
            await stream.end_input()
            assert [part async for part in stream] == []

    with caplog.at_level("DEBUG", logger="smruntime"):
        run(exchange())

    lines = [record.getMessage() for record in caplog.records]
    assert any(line.startswith(f"{OPERATION} request: POST https://runtime.sagemaker.us-east-1.amazonaws.com:8443/") for line in lines)
    assert any(line.startswith(f"{OPERATION} response: 200 ") and "AllTraffic" in line for line in lines)
    assert not any(SECRET in line for line in lines)


class StallingSend(AsyncHTTP2MockClient):
    """Opens, then never has window for the first event (a peer that sends no WINDOW_UPDATE)."""

    async def open_stream(self, request: HTTPRequest) -> Any:
        stream = await super().open_stream(request)

        async def stalls(data: bytes) -> None:
            await asyncio.Event().wait()

        stream.send = stalls  # type: ignore[method-assign]
        return stream


def test_a_send_cancelled_part_way_leaves_a_stream_that_refuses_more_and_is_reset() -> None:
    http2 = StallingSend(echo, secret_access_key=SECRET)

    async def exchange() -> None:
        async with AsyncClient(**fields(http2)) as client, \
                client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(stream.send(b"x" * 100_000), 0.05)
            with pytest.raises(errors.SageMakerRuntimeError, match="part way through an event"):
                await stream.send(b"more")

    run(exchange())

    assert http2.streams[0].reset


def test_a_stream_dropped_open_is_released_on_its_loop() -> None:
    import gc

    http2 = mock()

    async def exchange() -> None:
        async with AsyncClient(**fields(http2)) as client:
            stream = client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep")
            await stream.send(b"x")
            del stream
            gc.collect()
            for _ in range(5):
                await asyncio.sleep(0)
            assert http2.streams[0].reset

    run(exchange())


def test_a_read_cancelled_while_it_waits_makes_later_reads_say_so_not_end_quietly() -> None:
    http2 = mock(silent)

    async def exchange() -> None:
        async with AsyncClient(**fields(http2)) as client, \
                client.invoke_endpoint_with_bidirectional_stream(endpoint_name="ep") as stream:
            await stream.send(b"x")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(stream), 0.05)  # the docs' time limit on one read
            with pytest.raises(errors.ConnectionClosedError, match="stream was cancelled") as raised:
                await anext(stream)
            assert raised.value.operation == OPERATION

    run(exchange())

    assert http2.streams[0].reset
