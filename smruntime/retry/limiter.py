"""The adaptive mode's client-side rate limiter (CUBIC, as botocore and the Go SDK)."""

from __future__ import annotations

import math
import threading
import time
from typing import Callable

__all__ = [
    "ClientRateLimiter",
]

class ClientRateLimiter:
    """A CUBIC client-side send-rate limiter (botocore/Go adaptive mode); thread-safe.

    Off until the first throttling error. Then every attempt takes a send token from a bucket
    that fills at the current rate: the rate drops to ``beta`` times the measured send rate on
    each throttle and grows back along a cubic curve on successes, never above twice the
    measured rate nor below ``min_rate`` requests per second. Tokens are reserved under the lock
    and waited for outside it: :meth:`reserve` says how long (the sans-IO core), and
    :meth:`acquire` waits that long with one call of the injected ``sleep``.
    """

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
        # CUBIC state: the rate at the last throttle, the time to regain it, when it happened.
        self._w_max = 0.0
        self._k = 0.0
        self._last_throttle = now
        # Measured send rate, smoothed over time buckets.
        self._measured = 0.0
        self._count = 0
        self._last_bucket = float(math.floor(now))

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def rate(self) -> float:
        """The current send rate limit (requests per second)."""
        return self._fill_rate

    def reserve(self) -> float:
        """Take a send token when enabled; returns the seconds to wait before sending."""
        if not self._enabled:
            return 0.0
        with self._lock:
            self._refill(self._clock())
            self._capacity -= 1.0
            return -self._capacity / self._fill_rate if self._capacity < 0 else 0.0

    def acquire(self) -> float:
        """Wait for a send token when enabled; returns the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def update(self, error: BaseException | None) -> None:
        """Record one attempt's outcome: a throttle lowers the rate, anything else raises it."""
        throttled = error is not None and bool(getattr(error, "throttling", False))
        with self._lock:
            now = self._clock()
            measured = self._record(now)
            if throttled:
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
        if bucket > self._last_bucket:
            current = self._count / (bucket - self._last_bucket)
            self._measured = current * self._smoothing + self._measured * (1 - self._smoothing)
            self._count = 0
            self._last_bucket = bucket
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
