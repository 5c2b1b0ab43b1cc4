"""AsyncClient over the shared stack, with a fake asyncio HTTP client (no sockets).

Where behaviour must match Client's, the test runs both clients (``call`` awaits the async
one) against the same answers and compares.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from smruntime import AsyncClient, Client, PayloadPart
from smruntime.auth import Credentials
from smruntime.errors import (
    InvalidParamsError,
    MaxAttemptsExceededError,
    ModelError,
    ModelStreamError,
    SageMakerRuntimeError,
    StackError,
)
from smruntime.eventstream import encode_message
from smruntime.http import HTTPRequest
from smruntime.middleware import (
    BuildInput,
    BuildOutput,
    Context,
    FinalizeInput,
    FinalizeOutput,
    Next,
    Position,
    Stack,
    Transform,
    build_middleware,
)
from smruntime.options import Options
from smruntime.retry import new_retryer
from smruntime.transport import MockHTTPClient
from tests.unit.async_fake import Answer, FakeAsyncHTTPClient

CREDENTIALS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
OK: Answer = (200, {"Content-Type": "application/json", "x-amzn-RequestId": "rid-1"}, b'{"ok": true}')


def part(data: bytes) -> bytes:
    return encode_message({":message-type": "event", ":event-type": "PayloadPart"}, data)


def stream_error(code: str) -> bytes:
    return encode_message(
        {":message-type": "exception", ":exception-type": "ModelStreamError"},
        json.dumps({"Message": "boom", "ErrorCode": code}).encode(),
    )


def async_client(handler: Callable[[HTTPRequest], Answer], **fields: Any) -> tuple[AsyncClient, FakeAsyncHTTPClient]:
    fake = FakeAsyncHTTPClient(handler)
    fields.setdefault("credentials", CREDENTIALS)
    return AsyncClient(region="us-east-1", endpoint_url="https://runtime.example", http_client=fake, **fields), fake


def sync_client(handler: Callable[[HTTPRequest], Answer], **fields: Any) -> tuple[Client, MockHTTPClient]:
    def answer(request: HTTPRequest) -> Any:
        status, headers, body = handler(request)
        return status, headers, b"".join(body) if isinstance(body, list) else body

    mock = MockHTTPClient(answer)
    fields.setdefault("credentials", CREDENTIALS)
    return Client(region="us-east-1", endpoint_url="https://runtime.example", http_client=mock, **fields), mock


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# --- the same answers as Client -------------------------------------------------------------


def _comparable(request: HTTPRequest) -> dict[str, Any]:
    varying = {"authorization", "x-amz-date", "amz-sdk-invocation-id"}
    headers = {name: value for name, value in request.headers.lower_items() if name not in varying}
    return {"method": request.method, "url": request.url, "headers": headers, "body": request.body}


def test_invoke_endpoint_sends_what_client_sends_and_returns_the_same_output() -> None:
    kwargs = {"endpoint_name": "ep", "body": b'{"x": 1}', "content_type": "application/json", "custom_attributes": "a=1"}
    client, mock = sync_client(lambda r: OK)
    expected = client.invoke_endpoint(**kwargs)  # type: ignore[arg-type]
    aclient, fake = async_client(lambda r: OK)
    got = run(aclient.invoke_endpoint(**kwargs))  # type: ignore[arg-type]
    assert got.body == expected.body == b'{"ok": true}'
    assert got.content_type == expected.content_type
    assert got.metadata.request_id == expected.metadata.request_id == "rid-1"
    assert got.metadata.attempts == 1
    assert _comparable(fake.requests[0]) == _comparable(mock.requests[0])
    assert fake.requests[0].headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert fake.bodies[0].closed


def test_a_service_error_is_the_same_error_with_the_body_released() -> None:
    answer: Answer = (424, {"x-amzn-RequestId": "rid-9", "X-Amzn-ErrorType": "ModelError"},
                      b'{"Message": "bad model", "OriginalStatusCode": 500}')
    client, _ = sync_client(lambda r: answer)
    with pytest.raises(ModelError) as sync_error:
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    aclient, fake = async_client(lambda r: answer)
    with pytest.raises(ModelError) as async_error:
        run(aclient.invoke_endpoint(endpoint_name="ep", body=b"x"))
    assert str(async_error.value) == str(sync_error.value)
    assert async_error.value.request_id == "rid-9"
    assert fake.bodies[0].closed


def test_retries_wait_with_the_retryers_async_sleep_and_release_each_failed_response() -> None:
    answers = iter([(503, {}, b"{}"), (503, {}, b"{}"), OK])
    slept: list[float] = []

    async def asleep(delay: float) -> None:
        slept.append(delay)

    retryer = new_retryer("standard", 3, sleep=lambda d: pytest.fail("the sync sleep ran"), asleep=asleep)
    aclient, fake = async_client(lambda r: next(answers), retryer=retryer)
    out = run(aclient.invoke_endpoint(endpoint_name="ep", body=b"x"))
    assert out.metadata.attempts == 3
    assert len(slept) == 2
    assert [r.headers["amz-sdk-request"] for r in fake.requests] == ["attempt=1; max=3", "attempt=2; max=3", "attempt=3; max=3"]
    assert all(body.closed for body in fake.bodies)


def test_giving_up_raises_max_attempts_exceeded_as_client_does() -> None:
    async def asleep(delay: float) -> None:
        """Recorded nowhere: the test only counts attempts."""

    aclient, fake = async_client(lambda r: (500, {}, b"{}"), retryer=new_retryer("standard", 2, asleep=asleep))
    with pytest.raises(MaxAttemptsExceededError) as caught:
        run(aclient.invoke_endpoint(endpoint_name="ep", body=b"x"))
    assert caught.value.attempts == 2
    assert len(fake.requests) == 2


def test_the_adaptive_limiter_makes_the_async_shell_wait_without_blocking() -> None:
    slept: list[float] = []

    async def asleep(delay: float) -> None:
        slept.append(delay)

    retryer = new_retryer("adaptive", 3, sleep=lambda d: pytest.fail("the sync sleep ran"), asleep=asleep)
    throttled: Answer = (400, {"X-Amzn-ErrorType": "ThrottlingException"}, b"{}")
    answers = iter([throttled, OK, OK, OK])
    aclient, _ = async_client(lambda r: next(answers), retryer=retryer)

    async def calls() -> None:
        for _ in range(3):
            await aclient.invoke_endpoint(endpoint_name="ep", body=b"x")

    run(calls())
    assert retryer.rate_limiter.enabled  # type: ignore[attr-defined]
    assert slept  # backoff and send-token waits were awaited, never slept


def test_invalid_input_is_refused_before_any_request() -> None:
    aclient, fake = async_client(lambda r: OK)
    with pytest.raises(InvalidParamsError, match="endpoint_name"):
        run(aclient.invoke_endpoint(endpoint_name="", body=b"x"))
    assert fake.requests == []


# --- streams ----------------------------------------------------------------------------------


def test_a_stream_yields_parts_lines_and_payloads_and_releases_its_connection() -> None:
    chunks = [part(b"hel"), part(b"lo\nwor"), part(b"ld\n") + part(b"tail")]
    headers = {"X-Amzn-SageMaker-Content-Type": "text/plain", "x-amzn-RequestId": "rid-s"}

    async def scenario() -> tuple[list[bytes], list[bytes], list[PayloadPart], FakeAsyncHTTPClient]:
        aclient, fake = async_client(lambda r: (200, headers, chunks))
        async with aclient:
            stream = await aclient.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
            async with stream:
                lines = [line async for line in stream.lines()]
            stream = await aclient.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
            payloads = [data async for data in stream.payloads()]
            stream = await aclient.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
            events = [event async for event in stream]
            assert stream.content_type == "text/plain"
            assert stream.metadata.request_id == "rid-s"
        return lines, payloads, events, fake

    lines, payloads, events, fake = run(scenario())
    assert lines == [b"hello", b"world", b"tail"]
    assert payloads == [b"hel", b"lo\nwor", b"ld\n", b"tail"]
    assert events == [PayloadPart(b"hel"), PayloadPart(b"lo\nwor"), PayloadPart(b"ld\n"), PayloadPart(b"tail")]
    assert all(body.closed and body.fully_read for body in fake.bodies)


def test_lines_read_again_after_a_loop_left_early_go_on_where_it_stopped() -> None:
    chunks = [part(b"a\nb\nc"), part(b"d\r\ne\r"), part(b"\nf")]

    async def scenario() -> tuple[bytes, list[bytes]]:
        aclient, _ = async_client(lambda r: (200, {}, chunks))
        async with aclient:
            stream = await aclient.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
            async with stream:
                seen: list[bytes] = []
                async for line in stream.lines():
                    seen.append(line)
                    break
                return seen[0], [line async for line in stream.lines()]

    assert run(scenario()) == (b"a", [b"b", b"cd", b"e", b"f"])


@pytest.mark.parametrize("view", ["lines", "payloads"])
def test_a_timed_out_read_of_lines_or_payloads_is_not_taken_for_the_end_of_the_stream(view: str) -> None:
    # A per-token timeout: the stream is dropped, and the next read says so (an async
    # generator, once cancelled, would just have ended, and the answer looked whole).
    async def scenario() -> FakeAsyncHTTPClient:
        fake = FakeAsyncHTTPClient(lambda r: (200, {}, [part(b"first\n"), part(b"second\n")]), gate=asyncio.Event())
        aclient = AsyncClient(region="us-east-1", endpoint_url="https://runtime.example", http_client=fake,
                              credentials=CREDENTIALS)
        async with aclient:
            stream = await aclient.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
            items = getattr(stream, view)()
            assert (await anext(items)).rstrip(b"\n") == b"first"
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(items), 0.05)  # the next chunk is held back
            with pytest.raises(SageMakerRuntimeError, match="closed before its end"):
                await anext(items)
        return fake

    assert run(scenario()).bodies[0].closed


def test_an_error_in_the_first_event_is_raised_by_the_call_and_releases_the_body() -> None:
    aclient, fake = async_client(lambda r: (200, {}, [stream_error("E42")]))
    with pytest.raises(ModelStreamError) as caught:
        run(aclient.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x"))
    assert caught.value.error_code == "E42"
    assert fake.bodies[0].closed


def test_an_error_after_the_first_event_is_raised_by_the_iteration_and_closes_the_stream() -> None:
    async def scenario() -> tuple[list[PayloadPart], Any]:
        aclient, fake = async_client(lambda r: (200, {}, [part(b"a"), stream_error("E7")]))
        stream = await aclient.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
        seen: list[PayloadPart] = []
        with pytest.raises(ModelStreamError):
            async for event in stream:
                seen.append(event)
        assert stream.closed and fake.bodies[0].closed
        return seen, stream

    seen, _ = run(scenario())
    assert seen == [PayloadPart(b"a")]


def test_a_stream_error_status_is_read_in_full_and_raised() -> None:
    aclient, fake = async_client(lambda r: (424, {"X-Amzn-ErrorType": "ModelError"}, [b'{"Message":', b' "no"}']))
    with pytest.raises(ModelError, match="no"):
        run(aclient.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x"))
    assert fake.bodies[0].closed


def test_cancelling_a_stream_mid_read_releases_its_connection_and_leaves_no_task() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()  # never set: the second chunk never arrives
        fake = FakeAsyncHTTPClient(lambda r: (200, {}, [part(b"first"), part(b"never")]), gate)
        aclient = AsyncClient(region="us-east-1", endpoint_url="https://x.example", http_client=fake, credentials=CREDENTIALS)
        stream = await aclient.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"x")
        got: list[PayloadPart] = []

        async def consume() -> None:
            async for event in stream:
                got.append(event)

        task = asyncio.create_task(consume())
        while not got:
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert stream.closed and fake.bodies[0].closed
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run(scenario())


# --- middleware on both clients ---------------------------------------------------------------


class TraceHeader(Transform[BuildInput, BuildOutput]):
    """A user's transform: runs on both clients unchanged."""

    id = "TraceHeader"

    def before(self, ctx: Context, in_: BuildInput) -> BuildInput:
        in_.request.headers["X-Amzn-SageMaker-Custom-Attributes"] = "trace_id=abc"
        return in_

    def after(self, ctx: Context, in_: BuildInput, out: BuildOutput) -> BuildOutput:
        ctx.metadata.set(TRACED, True)
        return out


