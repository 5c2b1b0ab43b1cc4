"""The Retry middleware and its companions: ClientRequestID, RetryMetricsHeader, ClockOffset.

The loop itself is tenacity's ``Retrying`` (``AsyncRetrying`` on an asyncio chain: the same
strategy callbacks, an awaited sleep). The first attempt runs outside it: tenacity costs ~20 µs
per run (it builds a ``Future`` per attempt), which a call that succeeds at once should not pay,
and tenacity is imported only when a first retry is considered.
"""

from __future__ import annotations

import functools
import random as _random
import time
from typing import IO, TYPE_CHECKING, Any, Callable, cast

import attrs

from smruntime import keys
from smruntime import middleware as _mw
from smruntime.errors import APIError, MaxAttemptsExceededError, ReadTimeoutError, RetryQuotaExceededError
from smruntime.logs import LogMode, logger_for
from smruntime.middleware import AsyncNext, Next, Transform
from smruntime.middleware.reprs import fields_repr
from smruntime.retry.policy import (
    NoRetryer,
    ReleaseToken,
    Retryer,
    _noop_release,
    async_sleep_of,
    await_attempt,
    reserve_attempt,
    wait_for_attempt,
)
from smruntime.stack_types import BuildInput, BuildOutput, Context, FinalizeInput, FinalizeOutput

if TYPE_CHECKING:
    from tenacity import AsyncRetrying, RetryCallState, Retrying

    from smruntime.http import HTTPResponse
    from smruntime.options import Options

__all__ = [
    "CLOCK_SKEW_CODES",
    "INVOCATION_ID_HEADER",
    "RETRY_METRICS_HEADER",
    "SIGNATURE_CODES",
    "SKEW_THRESHOLD",
    "ClientRequestID",
    "ClockOffset",
    "Retry",
    "RetryMetricsHeader",
]

CLOCK_SKEW_CODES = frozenset({"RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture"})
"""Always retried: the next attempt is signed with the server's clock (from its ``Date``)."""

SIGNATURE_CODES = frozenset({"InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure"})
"""Retried only when the server's ``Date`` is more than :data:`SKEW_THRESHOLD` from ours."""

SKEW_THRESHOLD = 240.0
"""Seconds of clock difference that make a signature error a clock-skew error (Go: 4 min)."""

INVOCATION_ID_HEADER = "amz-sdk-invocation-id"
RETRY_METRICS_HEADER = "amz-sdk-request"

_SKEW_ALWAYS = frozenset(code.lower() for code in CLOCK_SKEW_CODES)
_SKEW_IF_OFF = frozenset(code.lower() for code in SIGNATURE_CODES)

def _uuid4(getrandbits: Callable[[int], int] = _random.getrandbits) -> str:
    """A random (version 4) UUID string: ``str(uuid.uuid4())`` at a third of the cost.

    An invocation ID only has to be unique, not secret, so ``random`` (re-seeded in a forked
    child) serves instead of ``os.urandom``'s system call. The version digit is written in
    and the variant digit picked from ``8 9 a b``, as uuid4 sets their bits.
    """
    text = "%032x" % getrandbits(128)  # noqa: UP031
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-{_VARIANT_DIGIT[text[16]]}{text[17:20]}-{text[20:]}"


_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
"""A random hex digit → the RFC 4122 variant digit with the same two low bits."""


class ClientRequestID(Transform[BuildInput, BuildOutput]):
    """Build step: one ``amz-sdk-invocation-id`` (a uuid4) shared by every attempt of a call; a
    call that goes on from an earlier one sends that one's (``keys.CONTINUED_INVOCATION_ID``)."""

    id = "ClientRequestID"

    def before(self, ctx: Context, in_: BuildInput) -> BuildInput:
        invocation_id = ctx.get(keys.CONTINUED_INVOCATION_ID) or _uuid4()
        in_.request.headers[INVOCATION_ID_HEADER] = invocation_id
        ctx.set(keys.INVOCATION_ID, invocation_id)
        ctx.metadata.set(keys.INVOCATION_ID_META, invocation_id)
        return in_


def _retry_metrics(attempt: int, max_attempts: int) -> str:
    """The ``amz-sdk-request`` value."""
    return f"attempt={attempt}; max={max_attempts}"


