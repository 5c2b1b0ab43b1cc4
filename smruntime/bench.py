"""``smruntime bench``: latency percentiles, throughput, errors and where the client-side time went.

Runs ``--warmup`` untimed calls, then ``-n`` timed InvokeEndpoint calls from ``--concurrency``
threads sharing one client whose stack carries :func:`~smruntime.timing.record_timings`, and
prints a report. A progress bar goes to stderr when it is a terminal (never with
``--no-progress``). The exit status is 0 when every timed call succeeded, 1 otherwise.
"""

from __future__ import annotations

import math
import statistics
import sys
import threading
import time
from typing import IO, Any, Callable, Sequence

import attrs

from smruntime import errors
from smruntime.middleware.reprs import fields_repr
from smruntime.timing import STEP_ORDER, record_timings

PROGRESS_INTERVAL = 0.1
"""Seconds between progress bar redraws."""
BAR_WIDTH = 30


@attrs.frozen
class CallTimings:
    """Median seconds per call: each step's and each middleware's own time, and the HTTP exchange."""

    __repr__ = fields_repr

    steps: dict[str, float]
    middleware: dict[str, float]
    transport: float

    @classmethod
    def median_of(cls, samples: Sequence[dict[str, Any]]) -> CallTimings | None:
        if not samples:
            return None
        steps: dict[str, list[float]] = {}
        middleware: dict[str, list[float]] = {}
        for sample in samples:
            for name, seconds in sample.get("steps", {}).items():
                steps.setdefault(name, []).append(seconds)
            for name, seconds in sample.get("middleware", {}).items():
                middleware.setdefault(name, []).append(seconds)
        order = {name: index for index, name in enumerate(STEP_ORDER)}
        return cls(
            steps={name: statistics.median(steps[name]) for name in sorted(steps, key=lambda n: order.get(n, 99))},
            middleware={name: statistics.median(values) for name, values in middleware.items()},
            transport=statistics.median(sample.get("transport", 0.0) for sample in samples),
        )

    @property
    def client_side(self) -> float:
        """The client's own time: every step, the HTTP exchange excluded."""
        return sum(self.steps.values())


@attrs.frozen
class BenchReport:
    """What a bench run measured."""

    __repr__ = fields_repr

    calls: int
    concurrency: int
    elapsed: float
    latencies: tuple[float, ...]  # seconds, successful calls only, sorted
    errors: dict[str, int]
    timings: CallTimings | None
    interrupted: bool = False
    """Stopped by an interrupt: ``calls`` counts the calls made, not the calls asked for."""

    @property
    def succeeded(self) -> int:
        return len(self.latencies)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float:
        return percentile(self.latencies, q)

    def format(self) -> str:
        lines = [
            f"calls:       {self.calls} ({self.succeeded} ok, {self.failed} failed) in {self.elapsed:.2f} s "
            f"with concurrency {self.concurrency}" + (", interrupted" if self.interrupted else ""),
            f"throughput:  {self.calls_per_second:,.1f} calls/s",
        ]
        if self.latencies:
            lines.append(
                "latency ms:  "
                + "  ".join(f"p{label} {self.percentile(q) * 1e3:.2f}" for label, q in (("50", 0.5), ("90", 0.9),
                                                                                        ("99", 0.99)))
                + f"  min {self.latencies[0] * 1e3:.2f}  max {self.latencies[-1] * 1e3:.2f}"
                + f"  mean {statistics.fmean(self.latencies) * 1e3:.2f}"
            )
        lines.append("errors:      " + (", ".join(f"{name}: {count}" for name, count in
                                                 sorted(self.errors.items(), key=lambda item: -item[1])) or "none"))
        if self.timings is not None:
            lines += ["", _format_timings(self.timings)]
        return "\n".join(lines)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (``q`` in 0..1) of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def error_name(error: BaseException) -> str:
    """How an error is counted: its class, the service's code when unmodeled, the cause of a give-up."""
    if isinstance(error, (errors.MaxAttemptsExceededError, errors.RetryQuotaExceededError)) and error.__cause__:
        return f"{type(error).__name__}({error_name(error.__cause__)})"
    if type(error) is errors.APIError:
        return f"APIError({error.code})"
    return type(error).__name__


def _format_timings(timings: CallTimings) -> str:
    width = max([34, *(len(name) + 4 for name in timings.middleware)])
    lines = ["client-side time per call (medians, µs):", f"  {'where':<{width}} {'µs':>9}"]
    for step, seconds in timings.steps.items():
        lines.append(f"  {step:<{width}} {seconds * 1e6:>9.1f}")
    lines.append(f"  {'= client-side total':<{width}} {timings.client_side * 1e6:>9.1f}")
    lines.append(f"  {'HTTP exchange (transport)':<{width}} {timings.transport * 1e6:>9.1f}")
    lines.append("  by middleware:")
    for name, seconds in sorted(timings.middleware.items(), key=lambda item: -item[1]):
        lines.append(f"    {name:<{width - 2}} {seconds * 1e6:>9.1f}")
    return "\n".join(lines)


