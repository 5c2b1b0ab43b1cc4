"""(7) The tracing middleware's cost per call, in-process (canned response, no network).

The same call on three clients that differ only in ``smruntime.otel.instrument``: none, with
OpenTelemetry's no-op tracer and meter providers, and with the SDK's providers exporting every
span to the in-memory exporter (a simple, synchronous span processor) and every measurement
to the in-memory metric reader. Interleaved rounds; each round's overhead is that round's
instrumented figure minus its uninstrumented one, and the table shows their medians.
"""

from __future__ import annotations

from typing import Any

from benchmarks import clients
from benchmarks.common import Section, interleave, median, per_call, spread, standalone, table
from benchmarks.in_process import CannedHTTPClient

CALLS = 2000
ROUNDS = 12
_CANNED_URL = "http://canned.invalid"
GOAL_US = 10.0


def _clients() -> tuple[dict[str, Any], list[Any]]:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import smruntime.otel

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    noop = smruntime.otel.instrument(tracer_provider=trace.NoOpTracerProvider(),
                                     meter_provider=metrics.NoOpMeterProvider())
    sdk = smruntime.otel.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    made = {
        "not instrumented": clients.smruntime_client(_CANNED_URL, http_client=CannedHTTPClient()),
        "no-op providers": clients.smruntime_client(_CANNED_URL, http_client=CannedHTTPClient(), api_options=[noop]),
        "SDK, in-memory exporter": clients.smruntime_client(_CANNED_URL, http_client=CannedHTTPClient(),
                                                           api_options=[sdk]),
    }
    return made, [exporter, tracer_provider, meter_provider]


def run(*, rounds: int = ROUNDS) -> Section:
    made, keep = _clients()
    exporter = keep[0]
    batches = {}
    for name, client in made.items():
        batch = per_call(clients.smruntime_call(client), CALLS)
        if name.startswith("SDK"):
            def exported(batch: Any = batch) -> float:
                seconds: float = batch()
                exporter.clear()  # keep memory flat: the spans are made and exported, then dropped
                return seconds

            batches[name] = exported
        else:
            batches[name] = batch
    samples = interleave(batches, rounds)
    for client in made.values():
        client.close()
    keep[1].shutdown()
    keep[2].shutdown()
    base = samples["not instrumented"]
    overhead = {
        name: median([value - plain for value, plain in zip(values, base, strict=True)])
        for name, values in samples.items() if name != "not instrumented"
    }
    rows = [("not instrumented", f"{median(base) * 1e6:.1f}", spread(base), "-")]
    rows += [(name, f"{median(samples[name]) * 1e6:.1f}", spread(samples[name]), f"{overhead[name] * 1e6:+.1f}")
             for name in overhead]
    data = {
        "us_per_call": {name: median(values) * 1e6 for name, values in samples.items()},
        "overhead_us": {name: value * 1e6 for name, value in overhead.items()},
        "goal_noop_us": GOAL_US,
        "rounds": rounds,
    }
    return Section(
        "tracing",
        "7. Tracing middleware cost per call (canned response, no network)",
        table(["client", "µs per call (median)", "spread", "tracing's cost, µs"], rows),
        data,
        [
            f"{CALLS} InvokeEndpoint calls per round, {rounds} interleaved rounds; the cost is the median over "
            "rounds of (instrumented minus not instrumented) in the same round. Goal: ≤ "
            f"{GOAL_US:.0f} µs with the no-op providers.",
            "The SDK figure includes making, exporting (in memory, synchronously) and recording the span "
            "and four metric instruments; a batch span processor moves the export off the calling thread.",
        ],
    )


if __name__ == "__main__":
    standalone(run)
