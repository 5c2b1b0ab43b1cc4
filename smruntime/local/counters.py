"""Server-side counters for one endpoint: what arrived, what was answered, what the model ran."""

from __future__ import annotations

import threading
from collections import Counter

import attrs

from smruntime.middleware.reprs import fields_repr

__all__ = ["CounterSnapshot", "Counters"]


@attrs.frozen
class CounterSnapshot:
    """The counters at one moment."""

    __repr__ = fields_repr

    requests: int
    """Requests addressed to the endpoint, whatever became of them (auth failures included)."""
    model_runs: int
    """Times a model was actually called (each container of a serial pipeline counts)."""
    variant_runs: dict[str, int]
    """Invocations that reached a model, by production variant."""
    statuses: dict[int, int]
    """Responses answered, by HTTP status (a reset connection counts as 0)."""


class Counters:
    """Thread-safe counters: the server writes them, tests read them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._model_runs = 0
        self._variant_runs: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()

    def request_received(self) -> None:
        with self._lock:
            self._requests += 1

    def invocation_started(self, variant: str) -> None:
        with self._lock:
            self._variant_runs[variant] += 1

    def model_ran(self) -> None:
        with self._lock:
            self._model_runs += 1

    def answered(self, status: int) -> None:
        with self._lock:
            self._statuses[status] += 1

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    @property
    def model_runs(self) -> int:
        with self._lock:
            return self._model_runs

    def snapshot(self) -> CounterSnapshot:
        with self._lock:
            return CounterSnapshot(
                requests=self._requests,
                model_runs=self._model_runs,
                variant_runs=dict(self._variant_runs),
                statuses=dict(self._statuses),
            )

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self._requests = 0
            self._model_runs = 0
            self._variant_runs.clear()
            self._statuses.clear()

    def __repr__(self) -> str:
        return f"Counters({self.snapshot()})"