class Progress:
    """A one-line progress bar, redrawn in place (``\\r``); silent when disabled."""

    def __init__(self, total: int, stream: IO[str], *, enabled: bool, clock: Callable[[], float] = time.monotonic):
        self.total = total
        self.stream = stream
        self.enabled = enabled
        self.clock = clock
        self.started = clock()
        self.drawn = False

    def draw(self, done: int) -> None:
        if not self.enabled:
            return
        filled = BAR_WIDTH * done // self.total if self.total else BAR_WIDTH
        elapsed = self.clock() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        self.stream.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{self.total} {rate:,.0f} calls/s")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.enabled and self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def run_calls(call: Callable[[], Any], calls: int, concurrency: int, progress: Progress) -> BenchReport:
    """Make ``calls`` calls of ``call`` from ``concurrency`` threads; time each one.

    An interrupt (Ctrl-C) starts no more calls: the report covers the calls made, once those in
    flight are done (a second interrupt does not wait for them).
    """
    latencies: list[float] = []
    failures: dict[str, int] = {}
    samples: list[dict[str, Any]] = []
    lock = threading.Lock()
    started_calls = 0
    done = 0
    interrupted = False

    def worker() -> None:
        nonlocal started_calls, done
        while True:
            with lock:
                if interrupted or started_calls >= calls:
                    return
                started_calls += 1
            start = time.perf_counter()
            try:
                out = call()
            except Exception as error:  # counted by type: a bench reports failures, it does not stop on them
                name = error_name(error)
                with lock:
                    failures[name] = failures.get(name, 0) + 1
                    done += 1
                continue
            elapsed = time.perf_counter() - start
            timings = getattr(getattr(out, "metadata", None), "timings", None)
            with lock:
                latencies.append(elapsed)
                if timings:
                    samples.append(timings)
                done += 1

    threads = [threading.Thread(target=worker, name=f"smruntime-bench-{i}", daemon=True) for i in range(concurrency)]
    started = time.perf_counter()
    try:
        for thread in threads:
            thread.start()
        while alive := [thread for thread in threads if thread.is_alive()]:
            progress.draw(done)
            alive[0].join(PROGRESS_INTERVAL)
    except KeyboardInterrupt:
        with lock:
            interrupted = True
        progress.finish()  # the bar's line ends before the message
        print("smruntime bench: interrupted; waiting for the calls in flight (interrupt again to quit at once)",
              file=sys.stderr, flush=True)
        for thread in threads:
            if thread.ident is not None:  # started before the interrupt
                thread.join()
    else:
        progress.draw(done)
        progress.finish()
    elapsed = time.perf_counter() - started
    return BenchReport(
        calls=done,
        concurrency=concurrency,
        elapsed=elapsed,
        latencies=tuple(sorted(latencies)),
        errors=failures,
        timings=CallTimings.median_of(samples),
        interrupted=interrupted,
    )


def run_bench(client: Any, args: Any, *, body: bytes) -> int:
    """The ``smruntime bench`` command: ``args`` carries endpoint_name, content_type, requests,
    concurrency, warmup and no_progress."""
    from smruntime.client import Client

    if args.requests < 1:
        raise ValueError(f"-n/--requests must be at least 1, got {args.requests}")
    if args.concurrency < 1:
        raise ValueError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.warmup < 0:
        raise ValueError(f"--warmup must not be negative, got {args.warmup}")
    options = client.options  # a copy: the same HTTP client, retryer and credentials
    options.api_options.append(record_timings)
    timed = Client(options=options)  # shares the caller's HTTP client; does not close it

    def call() -> Any:
        return timed.invoke_endpoint(endpoint_name=args.endpoint_name, body=body, content_type=args.content_type)

    url = options.endpoint_url or "the default endpoint"
    print(f"smruntime bench: InvokeEndpoint {args.endpoint_name!r} at {url}, {args.requests} calls, "
          f"concurrency {args.concurrency}, {args.warmup} warm-up calls")
    for _ in range(args.warmup):
        call()  # a failure here stops the run: the endpoint or the configuration is wrong
    progress = Progress(args.requests, sys.stderr, enabled=not args.no_progress and sys.stderr.isatty())
    report = run_calls(call, args.requests, args.concurrency, progress)
    timed.close()
    print(report.format())
    sys.stdout.flush()
    if report.interrupted:
        return 130  # as an interrupted command's status, after its report
    return 0 if report.failed == 0 else 1