class RetryMetricsHeader(Transform[FinalizeInput, FinalizeOutput]):
    """Finalize step, after Retry and before Signing: ``amz-sdk-request: attempt=N; max=M``.

    Without a Retry middleware in the stack it reports ``attempt=1; max=1`` (Go issue #953).
    """

    id = "RetryMetricsHeader"
    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value = functools.lru_cache(maxsize=64)(_retry_metrics)  # a client sends the same few

    def before(self, ctx: Context, in_: FinalizeInput) -> FinalizeInput:
        attempt = ctx.get(keys.ATTEMPT, 1)
        max_attempts = ctx.get(keys.MAX_ATTEMPTS, 1)
        in_.request.headers[RETRY_METRICS_HEADER] = self._value(attempt, max_attempts)
        return in_


_NO_RETRYER = NoRetryer()
_NOTHING_TO_REWIND = -1  # the body is bytes or absent


@attrs.define(slots=True, eq=False)
class ClockOffset:
    """The server's clock minus ours, in seconds, as the last clock-skew rejection revealed
    (None until one does). A client shares one among its operations' Retry middleware."""

    __repr__ = fields_repr

    seconds: float | None = None



@attrs.define(slots=True, eq=False)
class Retry:
    """Finalize step: runs the rest of the chain once per attempt until success or give-up.

    The retryer is ``ctx.options.retryer`` (one attempt when it is None) and, if it allows,
    ``ctx.options.max_attempts`` bounds this call, both read per call. Each attempt gets a fresh
    copy of the request (so Signing below signs it anew), ``keys.ATTEMPT``/``keys.MAX_ATTEMPTS``,
    and a file body rewound to where it was at the first attempt. The failed attempt's response
    is closed before the backoff sleep. ``keys.ATTEMPTS`` and ``keys.RETRY_DELAYS`` are recorded
    in the metadata on success and failure, and on the raised error as ``attempts`` and
    ``retry_delays``. A streamed response is never retried once its events reach the caller:
    the stack has returned by then, so nothing here can see those errors.

    ``now`` is the wall clock compared with the server's ``Date`` for clock skew. The offset a
    clock-skew rejection reveals goes into ``clock_offset``, so later calls sign with the
    server's clock from their first attempt (the client gives all its operations one, as the Go
    SDK keeps one per client); a call that sets ``keys.CLOCK_OFFSET`` itself keeps its own.

    ``handle`` and ``ahandle`` are thin shells: what to retry, how long to wait, what to record
    is decided by ``_Loop`` and tenacity's strategies, shared by both.
    """

    __repr__ = fields_repr

    now: Callable[[], float] = time.time
    clock_offset: ClockOffset = attrs.field(factory=ClockOffset, repr=False)
    id: str = attrs.field(default="Retry", init=False)
    # One tenacity controller per retryer, reused by every call (tenacity keeps its per-run
    # state in thread-local storage, so concurrent calls may share it).
    _controller: tuple[Retryer, Retrying] | None = attrs.field(default=None, init=False, repr=False)
    _async_controller: tuple[Retryer, AsyncRetrying] | None = attrs.field(default=None, init=False, repr=False)

    def handle(self, ctx: Context, in_: FinalizeInput, next: Next[FinalizeInput, FinalizeOutput]) -> FinalizeOutput:
        retryer, max_attempts, first, position, raw_before = self._start(ctx, in_)
        wait, release_attempt = reserve_attempt(retryer)
        if wait > 0:
            wait_for_attempt(retryer, wait)
        release = retryer.get_initial_token()
        try:
            out = next(ctx, _mw.FinalizeInput(in_.request.copy()))
        except Exception as error:
            _release(release_attempt, release, error)
            return _Loop(self, ctx, in_, next, retryer, max_attempts, first, position, raw_before).resume(error)
        release_attempt(None)  # (not through _release: this runs on every call)
        release(None)
        ctx.metadata.set(keys.ATTEMPTS, first)
        ctx.metadata.set(keys.RETRY_DELAYS, [])
        return out

    async def ahandle(
        self, ctx: Context, in_: FinalizeInput, next: AsyncNext[FinalizeInput, FinalizeOutput]
    ) -> FinalizeOutput:
        retryer, max_attempts, first, position, raw_before = self._start(ctx, in_)
        wait, release_attempt = reserve_attempt(retryer)
        if wait > 0:
            await await_attempt(retryer, wait)
        release = retryer.get_initial_token()
        try:
            out = await next(ctx, _mw.FinalizeInput(in_.request.copy()))
        except Exception as error:
            _release(release_attempt, release, error)
            return await _Loop(self, ctx, in_, next, retryer, max_attempts, first, position, raw_before).aresume(error)
        release_attempt(None)  # (not through _release: this runs on every call)
        release(None)
        ctx.metadata.set(keys.ATTEMPTS, first)
        ctx.metadata.set(keys.RETRY_DELAYS, [])
        return out

    def _start(self, ctx: Context, in_: FinalizeInput) -> tuple[Retryer, int, int, int | None, HTTPResponse | None]:
        """The call's retryer, attempt limit and first attempt's number, where its body starts;
        sets the first attempt's keys. The number is 1 unless the call goes on from an earlier
        one (``keys.FIRST_ATTEMPT``: a bidirectional stream opened again)."""
        options: Options | None = ctx.options
        retryer: Retryer = _NO_RETRYER
        max_attempts = 1
        if options is not None and options.retryer is not None:
            retryer = options.retryer
            max_attempts = retryer.max_attempts
            if options.max_attempts and retryer.per_call_max_attempts:
                max_attempts = options.max_attempts
            if max_attempts < 1:
                max_attempts = 1
        request = in_.request
        body = request.body
        position: int | None = _NOTHING_TO_REWIND
        if body is not None and not isinstance(body, (bytes, bytearray, str)):
            position = _body_position(body)
        first = ctx.get(keys.FIRST_ATTEMPT) or 1
        ctx.set(keys.ATTEMPT, first)
        ctx.set(keys.MAX_ATTEMPTS, max_attempts)
        learnt = self.clock_offset.seconds
        if learnt is not None and ctx.get(keys.CLOCK_OFFSET) is None:
            ctx.set(keys.CLOCK_OFFSET, learnt)
        return retryer, max_attempts, first, position, ctx.get(keys.RAW_RESPONSE)

    def _controller_for(self, retryer: Retryer) -> Retrying:
        cached = self._controller
        if cached is not None and cached[0] is retryer:
            return cached[1]
        controller = _new_controller(retryer)
        self._controller = (retryer, controller)  # one atomic store; a race only builds twice
        return controller

    def _async_controller_for(self, retryer: Retryer) -> AsyncRetrying:
        cached = self._async_controller
        if cached is not None and cached[0] is retryer:
            return cached[1]
        from tenacity import AsyncRetrying

        controller = AsyncRetrying(sleep=async_sleep_of(retryer), **_STRATEGIES)
        self._async_controller = (retryer, controller)
        return controller


