"""Draws docs/images/trace-timeline.png: a real trace of smruntime calls against the local endpoint.

Run from the repository root with the test and bench extras installed::

    python docs/images/trace_timeline.py

One request handler span with three calls under it: an InvokeEndpoint that succeeds on its
third attempt (two injected 503s), a streamed answer paced like a model generating tokens,
and a call whose model fails. Spans are exported in memory and drawn as a timeline.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402

import smruntime.otel  # noqa: E402
from smruntime import Client  # noqa: E402
from smruntime.errors import ModelError  # noqa: E402
from smruntime.local import EndpointConfig, LocalConfig, LocalEndpoint, ModelFailure, ModelRequest  # noqa: E402
from smruntime.local.builtins import TokenStreamer  # noqa: E402
from smruntime.retry import new_retryer  # noqa: E402

OUT = Path(__file__).with_name("trace-timeline.png")
KEY = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def failing(request: ModelRequest) -> bytes:
    time.sleep(0.03)
    raise ModelFailure(500, "out of memory")


def record() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = LocalConfig(endpoints=(
        EndpointConfig.serving("sum", "sum"),
        EndpointConfig.serving("llm", TokenStreamer(delay=0.02)),
        EndpointConfig.serving("failing", failing),
    ))
    # Backoff as configured, but capped at 60 ms so the picture stays readable.
    retryer = new_retryer("standard", 3, sleep=lambda seconds: time.sleep(min(seconds, 0.06)))
    with LocalEndpoint(config, credentials=KEY) as endpoint, Client(
        region="us-east-1", endpoint_url=endpoint.url, credentials=KEY, retryer=retryer,
        api_options=[smruntime.otel.instrument(tracer_provider=provider, propagate=True)],
    ) as client:
        client.invoke_endpoint(endpoint_name="sum", body=b'{"numbers": [1]}')  # warm the connection
        exporter.clear()
        endpoint.faults("sum").fail_next(2, status=503)
        with provider.get_tracer("app").start_as_current_span("POST /answer (your handler)"):
            client.invoke_endpoint(endpoint_name="sum", body=b'{"numbers": [1, 2, 3]}', content_type="application/json")
            with client.invoke_endpoint_with_response_stream(
                endpoint_name="llm", body=b"Streaming answers arrive one word at a time as the model writes them"
            ) as stream:
                for _ in stream:
                    pass
            try:
                client.invoke_endpoint(endpoint_name="failing", body=b"{}")
            except ModelError:
                pass
    provider.shutdown()
    return sorted(exporter.get_finished_spans(), key=lambda span: span.start_time or 0)


def label(span: ReadableSpan) -> str:
    attributes = dict(span.attributes or {})
    facts = []
    if "aws.sagemaker.endpoint_name" in attributes:
        facts.append(f"endpoint={attributes['aws.sagemaker.endpoint_name']}")
    if "http.response.status_code" in attributes:
        facts.append(f"status={attributes['http.response.status_code']}")
    if attributes.get("smruntime.attempts", 1) != 1:
        facts.append(f"attempts={attributes['smruntime.attempts']}")
    if "smruntime.stream.events" in attributes:
        facts.append(f"events={attributes['smruntime.stream.events']}")
        facts.append(f"first event {float(attributes['smruntime.stream.time_to_first_event']) * 1000:.0f} ms")  # type: ignore[arg-type]
    if "error.type" in attributes:
        facts.append(f"error.type={attributes['error.type']}")
    return ", ".join(facts)


def draw(spans: list[ReadableSpan]) -> None:
    origin = min(span.start_time or 0 for span in spans)

    def ms(ns: int | None) -> float:
        return ((ns or 0) - origin) / 1e6

    figure, axis = plt.subplots(figsize=(12, 4.8))
    rows = list(reversed(spans))
    total = max(ms(span.end_time) for span in spans)
    for row, span in enumerate(rows):
        start, end = ms(span.start_time), ms(span.end_time)
        failed = span.status.status_code is StatusCode.ERROR
        is_call = span.name.startswith("SageMaker Runtime.")
        color = "#d62728" if failed else ("#1f77b4" if is_call else "#7f7f7f")
        axis.barh(row, end - start, left=start, height=0.5, color=color, alpha=0.85)
        # Text starts at the bar's start, or ends at its end when the bar sits far right.
        x, align = (end, "right") if start > total * 0.6 else (start, "left")
        axis.text(x, row + 0.36, f"{span.name}  ({end - start:.0f} ms)", fontsize=9, va="bottom", ha=align)
        if is_call:
            axis.text(x, row - 0.42, label(span), fontsize=8, va="top", ha=align, color="#333333")
        for event in span.events:
            at = ms(event.timestamp)
            marker = {"attempt failed": ("x", "#d62728"), "retry": ("o", "#ff7f0e"),
                      "first event": ("v", "#2ca02c")}.get(event.name, ("|", "black"))
            axis.plot(at, row, marker=marker[0], color=marker[1], markersize=8, markeredgewidth=2)
    axis.set_yticks([])
    axis.set_ylim(-0.8, len(rows) - 0.2)
    axis.set_xlim(-total * 0.01, total * 1.02)
    axis.set_xlabel("milliseconds since the trace started")
    handles = [
        plt.Line2D([], [], marker="x", color="#d62728", linestyle="", markersize=8, label="attempt failed (span event)"),
        plt.Line2D([], [], marker="o", color="#ff7f0e", linestyle="", markersize=8, label="retry (span event)"),
        plt.Line2D([], [], marker="v", color="#2ca02c", linestyle="", markersize=8, label="first event (span event)"),
    ]
    axis.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8, frameon=False)
    axis.set_title("One trace: your handler's span and smruntime's CLIENT span per call (local endpoint)",
                   fontsize=11)
    for side in ("top", "right", "left"):
        axis.spines[side].set_visible(False)
    figure.tight_layout()
    figure.savefig(OUT, dpi=110)


if __name__ == "__main__":
    found = record()
    draw(found)
    print(f"wrote {OUT} ({len(found)} spans)", file=sys.stderr)
