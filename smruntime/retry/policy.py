"""Retry policies: the ``Retryer`` protocol and the standard, adaptive and no-retry retryers.

The adaptive retryer is defined in :mod:`smruntime.retry.adaptive`, loaded when first used;
it is importable from here too.

Standard mode (botocore's ``standard`` mode; aws-sdk-go-v2's ``retry.Standard`` in its quota):

- at most ``max_attempts`` attempts in all, the first included (3);
- full-jitter backoff ``random() * min(2 ** (attempt - 1), max_backoff)`` seconds, where
  ``attempt`` is the number of the attempt that just failed: at most 1, 2, 4, 8, 16 s, then
  20 s (botocore's formula; Go's legacy one is ``2 ** attempt``);
- a client-wide :class:`RetryQuota` of 500 tokens: a retry costs 5 (10 after a timeout), a
  success after retries refunds what the last retry took, a first-attempt success adds 1 (never
  above the initial 500); an empty quota stops retrying with ``RetryQuotaExceededError``.

Adaptive mode adds a CUBIC client-side rate limiter that switches on at the first throttling
error and then makes every attempt wait (through the injected ``sleep``) for a send token.

What is retried is decided from the errors' own facts, never from messages: ``retryable``
(HTTP 500/502/503/504, throttling and transient codes, transport failures before the request was
sent), plus clock-skew errors (the next attempt is signed with the server's clock). A read
timeout after the request was sent is not retried unless ``retry_read_timeouts``: inference is not
idempotent, and a silent re-send runs the model again.

Waiting is kept out of the policies: the rate limiter *reserves* a send token and says how long
to wait for it, and the Retry middleware's sync shell sleeps with the retryer's ``sleep``, its
async shell with ``asleep`` (``asyncio.sleep`` unless injected).
"""

from __future__ import annotations

import random as _random
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterator, Protocol

import attrs

from smruntime.errors import (
    APIError,
    FieldProblem,
    InvalidParamsError,
    ReadTimeoutError,
    RetryQuotaExceededError,
    SageMakerRuntimeError,
)
from smruntime.lazy_names import lazy_getattr
from smruntime.middleware.reprs import fields_repr
from smruntime.retry.quota import RetryQuota, _Refund

if TYPE_CHECKING:
    from smruntime.retry.adaptive import AdaptiveRetryer

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_BACKOFF",
    "THROTTLING_CODES",
    "TRANSIENT_CODES",
    "AdaptiveRetryer",
    "NoRetryer",
    "ReleaseToken",
    "Retryer",
    "StandardRetryer",
    "new_retryer",
]

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_MAX_BACKOFF = 20.0
RETRY_COST = 5
TIMEOUT_RETRY_COST = 10
NO_RETRY_INCREMENT = 1

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
"""Error codes that mean "slow down" (the Go SDK's and botocore's standard list)."""

TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"})
"""Error codes of transient failures that are safe to retry."""

_RETRYABLE_CODES = frozenset(code.lower() for code in THROTTLING_CODES | TRANSIENT_CODES)

ReleaseToken = Callable[[BaseException | None], None]
"""Called once after the attempt a token was taken for, with its error (``None`` on success)."""

AsyncSleep = Callable[[float], Awaitable[None]]
"""How an asyncio chain waits between attempts."""


def _noop_release(error: BaseException | None) -> None:
    """A token that gives nothing back."""


# --------------------------------------------------------------------------- protocol


class Retryer(Protocol):
    """A retry policy, shared by every call of a client (so it must be thread-safe).

    Mirrors aws-sdk-go-v2's ``aws.Retryer``/``RetryerV2``. Per call, the ``Retry`` middleware
    asks, in this order: ``get_attempt_token`` and ``get_initial_token`` around the first
    attempt; after a failure ``is_retryable``, ``retry_delay``, then ``get_retry_token`` (which
    raises ``RetryQuotaExceededError`` when the quota is spent); it sleeps with ``sleep`` and
    calls ``get_attempt_token`` again before each further attempt.
    """

    @property
    def max_attempts(self) -> int:
        """Attempts in all, the first included."""

    @property
    def per_call_max_attempts(self) -> bool:
        """Whether a call's ``options.max_attempts`` overrides :attr:`max_attempts`."""

    @property
    def sleep(self) -> Callable[[float], None]:
        """How to wait between attempts (injectable, so tests never sleep)."""

    def is_retryable(self, error: BaseException) -> bool:
        """Whether ``error`` may be retried (attempt limits and quota aside)."""

    def retry_delay(self, attempt: int, error: BaseException) -> float:
        """Seconds to wait after attempt number ``attempt`` (1-based) failed with ``error``."""

    def get_initial_token(self) -> ReleaseToken:
        """The first attempt's quota token (a success without retries adds to the quota)."""

    def get_retry_token(self, error: BaseException) -> ReleaseToken:
        """Take a retry's cost from the quota; its release refunds it if that retry succeeds.

        Raises:
            RetryQuotaExceededError: the quota cannot pay for this retry.
        """

    def get_attempt_token(self) -> ReleaseToken:
        """Called before every attempt (may block, as the adaptive rate limiter does).

        A retryer that may wait here should also offer ``reserve_attempt_token() -> (seconds,
        release)``, which takes the token without waiting: the Retry middleware then waits
        itself, with ``sleep`` or, on an asyncio chain, ``asleep`` (see :func:`reserve_attempt`),
        asking ``attempt_wait_left() -> seconds`` again between sleeps when the retryer has it.
        """


