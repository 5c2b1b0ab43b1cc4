"""Fault injection for one endpoint: scheduled errors, latency, connection resets, broken streams.

Change faults while the server runs (from any thread)::

    endpoint.faults("sum").fail_next(2, status=503)   # then the model answers again
    endpoint.faults("sum").throttle_next(1)           # 400 ThrottlingException
    endpoint.faults("sum").set_latency(0.2)           # every request waits 0.2 s first
    endpoint.faults("sum").reset_next(1)              # the connection is reset, no response
    endpoint.faults("tokens").break_stream_after(3)   # the next stream stops after 3 parts
    endpoint.faults("echo").fail_stream_after(2)      # streams: InternalStreamFailure after 2 parts
    endpoint.faults("sum").throttle_above(100)        # ThrottlingException above 100 requests/s
    endpoint.faults("sum").clear()

Faults apply after a request is authenticated and validated, before the model runs, so an
injected failure never runs the model. Scheduled faults are used up in the order: reset,
then error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import attrs

from smruntime.local.config import FaultConfig, check_fault_count
from smruntime.local.wire import ServiceError, service_error_for_status, throttling_error
from smruntime.middleware.reprs import fields_repr

__all__ = ["FaultAction", "Faults"]


@attrs.frozen
class FaultAction:
    """What to do to one request before its model runs."""

    __repr__ = fields_repr

    latency: float = 0.0
    reset: bool = False
    error: ServiceError | None = None


class Faults:
    """The faults armed on one endpoint; thread-safe."""

    def __init__(self, config: FaultConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._rate: float | None = None  # requests per second allowed; the rest are throttled
        self._tokens = 0.0
        self._refilled = 0.0
        self._errors: list[ServiceError] = []
        self._resets = 0
        self._latency = 0.0
        self._delays: list[float] = []
        self._stream_breaks: list[int] = []
        self._stream_failures: list[int] = []
        if config is not None:
            self.apply(config)

    def apply(self, config: FaultConfig) -> Faults:
        """Arm the faults a FaultConfig describes (on top of those already armed)."""
        if config.fail_next:
            self.fail_next(config.fail_next, status=config.fail_status)
        if config.throttle_next:
            self.throttle_next(config.throttle_next)
        if config.reset_next:
            self.reset_next(config.reset_next)
        if config.latency:
            self.set_latency(config.latency)
        if config.throttle_above is not None:
            self.throttle_above(config.throttle_above)
        if config.break_stream_after is not None:
            self.break_stream_after(config.break_stream_after)
        if config.fail_stream_after is not None:
            self.fail_stream_after(config.fail_stream_after)
        return self

    def fail_next(self, count: int = 1, *, status: int = 503, message: str | None = None) -> Faults:
        """Fail the next ``count`` requests with the service error for ``status``.

        500 InternalFailure, 503 ServiceUnavailable, 429 ModelNotReadyException,
        530 InternalDependencyException, 424 ModelError, 400 ThrottlingException.
        """
        error = service_error_for_status(status, message)
        check_fault_count("count", count)
        with self._lock:
            self._errors.extend([error] * count)
        return self

    def throttle_next(self, count: int = 1) -> Faults:
        """Answer the next ``count`` requests with 400 ThrottlingException."""
        check_fault_count("count", count)
        with self._lock:
            self._errors.extend([throttling_error()] * count)
        return self

    def reset_next(self, count: int = 1) -> Faults:
        """Reset the connection (TCP RST, no response at all) for the next ``count`` requests."""
        check_fault_count("count", count)
        with self._lock:
            self._resets += count
        return self

    def set_latency(self, seconds: float) -> Faults:
        """Delay every request by ``seconds`` before it is answered (0 to stop)."""
        with self._lock:
            self._latency = seconds
        return self

    def delay_next(self, seconds: float, count: int = 1) -> Faults:
        """Delay only the next ``count`` requests by ``seconds`` (on top of any set latency)."""
        check_fault_count("count", count)
        with self._lock:
            self._delays.extend([seconds] * count)
        return self

    def break_stream_after(self, parts: int, count: int = 1) -> Faults:
        """Cut the next ``count`` response streams after ``parts`` PayloadParts."""
        check_fault_count("count", count)
        with self._lock:
            self._stream_breaks.extend([parts] * count)
        return self

    def fail_stream_after(self, parts: int, count: int = 1) -> Faults:
        """End the next ``count`` streams (response or bidirectional) with an
        ``InternalStreamFailure`` event after ``parts`` PayloadParts (the service failing, not
        the model). A response stream of exactly ``parts`` parts gets it in place of its end;
        a shorter stream ends as it would, and the fault is spent either way."""
        check_fault_count("count", count)
        with self._lock:
            self._stream_failures.extend([parts] * count)
        return self

    def throttle_above(self, per_second: float | None) -> Faults:
        """Throttle requests beyond ``per_second`` (a token bucket holding 0.1 s of them, at
        least one); None stops it. Models an endpoint with a fixed capacity."""
        if per_second is not None and per_second <= 0:
            raise ValueError(f"throttle_above must be positive, got {per_second}")
        with self._lock:
            self._rate = per_second
            self._tokens = self._burst()
            self._refilled = self._clock()
        return self

    def _burst(self) -> float:
        return max(1.0, (self._rate or 0.0) * 0.1)

    def _over_rate(self) -> bool:
        if self._rate is None:
            return False
        now = self._clock()
        self._tokens = min(self._burst(), self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens < 1.0:
            return True
        self._tokens -= 1.0
        return False

    def clear(self) -> Faults:
        """Disarm every fault."""
        with self._lock:
            self._errors.clear()
            self._resets = 0
            self._latency = 0.0
            self._delays.clear()
            self._stream_breaks.clear()
            self._stream_failures.clear()
            self._rate = None
        return self

    def take(self) -> FaultAction:
        """Use up the faults that apply to the request now arriving."""
        with self._lock:
            latency = self._latency + (self._delays.pop(0) if self._delays else 0.0)
            if self._resets:
                self._resets -= 1
                return FaultAction(latency=latency, reset=True)
            error = self._errors.pop(0) if self._errors else None
            if error is None and self._over_rate():
                error = throttling_error()
            return FaultAction(latency=latency, error=error)

    def take_stream_break(self) -> int | None:
        """The number of parts after which the stream now starting must break, if any."""
        with self._lock:
            return self._stream_breaks.pop(0) if self._stream_breaks else None

    def take_stream_failure(self) -> int | None:
        """The number of parts after which the stream now starting must fail, if any."""
        with self._lock:
            return self._stream_failures.pop(0) if self._stream_failures else None

    @property
    def pending(self) -> dict[str, object]:
        """What is still armed (for debugging and tests)."""
        with self._lock:
            return {
                "errors": [error.code for error in self._errors],
                "resets": self._resets,
                "latency": self._latency,
                "delays": list(self._delays),
                "stream_breaks": list(self._stream_breaks),
                "stream_failures": list(self._stream_failures),
                "throttle_above": self._rate,
            }