from smruntime.middleware import MetadataKey  # noqa: E402

TRACED: MetadataKey[bool] = MetadataKey("traced")


def add_trace(stack: Stack) -> None:
    stack.build.add(TraceHeader(), Position.AFTER)


def test_a_transform_runs_on_both_clients() -> None:
    client, mock = sync_client(lambda r: OK, api_options=[add_trace])
    out = client.invoke_endpoint(endpoint_name="ep", body=b"x")
    aclient, fake = async_client(lambda r: OK, api_options=[add_trace])
    aout = run(aclient.invoke_endpoint(endpoint_name="ep", body=b"x"))
    for request, result in ((mock.requests[0], out), (fake.requests[0], aout)):
        assert request.headers["X-Amzn-SageMaker-Custom-Attributes"] == "trace_id=abc"
        assert result.metadata.values.get(TRACED) is True


def sync_only(stack: Stack) -> None:
    def handle(ctx: Context, in_: BuildInput, next: Next[BuildInput, BuildOutput]) -> BuildOutput:
        return next(ctx, in_)

    stack.build.add(build_middleware("SyncOnly", handle))


def test_a_sync_only_middleware_keeps_working_on_client() -> None:
    client, _ = sync_client(lambda r: OK, api_options=[sync_only])
    assert client.invoke_endpoint(endpoint_name="ep", body=b"x").body == b'{"ok": true}'