# --------------------------------------------------------------------------- retryers


def _at_least(minimum: float) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value < minimum:
            raise InvalidParamsError(
                [FieldProblem(attribute.name, "range", f"must be at least {minimum}, got {value!r}")]
            )

    return check


@attrs.frozen(eq=False)
class StandardRetryer:
    """Standard mode: exponential full-jitter backoff and a client-wide retry quota."""

    __repr__ = fields_repr

    max_attempts: int = attrs.field(default=DEFAULT_MAX_ATTEMPTS, validator=_at_least(1))
    max_backoff: float = attrs.field(default=DEFAULT_MAX_BACKOFF, validator=_at_least(0))
    quota: RetryQuota = attrs.field(factory=RetryQuota)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    random: Callable[[], float] = _random.random
    retry_read_timeouts: bool = False
    retry_cost: int = attrs.field(default=RETRY_COST, validator=_at_least(0))
    timeout_cost: int = attrs.field(default=TIMEOUT_RETRY_COST, validator=_at_least(0))
    no_retry_increment: int = attrs.field(default=NO_RETRY_INCREMENT, validator=_at_least(0))
    asleep: AsyncSleep | None = attrs.field(default=None, kw_only=True)
    """How an asyncio chain waits (``asyncio.sleep`` when None), as ``sleep`` for a sync one."""
    # Built once: the first attempt of every call uses it.
    _initial_token: ReleaseToken = attrs.field(
        init=False, repr=False, default=attrs.Factory(lambda self: self._new_initial_token(), takes_self=True)
    )

    @property
    def per_call_max_attempts(self) -> bool:
        return True

    def is_retryable(self, error: BaseException) -> bool:
        if not isinstance(error, SageMakerRuntimeError):
            return False
        if error.retryable:
            return True
        if isinstance(error, APIError):
            # Covers an APIError built without the flags the deserializer sets from the code.
            return error.code.lower() in _RETRYABLE_CODES
        return self.retry_read_timeouts and isinstance(error, ReadTimeoutError)

    def retry_delay(self, attempt: int, error: BaseException) -> float:
        exponent = max(attempt, 1) - 1
        ceiling = self.max_backoff if exponent >= 64 else min(float(2**exponent), self.max_backoff)
        # Clamped so that a misbehaving injected random can never give a negative or huge delay.
        return min(max(self.random() * ceiling, 0.0), self.max_backoff)

    def get_initial_token(self) -> ReleaseToken:
        return self._initial_token

    def _new_initial_token(self) -> ReleaseToken:
        return _Refund(self.quota, self.no_retry_increment) if self.no_retry_increment else _noop_release

    def get_retry_token(self, error: BaseException) -> ReleaseToken:
        cost = self.timeout_cost if getattr(error, "timeout", False) else self.retry_cost
        if not self.quota.acquire(cost):
            raise RetryQuotaExceededError(self.quota.available, cost, error)
        return _Refund(self.quota, cost)

    def get_attempt_token(self) -> ReleaseToken:
        return _noop_release

    def reserve_attempt_token(self) -> tuple[float, ReleaseToken]:
        return 0.0, _noop_release


@attrs.frozen(eq=False)
class NoRetryer:
    """One attempt: every error propagates unchanged."""

    __repr__ = fields_repr

    sleep: Callable[[float], None] = time.sleep
    asleep: AsyncSleep | None = attrs.field(default=None, kw_only=True)

    @property
    def max_attempts(self) -> int:
        return 1

    @property
    def per_call_max_attempts(self) -> bool:
        return False

    def is_retryable(self, error: BaseException) -> bool:
        return False

    def retry_delay(self, attempt: int, error: BaseException) -> float:
        return 0.0

    def get_initial_token(self) -> ReleaseToken:
        return _noop_release

    def get_retry_token(self, error: BaseException) -> ReleaseToken:
        raise RetryQuotaExceededError(0, 0, error)

    def get_attempt_token(self) -> ReleaseToken:
        return _noop_release

    def reserve_attempt_token(self) -> tuple[float, ReleaseToken]:
        return 0.0, _noop_release


