"""The sans-IO core of bulk invocation: what to send next, and what may be handed out.

It never blocks and never calls the network; the thread shell (``Client.invoke_many``) and
the asyncio shell (``AsyncClient.invoke_many``) drive it the same way. A shell asks
``can_send()``, pulls one record from the input and calls ``started(index)`` when it sends it,
and reports each finished call with ``finished(result)``, which returns the results now ready
for the caller (all of them as they complete, or the next run of consecutive indices in
ordered mode).

Bounds: at most ``concurrency`` calls in flight, fewer while a send-rate limit applies (the
shell passes the limiter's rate to ``can_send``): then the window is twice what that rate
sustains at the endpoint's latency (Little's law, rate x latency; twice, for room as the
latency varies), plus one, so calls don't pile up waiting for send tokens reserved at a low
rate (a call waits at most about two latencies for its token), and the window grows back with
the rate. In ordered mode at most ``reorder_window`` records lie between the oldest result not
yet handed out and the newest record sent, so a slow record holds back at most that many
finished results in memory. The input is read only when a record can be sent, so read-ahead
is one record.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from smruntime import errors
from smruntime.middleware.reprs import fields_repr
from smruntime.types import InvokeEndpointInput, InvokeEndpointOutput


@attrs.frozen
class BulkResult:
    """One record's outcome: its input index and either the output or the typed error."""

    __repr__ = fields_repr

    index: int
    output: InvokeEndpointOutput | None = None
    error: BaseException | None = None
    attempts: int = 1
    latency: float = 0.0

    @classmethod
    def succeeded(cls, index: int, output: InvokeEndpointOutput, latency: float) -> BulkResult:
        return cls(index, output=output, attempts=output.metadata.attempts, latency=latency)

    @classmethod
    def failed(cls, index: int, error: BaseException, latency: float) -> BulkResult:
        return cls(index, error=error, attempts=getattr(error, "attempts", 1), latency=latency)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def throttled(self) -> bool:
        """True when the record's last error was throttling."""
        return bool(getattr(_last_error(self.error), "throttling", False))


Record = InvokeEndpointInput | bytes | str
"""One record of a bulk run: a body (bytes, or str sent as UTF-8) or a whole input."""


@attrs.frozen
class BulkRun:
    """What ``invoke_many`` is asked for besides its records; both clients' shells read it."""

    __repr__ = fields_repr

    endpoint_name: str | None = None
    content_type: str | None = None
    accept: str | None = None
    concurrency: int = 16
    ordered: bool = False
    reorder_window: int = 0
    adaptive: bool = True

    def within(self, pool: int | None) -> BulkRun:
        """The run with no more calls in flight than the client's ``pool`` of connections: a
        call past it would only wait for one, and fail after ``connect_timeout``."""
        if pool is None or self.concurrency <= pool:
            return self
        return attrs.evolve(self, concurrency=pool)

    def scheduler(self) -> BulkScheduler:
        """A scheduler for the run; raises on bad bounds, and on a bad ``endpoint_name``,
        ``content_type`` or ``accept``, before any record is read."""
        from smruntime.operations.invoke_endpoint import validate

        # With no endpoint_name the records may be InvokeEndpointInput naming their own (a body
        # without one is refused by check()): a valid stand-in lets the formats be checked now.
        name = "x" if self.endpoint_name is None else self.endpoint_name
        validate(as_input(b"", endpoint_name=name, content_type=self.content_type, accept=self.accept), "InvokeEndpoint")
        return BulkScheduler(self.concurrency, ordered=self.ordered, reorder_window=self.reorder_window)

    @staticmethod
    def check_inputs(inputs: object) -> None:
        """Raise if ``inputs`` is one record rather than an iterable of them: iterating a body
        would send each of its bytes (or characters) as a record, every one failing."""
        if isinstance(inputs, (bytes, bytearray, memoryview, str, InvokeEndpointInput)):
            raise errors.InvalidParamsError(
                [errors.FieldProblem("inputs", "type",
                                     f"is one {type(inputs).__name__} record: pass an iterable of records, such as a list")],
                operation="InvokeEndpoint",
            )

    def input(self, record: Record) -> InvokeEndpointInput:
        """The input one record is sent as."""
        return as_input(record, endpoint_name=self.endpoint_name, content_type=self.content_type, accept=self.accept)

    def check(self, record: Record) -> None:
        """Raise if ``record`` cannot be sent whatever it holds: a body with no ``endpoint_name``
        to send it to is the caller's mistake, not that record's failure."""
        if self.endpoint_name is None and not isinstance(record, InvokeEndpointInput):
            raise errors.InvalidParamsError(
                [errors.FieldProblem("endpoint_name", "required",
                                     "is needed when records are bodies (or give InvokeEndpointInput records)")],
                operation="InvokeEndpoint",
            )