def test_async_client_refuses_a_sync_only_middleware_before_any_request() -> None:
    aclient, fake = async_client(lambda r: OK, api_options=[sync_only])
    with pytest.raises(StackError) as caught:
        run(aclient.invoke_endpoint(endpoint_name="ep", body=b"x"))
    message = str(caught.value)
    assert "SyncOnly" in message and "Build stack step" in message
    assert "ahandle" in message and "Transform" in message
    assert isinstance(caught.value, SageMakerRuntimeError)
    assert fake.requests == []


def async_only(stack: Stack) -> None:
    async def handle(ctx: Context, in_: BuildInput, next: Any) -> BuildOutput:
        in_.request.headers["X-Async"] = "1"
        result: BuildOutput = await next(ctx, in_)
        return result

    stack.build.add(build_middleware("AsyncOnly", handle))


def test_an_async_function_middleware_runs_on_async_client_and_is_refused_by_client() -> None:
    aclient, fake = async_client(lambda r: OK, api_options=[async_only])
    run(aclient.invoke_endpoint(endpoint_name="ep", body=b"x"))
    assert fake.requests[0].headers["X-Async"] == "1"
    client, mock = sync_client(lambda r: OK, api_options=[async_only])
    with pytest.raises(StackError, match=r"AsyncOnly.*only an async ahandle"):
        client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert mock.requests == []