def reserve_attempt(retryer: Retryer) -> tuple[float, ReleaseToken]:
    """An attempt's token without waiting for it: ``(seconds to wait first, release)``.

    A retryer without ``reserve_attempt_token`` (one written before it existed) gets its
    ``get_attempt_token`` called, which may wait itself.
    """
    try:
        reserve = retryer.reserve_attempt_token  # type: ignore[attr-defined]
    except AttributeError:
        return 0.0, retryer.get_attempt_token()
    found: tuple[float, ReleaseToken] = reserve()
    return found


RECHECK_SECONDS = 0.5
"""The longest sleep between two looks at how long a reserved attempt token is still away."""


def wait_for_attempt(retryer: Retryer, wait: float) -> None:
    """Sleep until the attempt token reserved ``wait`` seconds ahead is due. A retryer with
    ``attempt_wait_left()`` (the adaptive one) is asked again every :data:`RECHECK_SECONDS`,
    so a rate that climbs meanwhile shortens the wait; it never makes it longer (the sleeps
    add up to ``wait`` at most, whatever the retryer's clock says)."""
    left: Callable[[], float] | None = getattr(retryer, "attempt_wait_left", None)
    for pause in pauses_until_due(wait, left):
        retryer.sleep(pause)


async def await_attempt(retryer: Retryer, wait: float) -> None:
    """:func:`wait_for_attempt` on an asyncio chain."""
    left: Callable[[], float] | None = getattr(retryer, "attempt_wait_left", None)
    sleep = async_sleep_of(retryer)
    for pause in pauses_until_due(wait, left):
        await sleep(pause)


def pauses_until_due(wait: float, left: Callable[[], float] | None, step: float = RECHECK_SECONDS) -> Iterator[float]:
    """The sleeps of a wait for an attempt token reserved ``wait`` seconds ahead: ``wait`` at
    once without ``left``, else in steps of ``step``, ending early once ``left()`` says the
    token is due; never more than ``wait`` in all, whatever ``left`` says."""
    if left is None:
        if wait > 0:
            yield wait
        return
    budget = wait
    while wait > 0:
        pause = min(wait, step)
        yield pause
        budget -= pause
        wait = min(left(), budget)


async def _asyncio_sleep(delay: float) -> None:
    import asyncio  # here: a sync-only program never imports asyncio for its retries

    await asyncio.sleep(delay)


def async_sleep_of(retryer: Retryer) -> AsyncSleep:
    """How an asyncio chain waits for ``retryer``: its ``asleep``, else ``asyncio.sleep``."""
    asleep: AsyncSleep | None = getattr(retryer, "asleep", None)
    return asleep if asleep is not None else _asyncio_sleep


_STANDARD_ARGS = frozenset(a.name for a in attrs.fields(StandardRetryer))


def new_retryer(mode: str, max_attempts: int = DEFAULT_MAX_ATTEMPTS, **kw: Any) -> Retryer:
    """The retryer for a retry mode: ``"standard"``, ``"adaptive"`` or ``"none"``.

    ``kw`` are :class:`StandardRetryer` arguments (``max_backoff``, ``quota``, ``sleep``,
    ``clock``, ``random``, ``retry_read_timeouts`` …); ``"none"`` accepts and ignores them.
    """
    unknown = set(kw) - _STANDARD_ARGS
    if unknown:
        raise TypeError(f"new_retryer() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    normalized = (mode or "").strip().lower()
    if normalized == "standard":
        return StandardRetryer(max_attempts=max_attempts, **kw)
    if normalized == "adaptive":
        from smruntime.retry.adaptive import AdaptiveRetryer

        return AdaptiveRetryer(max_attempts=max_attempts, **kw)
    if normalized == "none":
        return NoRetryer(sleep=kw.get("sleep", time.sleep), asleep=kw.get("asleep"))
    raise InvalidParamsError(
        [FieldProblem("retry_mode", "enum", f"must be one of standard, adaptive, none, got {mode!r}")]
    )


# AdaptiveRetryer lives in its own module, loaded when first used (standard mode is the default).
__getattr__ = lazy_getattr(__name__, {"AdaptiveRetryer": "smruntime.retry.adaptive"})