def _release(release_attempt: ReleaseToken, release: ReleaseToken, error: BaseException | None) -> None:
    """An attempt is over: give back its rate-limiter and quota tokens."""
    release_attempt(error)
    release(error)


def _body_position(body: IO[bytes]) -> int | None:
    """Where a file body starts, or None when it cannot be rewound."""
    try:
        if not body.seekable():
            return None
        return body.tell()
    except (AttributeError, OSError, ValueError):
        return None


def _new_controller(retryer: Retryer) -> Retrying:
    from tenacity import Retrying

    return Retrying(sleep=retryer.sleep, **_STRATEGIES)


def _loop_of(state: RetryCallState) -> _Loop:
    loop: _Loop = state.args[0]
    return loop


def _error_of(state: RetryCallState) -> BaseException:
    outcome = state.outcome
    if outcome is None:
        raise RuntimeError("retry strategy called before an attempt finished")
    error = outcome.exception()
    if error is None:
        raise RuntimeError("retry strategy called after a successful attempt")
    return error


def _should_retry(state: RetryCallState) -> bool:
    outcome = state.outcome
    if outcome is None or not outcome.failed:
        return False
    return _loop_of(state).should_retry(_error_of(state))


def _delay(state: RetryCallState) -> float:
    loop = _loop_of(state)
    return loop.retryer.retry_delay(loop.attempt, _error_of(state))


def _stop(state: RetryCallState) -> bool:
    return _loop_of(state).stop(_error_of(state))


def _before_sleep(state: RetryCallState) -> None:
    _loop_of(state).before_sleep(float(state.upcoming_sleep), _error_of(state))


def _give_up(state: RetryCallState) -> Any:
    _loop_of(state).give_up(_error_of(state))


