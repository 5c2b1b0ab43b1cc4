"""Retry policies and the ClientRequestID / Retry / RetryMetricsHeader middleware.

Fake ``next`` callables play one scripted outcome per attempt; sleep, clock and random are
injected, so nothing here sleeps or opens a socket.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
import threading
import uuid
from email.utils import formatdate
from typing import Any

import attrs
import pytest

from smruntime import keys
from smruntime.errors import (
    APIError,
    ConnectError,
    ConnectionClosedError,
    ConnectTimeoutError,
    InternalDependencyException,
    InternalFailure,
    InvalidParamsError,
    MaxAttemptsExceededError,
    ModelError,
    ModelNotReadyException,
    ReadTimeoutError,
    RetryQuotaExceededError,
    ServiceUnavailable,
    ValidationError,
)
from smruntime.http import BytesBody, HTTPRequest, HTTPResponse
from smruntime.logs import LogMode
from smruntime.middleware import (
    BuildInput,
    BuildOutput,
    Context,
    FinalizeInput,
    FinalizeOutput,
    Stack,
    build_middleware,
)
from smruntime.options import Options
from smruntime.retry import (
    THROTTLING_CODES,
    TRANSIENT_CODES,
    AdaptiveRetryer,
    ClientRateLimiter,
    ClientRequestID,
    ClockOffset,
    NoRetryer,
    Retry,
    RetryMetricsHeader,
    RetryQuota,
    StandardRetryer,
    new_retryer,
)

NOW = 1_700_000_000.0  # the injected wall clock for clock-skew tests
URL = "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/ep/invocations"


# --------------------------------------------------------------------------- helpers


@attrs.frozen
class Respond:
    """One attempt's outcome: a raw response seen by the stack, then ``error`` or success."""

    response: HTTPResponse
    error: BaseException | None = None


@attrs.frozen
class Seen:
    request: HTTPRequest
    attempt: int | None
    max_attempts: int | None
    clock_offset: float | None
    body: bytes | None


class Script:
    """A fake ``next``: plays one outcome per attempt and records what each attempt saw."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.seen: list[Seen] = []

    def __call__(self, ctx: Context, in_: FinalizeInput) -> FinalizeOutput:
        body = in_.request.body
        data = body.read() if hasattr(body, "read") else body
        self.seen.append(
            Seen(in_.request, ctx.get(keys.ATTEMPT), ctx.get(keys.MAX_ATTEMPTS), ctx.get(keys.CLOCK_OFFSET), data)
        )
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Respond):
            ctx.set(keys.RAW_RESPONSE, outcome.response)
            outcome = outcome.error if outcome.error is not None else outcome.response
        if isinstance(outcome, BaseException):
            raise outcome
        return FinalizeOutput(outcome)

    @property
    def calls(self) -> int:
        return len(self.seen)


class Sleeps(list[float]):
    """An injected sleep that records instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(float(seconds))


