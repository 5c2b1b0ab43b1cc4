"""The adaptive mode's client-side rate limiter (CUBIC, as botocore and the Go SDK)."""

from __future__ import annotations

import contextvars
import math
import threading
import time
from typing import Callable, ClassVar, cast

from smruntime.retry.policy import pauses_until_due

__all__ = [
    "ClientRateLimiter",
]

_DUE = 1e-9
"""Tokens a reservation may still be short and count as due: what rounding leaves over."""


class ClientRateLimiter:
    """A CUBIC client-side send-rate limiter (botocore/Go adaptive mode); thread-safe.

    Off until the first throttling error. Then every attempt takes a send token from a bucket
    that fills at the current rate: the rate drops to ``beta`` times the measured send rate on
    each throttle and grows back along a cubic curve on successes, never above twice the
    measured rate nor below ``min_rate`` requests per second. Tokens are reserved under the lock
    and waited for outside it: :meth:`reserve` says how long at the current rate (the sans-IO
    core), and :meth:`wait_left` how long is left at the rate then, so an attempt queued behind
    others while the rate was low goes sooner once it climbs; :meth:`acquire` sleeps, with the
    injected ``sleep``, at most ``bucket_seconds`` between two looks.

    One cut per round trip: a throttled attempt lowers the rate only when it was reserved after
    the last cut. Throttles of attempts already in flight at a cut are the same congestion the
    cut answered; cutting again for each (many arrive together at high concurrency) would
    compound into a rate far below what the endpoint allows. An attempt is paired with its
    reservation through a context variable, which each thread and asyncio task has its own of
    (the retry loop reserves and reports an attempt in the same thread or task).

    The send rate is measured from the first attempt on (not from construction, which may be
    long before the first call), so a throttle before the first bucket closes cuts from the
    rate of the outcomes seen so far (over at least a tenth of a bucket) rather than from
    nothing down to ``min_rate``: a burst of calls answered by throttles in its first
    milliseconds is not slowed to a crawl.
    """

    # The attempt reserved last in this thread or task: (its limiter's marker, cuts before it,
    # its place in the send-token queue, or 0 when it took no token).
    _reserved: ClassVar[contextvars.ContextVar[tuple[object, int, int] | None]] = contextvars.ContextVar(
        "smruntime_rate_limiter_reserved", default=None
    )

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        beta: float = 0.7,
        scale: float = 0.4,
        smoothing: float = 0.8,
        bucket_seconds: float = 0.5,
        min_rate: float = 0.5,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._beta = beta
        self._scale = scale
        self._smoothing = smoothing
        self._bucket_scale = 1.0 / bucket_seconds
        self._min_rate = min_rate
        self._lock = threading.Lock()
        now = clock()
        self._enabled = False
        # The send-token bucket.
        self._fill_rate = 1.0
        self._max_capacity = 1.0
        self._capacity = 0.0
        self._last_refill: float | None = None
        self._issued = 0  # send tokens taken so far; a token's number is its place in the queue
        # CUBIC state: the rate at the last throttle, the time to regain it, when it happened.
        self._w_max = 0.0
        self._k = 0.0
        self._last_throttle = now
        # Measured send rate, smoothed over time buckets.
        self._measured = 0.0
        self._count = 0
        self._last_bucket: float | None = None
        self._measuring_since: float | None = None
        # Cuts so far; an attempt reserved before the latest one does not cut again.
        self._cuts = 0
        self._marker = object()

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def rate(self) -> float:
        """The current send rate limit (requests per second)."""
        return self._fill_rate

    def reserve(self) -> float:
        """Take a send token when enabled; returns the seconds to wait before sending, at the
        current rate (:meth:`wait_left` says how long is still left later)."""
        if not self._enabled:
            self._reserved.set((self._marker, self._cuts, 0))
            if self._measuring_since is None:
                self._measuring_since = self._clock()
            return 0.0
        with self._lock:
            self._refill(self._clock())
            self._capacity -= 1.0
            self._issued += 1
            self._reserved.set((self._marker, self._cuts, self._issued))
            return -self._capacity / self._fill_rate if self._capacity < 0 else 0.0

    def wait_left(self) -> float:
        """The seconds this thread's or task's reserved token is still away, at the current rate."""
        reserved = self._reserved.get()
        if reserved is None or reserved[0] is not self._marker or not reserved[2]:
            return 0.0
        with self._lock:
            self._refill(self._clock())
            # Tokens given out so far: every one taken, plus what is left (less than none while
            # a queue waits); this one is due once that count reaches its number.
            behind = reserved[2] - (self._issued + self._capacity)
            return behind / self._fill_rate if behind > _DUE else 0.0

    def acquire(self) -> float:
        """Wait for a send token when enabled; returns the seconds waited."""
        waited = 0.0
        for pause in pauses_until_due(self.reserve(), self.wait_left, 1.0 / self._bucket_scale):
            self._sleep(pause)
            waited += pause
        return waited

    def update(self, error: BaseException | None) -> None:
        """Record one attempt's outcome: a throttle lowers the rate, anything else raises it."""
        throttled = error is not None and bool(getattr(error, "throttling", False))
        reserved = self._reserved.get()
        self._reserved.set(None)
        with self._lock:
            now = self._clock()
            measured = self._record(now)
            if throttled and reserved is not None and reserved[0] is self._marker and reserved[1] < self._cuts:
                return  # in flight at the last cut, which already answered this congestion
            if throttled:
                self._cuts += 1
                rate = measured if not self._enabled else min(measured, self._fill_rate)
                self._w_max = rate
                self._k = (rate * (1 - self._beta) / self._scale) ** (1 / 3)
                self._last_throttle = now
                new_rate = rate * self._beta
                self._enabled = True
            else:
                new_rate = self._scale * (now - self._last_throttle - self._k) ** 3 + self._w_max
            self._set_rate(min(new_rate, 2 * measured), now)

    def _record(self, now: float) -> float:
        bucket = math.floor(now * self._bucket_scale) / self._bucket_scale
        self._count += 1
        if self._last_bucket is None:  # measuring starts with the first attempt, not at construction
            self._last_bucket = bucket
            if self._measuring_since is None:
                self._measuring_since = now
        if bucket > self._last_bucket:
            current = self._count / (bucket - self._last_bucket)
            self._measured = current * self._smoothing + self._measured * (1 - self._smoothing)
            self._count = 0
            self._last_bucket = bucket
        if not self._measured:  # no bucket closed yet: the rate of what was seen so far
            since = cast(float, self._measuring_since)
            return self._count / max(now - since, 0.1 / self._bucket_scale)
        return self._measured

    def _refill(self, now: float) -> None:
        if self._last_refill is not None:
            self._capacity = min(self._max_capacity, self._capacity + (now - self._last_refill) * self._fill_rate)
        self._last_refill = now

    def _set_rate(self, rate: float, now: float) -> None:
        self._refill(now)
        self._fill_rate = max(rate, self._min_rate)
        self._max_capacity = max(rate, 1.0)
        self._capacity = min(self._capacity, self._max_capacity)