# Every strategy reads the call's state from the run's first argument (a _Loop), so one
# controller serves every call of the retryer, sync or async.
_STRATEGIES: dict[str, Any] = {
    "retry": _should_retry,
    "wait": _delay,
    "stop": _stop,
    "before_sleep": _before_sleep,
    "retry_error_callback": _give_up,
}


def _attempt(loop: _Loop) -> FinalizeOutput:
    return loop.attempt_once()


async def _aattempt(loop: _Loop) -> FinalizeOutput:
    return await loop.aattempt_once()


class _Loop:
    """One call's retry state once its first attempt has failed."""

    __slots__ = (
        "attempt",
        "ctx",
        "delays",
        "failure",
        "in_",
        "max_attempts",
        "middleware",
        "next",
        "offset",
        "pending",
        "position",
        "raw_before",
        "read_timeouts",
        "release",
        "retryer",
    )

    def __init__(
        self,
        middleware: Retry,
        ctx: Context,
        in_: FinalizeInput,
        next: Any,  # the rest of the chain: Next, or AsyncNext for aresume
        retryer: Retryer,
        max_attempts: int,
        first: int,
        position: int | None,
        raw_before: HTTPResponse | None,
    ) -> None:
        self.middleware = middleware
        self.ctx = ctx
        self.in_ = in_
        self.next = next
        self.retryer = retryer
        self.max_attempts = max_attempts
        self.position = position
        self.raw_before = raw_before
        self.attempt = first
        self.delays: list[float] = []
        self.pending: BaseException | None = None
        self.release: ReleaseToken = _noop_release
        self.failure: BaseException | None = None
        self.offset: float | None = None
        options = ctx.options
        self.read_timeouts = bool(options is not None and options.retry_read_timeouts)

    def resume(self, first: BaseException) -> FinalizeOutput:
        """Hand the failed first attempt to tenacity, which replays its outcome and goes on."""
        self.pending = first
        controller = self.middleware._controller_for(self.retryer)
        try:
            out: FinalizeOutput = controller(_attempt, self)
        except BaseException as error:
            self._record(error)
            raise
        self._record(None)
        return out

    async def aresume(self, first: BaseException) -> FinalizeOutput:
        """The async shell of :meth:`resume`."""
        self.pending = first
        controller = self.middleware._async_controller_for(self.retryer)
        try:
            out: FinalizeOutput = await controller(_aattempt, self)
        except BaseException as error:
            self._record(error)
            raise
        self._record(None)
        return out

    def attempt_once(self) -> FinalizeOutput:
        wait, release_attempt, release = self._next_attempt()
        if wait > 0:
            wait_for_attempt(self.retryer, wait)
        try:
            out: FinalizeOutput = self.next(self.ctx, _mw.FinalizeInput(self.in_.request.copy()))
        except Exception as error:
            _release(release_attempt, release, error)
            raise
        _release(release_attempt, release, None)
        return out

    async def aattempt_once(self) -> FinalizeOutput:
        wait, release_attempt, release = self._next_attempt()
        if wait > 0:
            await await_attempt(self.retryer, wait)
        try:
            out: FinalizeOutput = await self.next(self.ctx, _mw.FinalizeInput(self.in_.request.copy()))
        except Exception as error:
            _release(release_attempt, release, error)
            raise
        _release(release_attempt, release, None)
        return out

    def _next_attempt(self) -> tuple[float, ReleaseToken, ReleaseToken]:
        """Start the next attempt: ``(seconds to wait first, attempt release, quota release)``."""
        pending = self.pending
        if pending is not None:
            # The first attempt already ran outside tenacity: report its outcome.
            self.pending = None
            raise pending
        ctx = self.ctx
        self.attempt += 1
        ctx.set(keys.ATTEMPT, self.attempt)
        self.raw_before = ctx.get(keys.RAW_RESPONSE)
        wait, release_attempt = reserve_attempt(self.retryer)
        release, self.release = self.release, _noop_release
        return wait, release_attempt, release

    def should_retry(self, error: BaseException) -> bool:
        if not isinstance(error, Exception) or self.max_attempts <= 1:
            return False
        retryable, self.offset = self._clock_skew(error)
        if not retryable:
            retryable = self.retryer.is_retryable(error) or (self.read_timeouts and isinstance(error, ReadTimeoutError))
        if not retryable:
            self._log("attempt %d/%d failed with %s; not retryable", self.attempt, self.max_attempts, _describe(error))
            return False
        if self.attempt < self.max_attempts:
            problem = self._rewind()
            if problem is not None:
                error.add_note(f"smruntime: not retried: the request body could not be rewound ({problem})")
                self._log("attempt %d/%d failed with %s; not retried: %s", self.attempt, self.max_attempts, _describe(error), problem)
                return False
        return True

    def stop(self, error: BaseException) -> bool:
        if self.attempt >= self.max_attempts:
            self.failure = MaxAttemptsExceededError(self.attempt, error, operation=self.ctx.operation_name)
            return True
        try:
            self.release = self.retryer.get_retry_token(error)
        except RetryQuotaExceededError as exhausted:
            if exhausted.operation is None:
                exhausted.operation = self.ctx.operation_name
            self.failure = exhausted
            return True
        return False

    def before_sleep(self, delay: float, error: BaseException) -> None:
        self.delays.append(delay)
        raw = self._raw_response()
        if raw is not None:
            try:
                # Release the connection before sleeping (an asyncio response that is still
                # live was already released by ErrorCloseResponseBody: it has no sync close).
                close = getattr(raw, "close", None)
                if close is not None:
                    close()
            except Exception:  # a broken body must not hide the error being retried
                pass
        if self.offset is not None:
            self.ctx.set(keys.CLOCK_OFFSET, self.offset)
            self.middleware.clock_offset.seconds = self.offset
        self._log(
            "attempt %d/%d failed with %s; retrying in %.3f s%s",
            self.attempt,
            self.max_attempts,
            _describe(error),
            delay,
            "" if self.offset is None else f" with clock offset {self.offset:+.1f} s",
        )

    def give_up(self, error: BaseException) -> None:
        failure = self.failure
        if failure is None:  # pragma: no cover - stop() always sets it first
            raise error
        self._log("giving up after attempt %d/%d: %s", self.attempt, self.max_attempts, _describe(failure))
        raise failure from error

    def _record(self, error: BaseException | None) -> None:
        metadata = self.ctx.metadata
        metadata.set(keys.ATTEMPTS, self.attempt)
        metadata.set(keys.RETRY_DELAYS, list(self.delays))
        if error is not None:
            for name, value in (("attempts", self.attempt), ("retry_delays", list(self.delays))):
                if getattr(error, name, None) is None:
                    try:
                        setattr(error, name, value)
                    except (AttributeError, TypeError):
                        pass

    def _rewind(self) -> str | None:
        """Rewind a file body for the next attempt; a reason when that is impossible."""
        position = self.position
        if position == _NOTHING_TO_REWIND:
            return None
        if position is None:
            return "it is an unseekable stream"
        try:
            cast("IO[bytes]", self.in_.request.body).seek(position)  # a position was recorded: a file
        except (AttributeError, OSError, ValueError) as problem:
            return f"seek failed: {type(problem).__name__}"
        return None

    def _raw_response(self) -> HTTPResponse | None:
        """The failed attempt's own response (not one left over from an earlier attempt)."""
        raw = self.ctx.get(keys.RAW_RESPONSE)
        return None if raw is self.raw_before else raw

    def _clock_skew(self, error: BaseException) -> tuple[bool, float | None]:
        """Whether ``error`` is a clock-skew error, and the server's clock offset if known."""
        if not isinstance(error, APIError):
            return False, None
        code = error.code.lower()
        always = code in _SKEW_ALWAYS
        if not always and code not in _SKEW_IF_OFF:
            return False, None
        offset = self._server_offset()
        if always:
            return True, offset
        if offset is not None and abs(offset) > SKEW_THRESHOLD:
            return True, offset
        return False, None

    def _server_offset(self) -> float | None:
        raw = self._raw_response()
        date = raw.headers.get("Date") if raw is not None else None
        if not date:
            return None
        from email.utils import parsedate_to_datetime  # only after a clock-skew error: kept off start-up

        try:
            server_time = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        return server_time - self.middleware.now()

    def _log(self, message: str, *args: Any) -> None:
        options = self.ctx.options
        if options is None or not (options.log_mode & LogMode.RETRIES):
            return
        logger_for(self.ctx).debug("%s: " + message, self.ctx.operation_name, *args)


def _describe(error: BaseException) -> str:
    """An error's class, code and status for logs: never its message, which may echo input."""
    if isinstance(error, APIError):
        return f"{type(error).__name__}(code={error.code}, status={error.http_status})"
    return type(error).__name__