class BothShells:
    """A user middleware that waits: a sync and an async shell over one core."""

    id = "BothShells"

    def core(self, in_: FinalizeInput) -> None:
        in_.request.headers["X-Shell"] = "set"

    def handle(self, ctx: Context, in_: FinalizeInput, next: Next[FinalizeInput, FinalizeOutput]) -> FinalizeOutput:
        self.core(in_)
        return next(ctx, in_)

    async def ahandle(self, ctx: Context, in_: FinalizeInput, next: Any) -> FinalizeOutput:
        await asyncio.sleep(0)
        self.core(in_)
        result: FinalizeOutput = await next(ctx, in_)
        return result


def test_a_middleware_with_both_shells_runs_on_both_clients() -> None:
    def add(stack: Stack) -> None:
        stack.finalize.insert(BothShells(), "Signing", Position.BEFORE)

    client, mock = sync_client(lambda r: OK, api_options=[add])
    client.invoke_endpoint(endpoint_name="ep", body=b"x")
    aclient, fake = async_client(lambda r: OK, api_options=[add])
    run(aclient.invoke_endpoint(endpoint_name="ep", body=b"x"))
    for request in (mock.requests[0], fake.requests[0]):
        assert request.headers["X-Shell"] == "set"
        assert "x-shell" in request.headers["Authorization"]  # added before Signing: signed


def test_per_call_options_apply_to_that_call_only() -> None:
    aclient, fake = async_client(lambda r: OK)

    def trace(options: Options) -> None:
        options.api_options = [*options.api_options, add_trace]

    async def calls() -> None:
        await aclient.invoke_endpoint(endpoint_name="ep", body=b"x", options=[trace])
        await aclient.invoke_endpoint(endpoint_name="ep", body=b"x")

    run(calls())
    assert fake.requests[0].headers.get("X-Amzn-SageMaker-Custom-Attributes") == "trace_id=abc"
    assert "X-Amzn-SageMaker-Custom-Attributes" not in fake.requests[1].headers


