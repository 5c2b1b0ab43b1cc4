"""``instrument()``: the api option that adds tracing and metrics to a client's stacks."""

from __future__ import annotations

from typing import Any, Callable

from opentelemetry import metrics, trace

from smruntime.middleware import Position, Stack
from smruntime.otel.bodies import Redactor, body_text
from smruntime.otel.middleware import OTelAttempts, OTelOperationSpan, OTelXRayTraceHeader
from smruntime.redaction import redact_json
from smruntime.version import __version__

SCOPE = "smruntime"
"""The instrumentation scope name of the tracer and meter."""

CALL_DURATION = "smithy.client.call.duration"
CALL_ATTEMPTS = "smithy.client.call.attempts"
CALL_ERRORS = "smithy.client.call.errors"
TIME_TO_FIRST_EVENT = "smruntime.stream.time_to_first_event"


class Telemetry:
    """The tracer, the instruments and the choices one ``instrument()`` made, shared by its calls."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
        genai_operation: str | None,
        capture_bodies: bool,
        redact: Redactor,
        max_body_chars: int,
    ) -> None:
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider=meter_provider)
        self.duration = meter.create_histogram(
            CALL_DURATION, unit="s", description="Duration of an operation call, retries and a stream's reading included."
        )
        self.attempts = meter.create_counter(CALL_ATTEMPTS, unit="{attempt}", description="Attempts made by operation calls.")
        self.errors = meter.create_counter(CALL_ERRORS, unit="{error}", description="Operation calls that failed, by error.type.")
        self.time_to_first_event = meter.create_histogram(
            TIME_TO_FIRST_EVENT, unit="s", description="Time from a streaming call's start to its first event."
        )
        self.genai_operation = genai_operation
        self.capture_bodies = capture_bodies
        self.redact = redact
        self.max_body_chars = max_body_chars

    def body_text(self, body: Any) -> str:
        return body_text(body, self.max_body_chars, self.redact)


def instrument(
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    propagate: bool = False,
    genai: bool = False,
    genai_operation: str = "chat",
    capture_bodies: bool = False,
    redact: Redactor = redact_json,
    max_body_chars: int = 4096,
) -> Callable[[Stack], None]:
    """An api option that traces and measures every call of a client::

        client = Client(region="us-east-1", api_options=[smruntime.otel.instrument()])

    - ``tracer_provider``/``meter_provider``: default to the global ones (read when a call
      runs, so setting them after this works too).
    - ``propagate``: send the call's trace context to the model in ``X-Amzn-Trace-Id``.
    - ``genai``: add the GenAI conventions' attributes (``gen_ai.*``; the endpoint name is the
      model, ``genai_operation`` the operation, token usage when a JSON answer reports it).
    - ``capture_bodies``: record request and response bodies on the span, as UTF-8 text passed
      through ``redact`` and cut to ``max_body_chars`` characters. Off by default: bodies are
      your users' data.
    """
    if max_body_chars < 0:
        raise ValueError(f"max_body_chars must be at least 0, got {max_body_chars}")
    if not callable(redact):
        raise TypeError(f"redact must be a callable taking and returning a str, got {redact!r}")
    telemetry = Telemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        genai_operation=genai_operation if genai else None,
        capture_bodies=capture_bodies,
        redact=redact,
        max_body_chars=max_body_chars,
    )
    span = OTelOperationSpan(telemetry)
    attempts = OTelAttempts()
    header = OTelXRayTraceHeader() if propagate else None

    def add_telemetry(stack: Stack) -> None:
        stack.initialize.add(span, Position.BEFORE)
        if "Retry" in stack.finalize:
            stack.finalize.insert(attempts, "Retry", Position.AFTER)
        else:
            stack.finalize.add(attempts, Position.BEFORE)
        if header is not None:
            stack.build.add(header)

    return add_telemetry