class FakeTime:
    """A monotonic clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(float(seconds))
        self.now += seconds


def standard(**kw: Any) -> StandardRetryer:
    kw.setdefault("sleep", Sleeps())
    kw.setdefault("random", lambda: 0.5)
    return StandardRetryer(**kw)


def make_ctx(retryer: Any = None, **options: Any) -> Context:
    return Context("InvokeEndpoint", "SageMaker Runtime", Options(retryer=retryer, **options))


def run(ctx: Context, script: Script, *, body: Any = b"{}", retry: Retry | None = None) -> Any:
    request = HTTPRequest("POST", URL, {"Content-Type": "application/json"}, body)
    return (retry or Retry(now=lambda: NOW)).handle(ctx, FinalizeInput(request), script)


def unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("try later", http_status=503)


def throttled() -> APIError:
    return APIError("slow down", code="ThrottlingException", http_status=400, throttling=True)


# --------------------------------------------------------------------------- the full per-call flow


def _retry_stack(sent: list[HTTPRequest], outcomes: list[BaseException | HTTPResponse], *build: Any) -> Any:
    """ClientRequestID, ``build`` middleware, Retry and RetryMetricsHeader over a terminal that
    records each request sent and answers with the next of ``outcomes``."""

    def terminal(ctx: Context, request: HTTPRequest) -> HTTPResponse:
        sent.append(request)
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    stack = Stack("InvokeEndpoint", lambda: HTTPRequest("POST", URL, body=b"{}"))
    stack.build.add(ClientRequestID())
    for middleware in build:
        stack.build.add(middleware)
    stack.finalize.add(Retry())
    stack.finalize.add(RetryMetricsHeader())
    return stack.handler(terminal)


def test_503_503_200_succeeds_on_the_third_attempt_with_one_invocation_id() -> None:
    sleeps = Sleeps()
    retryer = StandardRetryer(sleep=sleeps, random=lambda: 0.5)
    built: list[HTTPRequest] = []
    sent: list[HTTPRequest] = []
    outcomes: list[BaseException | HTTPResponse] = [unavailable(), unavailable(), HTTPResponse(200, body=b"ok")]

    def capture(ctx: Any, in_: Any, next: Any) -> Any:
        built.append(in_.request)
        return next(ctx, in_)

    ctx = make_ctx(retryer)

    _retry_stack(sent, outcomes, build_middleware("Capture", capture))(ctx, None)

    assert len(sent) == 3
    assert len({id(request) for request in [*sent, *built]}) == 4  # three copies, none the built one
    invocation_ids = {request.headers["amz-sdk-invocation-id"] for request in sent}
    assert len(invocation_ids) == 1
    assert uuid.UUID(invocation_ids.pop()).version == 4
    assert [request.headers["amz-sdk-request"] for request in sent] == [
        "attempt=1; max=3",
        "attempt=2; max=3",
        "attempt=3; max=3",
    ]
    assert "amz-sdk-request" not in built[0].headers  # the retry header never leaks into the shared request
    assert ctx.metadata.get(keys.ATTEMPTS) == 3
    assert ctx.metadata.get(keys.RETRY_DELAYS) == [0.5, 1.0] == sleeps
    assert retryer.quota.available == 500 - 5  # the last retry's cost came back; the first did not


def test_first_attempt_success_records_metadata_and_sends_a_copy() -> None:
    script = Script("done")
    ctx = make_ctx(standard())
    original = HTTPRequest("POST", URL, {"A": "b"}, b"{}")

    out = Retry().handle(ctx, FinalizeInput(original), script)

    assert out.result == "done"
    assert script.seen[0].request is not original
    assert script.seen[0].request.headers == {"A": "b"}
    assert (script.seen[0].attempt, script.seen[0].max_attempts) == (1, 3)
    assert ctx.metadata.get(keys.ATTEMPTS) == 1
    assert ctx.metadata.get(keys.RETRY_DELAYS) == []


def test_500_three_times_raises_max_attempts_exceeded_from_the_last_error() -> None:
    errors = [InternalFailure("boom", http_status=500) for _ in range(3)]
    script = Script(*errors)
    ctx = make_ctx(standard())

    with pytest.raises(MaxAttemptsExceededError) as raised:
        run(ctx, script)

    assert script.calls == 3
    assert raised.value.attempts == 3
    assert raised.value.__cause__ is errors[2]
    assert raised.value.last_error is errors[2]
    assert raised.value.retry_delays == [0.5, 1.0]  # type: ignore[attr-defined]
    assert raised.value.operation == "InvokeEndpoint"
    assert ctx.metadata.get(keys.ATTEMPTS) == 3
    assert ctx.metadata.get(keys.RETRY_DELAYS) == [0.5, 1.0]


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(lambda: throttled(), id="throttling-flag"),
        pytest.param(lambda: APIError("x", code="ThrottlingException", http_status=400), id="throttling-code"),
        pytest.param(lambda: APIError("x", code="RequestTimeoutException", http_status=408, transient=True), id="transient"),
        pytest.param(lambda: InternalFailure("x", http_status=500), id="500"),
        pytest.param(lambda: APIError("x", code="BadGateway", http_status=502), id="502"),
        pytest.param(lambda: ServiceUnavailable("x", http_status=503), id="503"),
        pytest.param(lambda: APIError("x", code="GatewayTimeout", http_status=504), id="504"),
        pytest.param(lambda: ConnectError("refused"), id="connect-error"),
        pytest.param(lambda: ConnectTimeoutError("slow connect"), id="connect-timeout"),
        pytest.param(lambda: ConnectionClosedError("reset before send", request_sent=False), id="closed-before-send"),
    ],
)
def test_retryable_errors_are_retried(error: Any) -> None:
    script = Script(error(), "ok")
    ctx = make_ctx(standard())

    assert run(ctx, script).result == "ok"
    assert script.calls == 2
    assert ctx.metadata.get(keys.ATTEMPTS) == 2


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(ModelError("container failed", http_status=424), id="424-ModelError"),
        pytest.param(ModelNotReadyException("not ready", http_status=429), id="429-ModelNotReady"),
        pytest.param(ValidationError("bad input", http_status=400), id="400-ValidationError"),
        pytest.param(InternalDependencyException("dependency", http_status=530), id="530"),
        pytest.param(APIError("denied", code="AccessDeniedException", http_status=403), id="403"),
        pytest.param(ConnectionClosedError("reset after send"), id="closed-after-send"),
        pytest.param(ReadTimeoutError("read timed out"), id="read-timeout"),
        pytest.param(ValueError("a bug in a middleware"), id="not-ours"),
    ],
)
def test_non_retryable_errors_propagate_unchanged_after_one_attempt(error: Exception) -> None:
    sleeps = Sleeps()
    retryer = standard(sleep=sleeps)
    script = Script(error, "never")
    ctx = make_ctx(retryer)

    with pytest.raises(type(error)) as raised:
        run(ctx, script)

    assert raised.value is error
    assert script.calls == 1
    assert error.attempts == 1  # type: ignore[attr-defined]
    assert ctx.metadata.get(keys.ATTEMPTS) == 1
    assert retryer.quota.available == 500  # a non-retryable error costs nothing
    assert sleeps == []


def test_a_non_retryable_error_after_a_retry_keeps_its_identity() -> None:
    rejected = ValidationError("bad", http_status=400)
    script = Script(unavailable(), rejected)

    with pytest.raises(ValidationError) as raised:
        run(make_ctx(standard()), script)

    assert raised.value is rejected
    assert rejected.attempts == 2  # type: ignore[attr-defined]


def test_throttling_codes_and_transient_codes_cover_the_standard_lists() -> None:
    assert {"Throttling", "ThrottlingException", "TooManyRequestsException", "SlowDown", "RequestLimitExceeded"} <= THROTTLING_CODES
    assert len(THROTTLING_CODES) == 14
    assert {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"} == TRANSIENT_CODES


# --------------------------------------------------------------------------- read timeouts


def test_read_timeout_is_retried_when_the_call_opts_in() -> None:
    retryer = standard()
    script = Script(ReadTimeoutError("read timed out"), "ok")
    ctx = make_ctx(retryer, retry_read_timeouts=True)

    assert run(ctx, script).result == "ok"
    assert script.calls == 2


def test_read_timeout_is_retried_when_the_retryer_opts_in_and_costs_ten_tokens() -> None:
    retryer = standard(retry_read_timeouts=True)
    script = Script(*(ReadTimeoutError("read timed out") for _ in range(3)))

    with pytest.raises(MaxAttemptsExceededError):
        run(make_ctx(retryer), script)

    assert script.calls == 3
    assert retryer.quota.available == 500 - 2 * 10


# --------------------------------------------------------------------------- quota


def test_an_empty_quota_stops_retrying_with_retry_quota_exceeded() -> None:
    retryer = standard(quota=RetryQuota(5))
    errors = [unavailable(), unavailable(), unavailable()]
    script = Script(*errors)
    ctx = make_ctx(retryer)

    with pytest.raises(RetryQuotaExceededError) as raised:
        run(ctx, script)

    assert script.calls == 2  # the first retry took the last 5 tokens
    assert (raised.value.available, raised.value.requested) == (0, 5)
    assert raised.value.__cause__ is errors[1]
    assert raised.value.last_error is errors[1]
    assert raised.value.attempts == 2  # type: ignore[attr-defined]
    assert raised.value.operation == "InvokeEndpoint"
    assert "retry quota exceeded, 0 available, 5 requested" in str(raised.value)
    assert ctx.metadata.get(keys.ATTEMPTS) == 2


def test_a_drained_quota_gives_a_first_failure_no_retry_at_all() -> None:
    quota = RetryQuota(500)
    assert quota.acquire(500)
    script = Script(unavailable(), "never")

    with pytest.raises(RetryQuotaExceededError) as raised:
        run(make_ctx(standard(quota=quota)), script)

    assert script.calls == 1
    assert raised.value.available == 0


def test_quota_refunds_the_last_retry_on_success_and_adds_one_for_a_first_attempt_success() -> None:
    quota = RetryQuota(500)
    retryer = standard(quota=quota)
    assert quota.acquire(100)

    run(make_ctx(retryer), Script(unavailable(), "ok"))
    assert quota.available == 400  # -5 for the retry, +5 when it succeeded

    run(make_ctx(retryer), Script("ok"))
    assert quota.available == 401  # +1 for a success without retries

    run(make_ctx(retryer), Script(unavailable(), unavailable(), "ok"))
    assert quota.available == 396  # two retries taken, only the one that succeeded refunded


def test_quota_never_grows_above_its_initial_capacity() -> None:
    retryer = standard()
    for _ in range(3):
        run(make_ctx(retryer), Script("ok"))
    assert retryer.quota.available == 500

    quota = RetryQuota(10)
    quota.release(7)
    assert quota.available == 10
    assert not quota.acquire(11)
    assert quota.available == 10


def test_quota_is_exact_under_many_threads() -> None:
    quota = RetryQuota(10_000)
    start = threading.Barrier(8)

    def take() -> None:
        start.wait()
        for _ in range(200):
            assert quota.acquire(5)

    def give() -> None:
        start.wait()
        for _ in range(100):
            quota.release(1)

    for work in (take, give):
        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if work is take:
            assert quota.available == 10_000 - 8 * 200 * 5
    assert quota.available == 2_000 + 8 * 100


def test_one_retryer_and_one_retry_middleware_shared_by_concurrent_calls() -> None:
    retryer = standard(quota=RetryQuota(5_000))
    retry = Retry()
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def calls() -> None:
        start.wait()
        for _ in range(20):
            ctx = make_ctx(retryer)
            try:
                run(ctx, Script(unavailable(), unavailable(), unavailable()), retry=retry)
            except MaxAttemptsExceededError as error:
                failures.append(error)
                assert ctx.metadata.get(keys.ATTEMPTS) == 3
            run(make_ctx(retryer), Script(unavailable(), "ok"), retry=retry)

    threads = [threading.Thread(target=calls) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(failures) == 160
    assert all(error.attempts == 3 for error in failures)  # type: ignore[attr-defined]
    assert retryer.quota.available == 5_000 - 160 * 2 * 5  # failed calls paid two retries each


def test_a_nested_call_inside_an_attempt_can_use_the_same_middleware_and_retryer() -> None:
    # tenacity keeps per-run state per thread; a call made from inside an attempt (a user's
    # middleware calling the client again) must not disturb the outer loop.
    retryer = standard()
    retry = Retry()
    inner_ctx = make_ctx(retryer)
    inner = Script(unavailable(), "inner ok")

    def outer_attempt(ctx: Context, in_: FinalizeInput) -> FinalizeOutput:
        if ctx.get(keys.ATTEMPT) == 2:
            assert run(inner_ctx, inner, retry=retry).result == "inner ok"
            return FinalizeOutput("outer ok")
        raise unavailable()

    outer_ctx = make_ctx(retryer)
    out = retry.handle(outer_ctx, FinalizeInput(HTTPRequest("POST", URL)), outer_attempt)

    assert out.result == "outer ok"
    assert outer_ctx.metadata.get(keys.ATTEMPTS) == 2
    assert inner_ctx.metadata.get(keys.ATTEMPTS) == 2
    assert retryer.quota.available == 500


# --------------------------------------------------------------------------- backoff


@pytest.mark.parametrize(
    ("rand", "attempt", "expected"),
    [
        (0.0, 1, 0.0),
        (0.0, 7, 0.0),
        (0.999, 1, 0.999),
        (0.999, 2, 1.998),
        (0.999, 3, 3.996),
        (0.999, 5, 15.984),
        (0.999, 6, 19.98),  # 2**5 = 32 is capped at 20 s
        (0.999, 1000, 19.98),
        (0.999, 0, 0.999),  # attempt numbers start at 1
        (-0.5, 3, 0.0),  # never negative, whatever random returns
        (1.5, 9, 20.0),  # never above the cap either
    ],
)
def test_backoff_is_full_jitter_capped_at_20_seconds(rand: float, attempt: int, expected: float) -> None:
    retryer = StandardRetryer(random=lambda: rand)
    assert retryer.retry_delay(attempt, unavailable()) == pytest.approx(expected)


def test_backoff_respects_max_backoff() -> None:
    retryer = StandardRetryer(random=lambda: 0.999, max_backoff=5.0)
    assert retryer.retry_delay(10, unavailable()) == pytest.approx(4.995)


def test_the_loop_sleeps_the_backoff_through_the_injected_sleep() -> None:
    sleeps = Sleeps()
    retryer = StandardRetryer(sleep=sleeps, random=lambda: 0.999, max_attempts=4)
    ctx = make_ctx(retryer)

    run(ctx, Script(unavailable(), unavailable(), unavailable(), "ok"))

    assert sleeps == pytest.approx([0.999, 1.998, 3.996])
    assert ctx.metadata.get(keys.RETRY_DELAYS) == sleeps


# --------------------------------------------------------------------------- adaptive


def test_adaptive_retryer_slows_down_after_throttles() -> None:
    script = [throttled(), throttled(), throttled(), "ok"]
    plain = FakeTime()
    run(make_ctx(StandardRetryer(sleep=plain.sleep, clock=plain.clock, random=lambda: 0.0, max_attempts=4)), Script(*script))
    adaptive_time = FakeTime()
    retryer = AdaptiveRetryer(sleep=adaptive_time.sleep, clock=adaptive_time.clock, random=lambda: 0.0, max_attempts=4)

    run(make_ctx(retryer), Script(throttled(), throttled(), throttled(), "ok"))

    assert plain.slept == [0.0, 0.0, 0.0]  # only the (zero) backoff
    assert retryer.rate_limiter.enabled
    # Each retry: the (zero) backoff, then a wait for a send token. The first throttle cuts to
    # 0.7 x the rate seen so far (one outcome, over at least 50 ms: 20 per second); each retry
    # was sent after the previous cut, so each of its throttles cuts by 0.7 again.
    assert adaptive_time.slept == pytest.approx([0.0, 1 / 14, 0.0, 1 / 9.8, 0.0, 1 / 6.86])


def test_a_clock_that_stands_still_cannot_make_the_wait_for_a_token_endless() -> None:
    """Tests inject a sleep that does nothing and a fixed clock: the token's wait is never
    asked again past what was reserved, so it ends."""
    slept: list[float] = []
    retryer = AdaptiveRetryer(sleep=slept.append, clock=lambda: 1000.0, random=lambda: 0.0, max_attempts=4)

    run(make_ctx(retryer), Script(throttled(), throttled(), throttled(), "ok"))
    assert 0 < len(slept) < 20

    limiter = ClientRateLimiter(clock=lambda: 1000.0, sleep=lambda seconds: None)
    limiter.update(throttled())
    assert [limiter.acquire() for _ in range(3)] == pytest.approx([1 / 14, 2 / 14, 3 / 14])  # as reserved, then done


def test_adaptive_retryer_sends_freely_until_the_first_throttle() -> None:
    fake = FakeTime()
    retryer = AdaptiveRetryer(sleep=fake.sleep, clock=fake.clock, random=lambda: 0.0)

    for _ in range(5):
        run(make_ctx(retryer), Script("ok"))
    run(make_ctx(retryer), Script(unavailable(), "ok"))

    assert fake.slept == [0.0]  # just the backoff: a 503 is not a throttle
    assert not retryer.rate_limiter.enabled


def test_rate_limiter_recovers_along_the_cubic_curve() -> None:
    fake = FakeTime()
    limiter = ClientRateLimiter(clock=fake.clock, sleep=fake.sleep)
    steady_traffic(limiter, fake, per_second=10, seconds=3)
    limiter.update(throttled())
    low = limiter.rate

    rates = []
    for _ in range(10):  # ten seconds of successes at ten requests a second
        for _ in range(10):
            fake.now += 0.1
            limiter.update(None)
        rates.append(limiter.rate)

    assert low == pytest.approx(7, rel=0.05)  # 0.7 x the measured 10 per second
    assert low < rates[0] < rates[4] == pytest.approx(20, rel=0.05)  # back up to twice what is measured
    assert max(rates) == pytest.approx(20, rel=0.05)


def test_attempts_queued_while_the_rate_was_low_go_sooner_once_it_climbs() -> None:
    fake = FakeTime()
    limiter = ClientRateLimiter(clock=fake.clock, sleep=fake.sleep)
    limiter.update(throttled())  # a burst answered by throttles at once: 0.7 x 20 per second
    queued = in_flight(limiter, 280)
    assert queued[-1].run(limiter.wait_left) == pytest.approx(280 / 14)

    for _ in range(400):  # the endpoint takes 40 a second again for ten seconds
        fake.now += 0.025
        limiter.update(None)

    assert limiter.rate > 60
    assert queued[-1].run(limiter.wait_left) == 0  # not the 10 s left at the rate it was queued at


def steady_traffic(limiter: ClientRateLimiter, fake: FakeTime, per_second: int, seconds: float) -> None:
    """Successful attempts at ``per_second`` for ``seconds``, each reserved and reported in turn."""
    for _ in range(int(per_second * seconds)):
        fake.now += 1 / per_second
        limiter.reserve()
        limiter.update(None)


def in_flight(limiter: ClientRateLimiter, count: int) -> list[contextvars.Context]:
    """``count`` attempts reserved now, each in a context of its own, as threads and tasks are."""
    attempts = [contextvars.copy_context() for _ in range(count)]
    for attempt in attempts:
        attempt.run(limiter.reserve)
    return attempts


def test_throttles_from_one_round_trip_cut_the_rate_once() -> None:
    fake = FakeTime()
    limiter = ClientRateLimiter(clock=fake.clock, sleep=fake.sleep)
    steady_traffic(limiter, fake, per_second=100, seconds=3)
    burst = in_flight(limiter, 32)

    fake.now += 0.02
    burst[0].run(limiter.update, throttled())
    cut = limiter.rate
    for attempt in burst[1:]:  # sent before that cut: the cut already answered them
        attempt.run(limiter.update, throttled())

    assert cut == pytest.approx(70, rel=0.05)  # 0.7 x the measured 100 per second
    assert limiter.rate == cut


def test_a_throttle_of_an_attempt_sent_after_the_cut_cuts_again() -> None:
    fake = FakeTime()
    limiter = ClientRateLimiter(clock=fake.clock, sleep=fake.sleep)
    steady_traffic(limiter, fake, per_second=100, seconds=3)
    before_cut = in_flight(limiter, 2)
    before_cut[0].run(limiter.update, throttled())
    first = limiter.rate
    after_cut = in_flight(limiter, 1)

    before_cut[1].run(limiter.update, throttled())
    after_cut[0].run(limiter.update, throttled())

    assert limiter.rate == pytest.approx(0.7 * first)


def test_a_throttle_before_the_first_half_second_cuts_from_what_was_seen_not_to_the_floor() -> None:
    fake = FakeTime()
    limiter = ClientRateLimiter(clock=fake.clock, sleep=fake.sleep)
    fake.now += 60  # the client sat idle before its first call: measuring starts with the first outcome
    for _ in range(30):
        fake.now += 0.001
        limiter.reserve()
        limiter.update(None)

    limiter.update(throttled())

    assert limiter.rate == pytest.approx(0.7 * 31 / 0.05)  # 31 outcomes in 30 ms, counted over at least 50 ms


def test_throttles_arriving_together_on_threads_cut_once() -> None:
    fake = FakeTime()
    limiter = ClientRateLimiter(clock=fake.clock, sleep=fake.sleep)
    steady_traffic(limiter, fake, per_second=100, seconds=3)
    reserved = threading.Barrier(16)
    rates: list[float] = []

    def attempt() -> None:
        limiter.reserve()
        reserved.wait()  # every thread's attempt is in flight before any is answered
        limiter.update(throttled())
        rates.append(limiter.rate)

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert rates == [pytest.approx(70, rel=0.05)] * 16


def test_throttles_arriving_together_on_asyncio_tasks_cut_once() -> None:
    fake = FakeTime()
    limiter = ClientRateLimiter(clock=fake.clock, sleep=fake.sleep)
    steady_traffic(limiter, fake, per_second=100, seconds=3)

    async def burst() -> list[float]:
        answered = asyncio.Event()
        rates: list[float] = []

        async def attempt() -> None:
            limiter.reserve()
            await answered.wait()  # every task's attempt is in flight before any is answered
            limiter.update(throttled())
            rates.append(limiter.rate)

        tasks = [asyncio.create_task(attempt()) for _ in range(16)]
        await asyncio.sleep(0)
        answered.set()
        await asyncio.gather(*tasks)
        return rates

    assert asyncio.run(burst()) == [pytest.approx(70, rel=0.05)] * 16


# --------------------------------------------------------------------------- per-call options


def test_per_call_max_attempts_overrides_the_retryer() -> None:
    retryer = standard()
    script = Script(*(unavailable() for _ in range(5)))

    with pytest.raises(MaxAttemptsExceededError) as raised:
        run(make_ctx(retryer, max_attempts=5), script)

    assert raised.value.attempts == 5
    assert [seen.max_attempts for seen in script.seen] == [5] * 5
    assert retryer.max_attempts == 3  # the shared retryer is untouched


def test_per_call_single_attempt_propagates_the_error_unchanged() -> None:
    error = unavailable()
    script = Script(error, "never")

    with pytest.raises(ServiceUnavailable) as raised:
        run(make_ctx(standard(), max_attempts=1), script)

    assert raised.value is error
    assert script.calls == 1


def test_no_retryer_makes_one_attempt_whatever_max_attempts_says() -> None:
    error = unavailable()
    script = Script(error, "never")
    ctx = make_ctx(NoRetryer(), max_attempts=5)

    with pytest.raises(ServiceUnavailable) as raised:
        run(ctx, script)

    assert raised.value is error
    assert script.seen[0].max_attempts == 1


def test_without_a_retryer_in_the_options_the_call_gets_one_attempt() -> None:
    error = unavailable()
    script = Script(error, "never")
    ctx = make_ctx(None)

    with pytest.raises(ServiceUnavailable):
        run(ctx, script)

    assert script.calls == 1
    assert ctx.metadata.get(keys.ATTEMPTS) == 1


# --------------------------------------------------------------------------- bodies and responses


def test_a_file_body_is_rewound_to_its_first_position_before_each_retry() -> None:
    body = io.BytesIO(b"xxpayload")
    body.seek(2)
    script = Script(unavailable(), unavailable(), "ok")

    run(make_ctx(standard()), script, body=body)

    assert [seen.body for seen in script.seen] == [b"payload"] * 3


class Unseekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), len(self._data))
        buffer[:size], self._data = self._data[:size], self._data[size:]
        return size


def test_an_unseekable_body_is_not_retried_and_the_error_says_why() -> None:
    error = unavailable()
    retryer = standard()
    script = Script(error, "never")

    with pytest.raises(ServiceUnavailable) as raised:
        run(make_ctx(retryer), script, body=Unseekable(b"stream"))

    assert raised.value is error
    assert script.calls == 1
    assert any("could not be rewound" in note for note in error.__notes__)
    assert retryer.quota.available == 500


def test_the_failed_attempts_response_is_closed_before_retrying() -> None:
    bodies = [BytesBody(b"busy"), BytesBody(b"busy"), BytesBody(b"ok")]
    responses = [HTTPResponse(503, body=bodies[0]), HTTPResponse(503, body=bodies[1])]
    final = HTTPResponse(200, body=bodies[2])
    script = Script(Respond(responses[0], unavailable()), Respond(responses[1], unavailable()), final)

    out = run(make_ctx(standard()), script)

    assert out.result is final
    assert [body.closed for body in bodies] == [True, True, False]  # the success stays open for its reader


# --------------------------------------------------------------------------- clock skew


def date_header(offset: float) -> dict[str, str]:
    return {"Date": formatdate(NOW + offset, usegmt=True)}


def test_clock_skew_error_is_retried_with_the_servers_clock_offset() -> None:
    skewed = APIError("skewed", code="RequestTimeTooSkewed", http_status=403)
    script = Script(Respond(HTTPResponse(403, headers=date_header(3600)), skewed), "ok")
    ctx = make_ctx(standard())

    assert run(ctx, script).result == "ok"

    assert script.seen[0].clock_offset is None
    assert script.seen[1].clock_offset == pytest.approx(3600, abs=1)
    assert ctx.get(keys.CLOCK_OFFSET) == pytest.approx(3600, abs=1)


def test_later_calls_start_with_the_clock_offset_an_earlier_call_learnt() -> None:
    retry = Retry(now=lambda: NOW)
    skewed = APIError("skewed", code="RequestTimeTooSkewed", http_status=403)
    first = Script(Respond(HTTPResponse(403, headers=date_header(-3600)), skewed), "ok")
    run(make_ctx(standard()), first, retry=retry)

    later = Script("ok")
    ctx = make_ctx(standard())
    assert run(ctx, later, retry=retry).result == "ok"

    assert later.calls == 1
    assert later.seen[0].clock_offset == pytest.approx(-3600, abs=1)
    assert ctx.metadata.get(keys.ATTEMPTS) == 1
    # A call that sets its own offset keeps it.
    own = Script("ok")
    ctx = make_ctx(standard())
    ctx.set(keys.CLOCK_OFFSET, 5.0)
    run(ctx, own, retry=retry)
    assert own.seen[0].clock_offset == 5.0


def test_retry_middleware_sharing_a_clock_offset_share_what_one_learnt() -> None:
    shared = ClockOffset()
    invoke, stream = Retry(now=lambda: NOW, clock_offset=shared), Retry(now=lambda: NOW, clock_offset=shared)
    skewed = APIError("skewed", code="RequestTimeTooSkewed", http_status=403)
    run(make_ctx(standard()), Script(Respond(HTTPResponse(403, headers=date_header(600)), skewed), "ok"), retry=invoke)

    other = Script("ok")
    run(make_ctx(standard()), other, retry=stream)
    assert shared.seconds == pytest.approx(600, abs=1)
    assert other.seen[0].clock_offset == pytest.approx(600, abs=1)


def test_a_new_skew_replaces_the_learnt_offset() -> None:
    retry = Retry(now=lambda: NOW)
    for offset in (3600, 7200):
        skewed = APIError("skewed", code="RequestTimeTooSkewed", http_status=403)
        script = Script(Respond(HTTPResponse(403, headers=date_header(offset)), skewed), "ok")
        run(make_ctx(standard()), script, retry=retry)
        assert script.seen[1].clock_offset == pytest.approx(offset, abs=1)
    assert run(make_ctx(standard()), later := Script("ok"), retry=retry).result == "ok"
    assert later.seen[0].clock_offset == pytest.approx(7200, abs=1)


def test_signature_error_is_retried_only_when_the_server_clock_is_far_off() -> None:
    def signature_error() -> APIError:
        return APIError("signature", code="InvalidSignatureException", http_status=403)

    far = Script(Respond(HTTPResponse(403, headers=date_header(-3600)), signature_error()), "ok")
    assert run(make_ctx(standard()), far).result == "ok"
    assert far.seen[1].clock_offset == pytest.approx(-3600, abs=1)

    error = signature_error()
    near = Script(Respond(HTTPResponse(403, headers=date_header(60)), error), "never")
    with pytest.raises(APIError) as raised:
        run(make_ctx(standard()), near)
    assert raised.value is error
    assert near.calls == 1


def test_a_stale_response_from_an_earlier_attempt_is_not_read_for_clock_skew() -> None:
    error = APIError("signature", code="SignatureDoesNotMatch", http_status=403)
    script = Script(Respond(HTTPResponse(503, headers=date_header(3600)), unavailable()), error)

    with pytest.raises(APIError) as raised:
        run(make_ctx(standard()), script)

    assert raised.value is error  # the second attempt produced no response of its own
    assert script.calls == 2


# --------------------------------------------------------------------------- headers without Retry


def test_retry_metrics_header_without_retry_reports_one_attempt() -> None:
    sent: list[HTTPRequest] = []

    def terminal(ctx: Context, request: HTTPRequest) -> HTTPResponse:
        sent.append(request)
        return HTTPResponse(200)

    stack = Stack("InvokeEndpoint", lambda: HTTPRequest("POST", URL))
    stack.finalize.add(Retry())
    stack.finalize.add(RetryMetricsHeader())
    stack.finalize.remove("Retry")

    stack.handler(terminal)(make_ctx(standard()), None)

    assert sent[0].headers["amz-sdk-request"] == "attempt=1; max=1"


def test_client_request_id_sets_header_and_context() -> None:
    ctx = make_ctx()
    request = HTTPRequest("POST", URL)

    ClientRequestID().handle(ctx, BuildInput(request), lambda c, i: BuildOutput(None))

    value = request.headers["amz-sdk-invocation-id"]
    assert uuid.UUID(value).version == 4
    assert ctx.get(keys.INVOCATION_ID) == value
    assert ctx.metadata.get(keys.INVOCATION_ID_META) == value
    assert [ClientRequestID().id, Retry().id, RetryMetricsHeader().id] == ["ClientRequestID", "Retry", "RetryMetricsHeader"]


# --------------------------------------------------------------------------- logging and construction


def test_retry_decisions_are_logged_at_debug_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.retry")
    secret_message = "a message that echoes the request"
    script = Script(ServiceUnavailable(secret_message, http_status=503), InternalFailure(secret_message, http_status=500))

    with caplog.at_level(logging.DEBUG, logger="tests.retry"), pytest.raises(MaxAttemptsExceededError):
        run(make_ctx(standard(max_attempts=2), log_mode=LogMode.RETRIES, logger=logger), script)

    messages = [record.getMessage() for record in caplog.records]
    assert any("attempt 1/2 failed with ServiceUnavailable(code=ServiceUnavailable, status=503); retrying in 0.500 s" in m for m in messages)
    assert any("giving up after attempt 2/2" in m for m in messages)
    assert not any(secret_message in m for m in messages)


def test_retries_are_not_logged_by_default(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="smruntime"):
        run(make_ctx(standard()), Script(unavailable(), "ok"))
    assert caplog.records == []


def test_new_retryer_builds_each_mode() -> None:
    sleeps = Sleeps()
    standard_retryer = new_retryer("standard", 4, retry_read_timeouts=True, sleep=sleeps)
    assert isinstance(standard_retryer, StandardRetryer)
    assert (standard_retryer.max_attempts, standard_retryer.retry_read_timeouts) == (4, True)
    adaptive = new_retryer("Adaptive", 2)
    assert isinstance(adaptive, AdaptiveRetryer)
    assert adaptive.max_attempts == 2
    none = new_retryer("none", 5, retry_read_timeouts=True)
    assert isinstance(none, NoRetryer)
    assert none.max_attempts == 1
    first, second = new_retryer("standard", 3), new_retryer("standard", 3)
    assert isinstance(first, StandardRetryer) and isinstance(second, StandardRetryer)
    assert first.quota is not second.quota  # each client gets its own quota


def test_new_retryer_rejects_bad_input() -> None:
    with pytest.raises(InvalidParamsError, match="retry_mode"):
        new_retryer("legacy", 3)
    with pytest.raises(InvalidParamsError, match="max_attempts"):
        new_retryer("standard", 0)
    with pytest.raises(TypeError, match="max_backof"):
        new_retryer("standard", 3, max_backof=1.0)


# --------------------------------------------------------------------------- a call that goes on


def test_a_call_that_goes_on_from_an_earlier_one_keeps_its_id_and_counts_on() -> None:
    # What a bidirectional stream opened again after a refusal sets on the new call's context.
    sent: list[HTTPRequest] = []
    ctx = make_ctx(standard())
    ctx.set(keys.CONTINUED_INVOCATION_ID, "carried-id")
    ctx.set(keys.FIRST_ATTEMPT, 2)

    _retry_stack(sent, [unavailable(), HTTPResponse(200)])(ctx, None)

    assert [r.headers["amz-sdk-request"] for r in sent] == ["attempt=2; max=3", "attempt=3; max=3"]
    assert {r.headers["amz-sdk-invocation-id"] for r in sent} == {"carried-id"}
    assert ctx.metadata.get(keys.ATTEMPTS) == 3


def test_the_stack_run_again_with_the_same_context_is_a_call_of_its_own() -> None:
    # A middleware above Retry calling next a second time: what the first run left on the
    # context does not carry over, so the second run has its own id and its attempts from 1.
    sent: list[HTTPRequest] = []
    handler = _retry_stack(sent, [unavailable(), unavailable(), unavailable(), unavailable(), HTTPResponse(200)])
    ctx = make_ctx(standard())

    with pytest.raises(MaxAttemptsExceededError) as raised:
        handler(ctx, None)
    assert raised.value.attempts == 3  # type: ignore[attr-defined]
    handler(ctx, None)

    assert [r.headers["amz-sdk-request"] for r in sent] == [
        "attempt=1; max=3", "attempt=2; max=3", "attempt=3; max=3", "attempt=1; max=3", "attempt=2; max=3",
    ]
    first_id, second_id = sent[0].headers["amz-sdk-invocation-id"], sent[3].headers["amz-sdk-invocation-id"]
    assert first_id != second_id and {r.headers["amz-sdk-invocation-id"] for r in sent[3:]} == {second_id}
    assert ctx.metadata.get(keys.ATTEMPTS) == 2
