"""The client-wide retry quota: a token bucket that bounds retries while the service is failing."""

from __future__ import annotations

import threading

from smruntime.errors import FieldProblem, InvalidParamsError

__all__ = [
    "DEFAULT_RETRY_TOKENS",
    "RetryQuota",
]

DEFAULT_RETRY_TOKENS = 500


class RetryQuota:
    """A client-wide token bucket that bounds retries when the service is failing (thread-safe)."""

    __slots__ = ("_available", "_capacity", "_lock")

    def __init__(self, capacity: int = DEFAULT_RETRY_TOKENS) -> None:
        if capacity < 0:
            raise InvalidParamsError([FieldProblem("capacity", "range", f"must not be negative, got {capacity}")])
        self._capacity = capacity
        self._available = capacity
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def available(self) -> int:
        return self._available

    def acquire(self, amount: int) -> bool:
        """Take ``amount`` tokens if there are that many; never goes below zero."""
        with self._lock:
            if amount > self._available:
                return False
            self._available -= amount
            return True

    def release(self, amount: int) -> None:
        """Give ``amount`` tokens back, never above the initial capacity."""
        if self._available >= self._capacity:
            # Full: nothing to add. Reading one int is atomic, and a release seen as full here
            # is ordered before any acquire that races with it, so skipping the lock is exact.
            return
        with self._lock:
            self._available = min(self._capacity, self._available + amount)

    def __repr__(self) -> str:
        return f"RetryQuota(available={self._available}, capacity={self._capacity})"


class _Refund:
    """A release that gives ``amount`` back to ``quota`` if the attempt succeeded."""

    __slots__ = ("amount", "quota")

    def __init__(self, quota: RetryQuota, amount: int) -> None:
        self.quota = quota
        self.amount = amount

    def __call__(self, error: BaseException | None) -> None:
        if error is None:
            self.quota.release(self.amount)