def _last_error(error: BaseException | None) -> BaseException | None:
    return getattr(error, "last_error", error)


def as_input(
    record: Any,
    *,
    endpoint_name: str | None,
    content_type: str | None,
    accept: str | None,
) -> InvokeEndpointInput:
    """An InvokeEndpointInput for one record: an input object as it is, a body with the defaults."""
    if isinstance(record, InvokeEndpointInput):
        return record
    if isinstance(record, str):
        record = record.encode("utf-8")
    return InvokeEndpointInput(
        endpoint_name=endpoint_name,  # type: ignore[arg-type]  # validated in the stack
        body=record,
        content_type=content_type,
        accept=accept,
    )


def _check_positive(instance: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


@attrs.define
class BulkScheduler:
    """Decides when the next record may be sent and which results may be handed out."""

    __repr__ = fields_repr

    concurrency: int = attrs.field(validator=_check_positive)
    ordered: bool = False
    reorder_window: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    in_flight: int = attrs.field(default=0, init=False)
    sent: int = attrs.field(default=0, init=False)
    exhausted: bool = attrs.field(default=False, init=False)
    latency: float = attrs.field(default=0.0, init=False)  # seconds the endpoint takes to answer, smoothed
    _next_out: int = attrs.field(default=0, init=False)
    _held: dict[int, BulkResult] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        if self.reorder_window == 0:
            self.reorder_window = 4 * self.concurrency
        if self.reorder_window < self.concurrency:
            raise ValueError(f"reorder_window must be at least concurrency ({self.concurrency}), got {self.reorder_window}")

    def window(self, rate: float | None = None) -> int:
        """Calls allowed in flight: ``concurrency``, or what a send ``rate`` (per second) sustains."""
        if rate is None or self.latency <= 0:
            return self.concurrency
        return max(1, min(self.concurrency, math.ceil(2 * rate * self.latency) + 1))

    def can_send(self, rate: float | None = None) -> bool:
        """True when one more record may be read and sent now (``rate``: the send-rate limit in
        force, if any)."""
        if self.exhausted or self.in_flight >= self.window(rate):
            return False
        return not self.ordered or self.sent - self._next_out < self.reorder_window

    def started(self) -> int:
        """Record that the next record was sent; returns its index."""
        index = self.sent
        self.sent += 1
        self.in_flight += 1
        return index

    def input_exhausted(self) -> None:
        self.exhausted = True

    def finished(self, result: BulkResult) -> list[BulkResult]:
        """Record one finished call; returns the results ready to hand out, in order."""
        self.in_flight -= 1
        self._learn_latency(result)
        if not self.ordered:
            self._next_out += 1
            return [result]
        self._held[result.index] = result
        ready = []
        while self._next_out in self._held:
            ready.append(self._held.pop(self._next_out))
            self._next_out += 1
        return ready

    def _learn_latency(self, result: BulkResult) -> None:
        """Track how long the endpoint takes, not how long calls waited: a retried record's
        latency is mostly backoff, and under a rate limit every call's includes its wait for a
        send token. Counting those would widen the window with the very queue it is there to
        prevent (calls reserving tokens far ahead, which they then sleep out even after the
        rate has recovered). So only first attempts count, and the estimate falls fast and
        rises slowly."""
        if result.attempts != 1:
            return
        if self.latency <= 0:
            self.latency = result.latency
            return
        weight = 0.5 if result.latency < self.latency else 0.05
        self.latency += weight * (result.latency - self.latency)

    @property
    def done(self) -> bool:
        """True when the input is exhausted and every result was handed out."""
        return self.exhausted and self.in_flight == 0 and not self._held