# --- HTTP clients, credentials, closing -------------------------------------------------------


def test_each_client_refuses_the_other_kind_of_http_client() -> None:
    with pytest.raises(InvalidParamsError, match=r"http_client.*sync HTTP client.*AsyncHTTPClient"):
        AsyncClient(region="us-east-1", http_client=MockHTTPClient(lambda r: OK))
    with pytest.raises(InvalidParamsError, match=r"http_client.*asyncio HTTP client.*AsyncClient"):
        Client(region="us-east-1", http_client=FakeAsyncHTTPClient(lambda r: OK))


def test_a_sync_credentials_provider_runs_in_a_worker_thread() -> None:
    threads: list[threading.Thread] = []

    class SlowProvider:
        def retrieve(self) -> Credentials:
            threads.append(threading.current_thread())
            return Credentials(*CREDENTIALS)

    aclient, fake = async_client(lambda r: OK, credentials=SlowProvider())
    run(aclient.invoke_endpoint(endpoint_name="ep", body=b"x"))
    assert threads and threads[0] is not threading.main_thread()
    assert "Credential=AKIDEXAMPLE/" in fake.requests[0].headers["Authorization"]


def test_aclose_closes_only_an_owned_http_client_and_later_calls_raise() -> None:
    aclient, fake = async_client(lambda r: OK)
    run(aclient.aclose())
    assert not fake.closed  # the caller's client: the caller closes it
    with pytest.raises(SageMakerRuntimeError, match="closed"):
        run(aclient.invoke_endpoint(endpoint_name="ep", body=b"x"))


def test_both_clients_share_each_operation_method_and_the_async_one_returns_an_awaitable() -> None:
    import inspect

    for name in ("invoke_endpoint", "invoke_endpoint_with_response_stream", "invoke_endpoint_async"):
        assert getattr(AsyncClient, name) is getattr(Client, name)  # one declaration, one signature
    aclient, fake = async_client(lambda r: OK)
    pending = aclient.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert inspect.isawaitable(pending)
    assert fake.requests == []  # nothing is sent before it is awaited
    assert run(pending).body == b'{"ok": true}'


def test_botocore_credentials_refresh_in_a_worker_thread_and_are_read_at_once_otherwise() -> None:
    from datetime import UTC, datetime, timedelta

    from botocore.credentials import RefreshableCredentials

    from smruntime.auth import BotocoreCredentialsProvider

    refreshed_in: list[threading.Thread] = []

    def metadata(expires_in: timedelta) -> dict[str, str]:
        return {"access_key": "AKIDREFRESHED", "secret_key": "secret", "token": "token",
                "expiry_time": (datetime.now(UTC) + expires_in).isoformat()}

    def refresh() -> dict[str, str]:
        refreshed_in.append(threading.current_thread())
        return metadata(timedelta(hours=1))

    expiring = RefreshableCredentials.create_from_metadata(metadata(timedelta(seconds=5)), refresh, "test")
    got = run(BotocoreCredentialsProvider(expiring).aretrieve())
    assert got.access_key_id == "AKIDREFRESHED"
    assert refreshed_in and refreshed_in[0] is not threading.main_thread()

    refreshed_in.clear()
    fresh = RefreshableCredentials.create_from_metadata(metadata(timedelta(hours=1)), refresh, "test")
    assert run(BotocoreCredentialsProvider(fresh).aretrieve()).access_key_id == "AKIDREFRESHED"
    assert refreshed_in == []  # nothing to refresh: read on the loop, no thread


def test_the_default_chain_with_keys_in_the_environment_works_on_async_client(monkeypatch: pytest.MonkeyPatch) -> None:
    from smruntime.auth import DefaultCredentialsProvider

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_CREDENTIAL_EXPIRATION", raising=False)
    provider = DefaultCredentialsProvider()

    async def twice() -> list[str]:
        return [(await provider.aretrieve()).access_key_id for _ in range(2)]  # looked up, then read

    assert run(twice()) == ["AKIDFROMENV", "AKIDFROMENV"]
