"""The tracing and metrics middleware: one CLIENT span per call, retries as span events.

``OTelOperationSpan`` (first in Initialize) opens the call's span and makes it current, so
spans of HTTP instrumentation below nest under it; ``OTelAttempts`` (in Finalize, right after
Retry) sees each attempt; ``OTelXRayTraceHeader`` (in Build, optional) writes the span's
context into ``X-Amzn-Trace-Id``. Each has one sans-IO core (:class:`Call`) that the sync
``handle`` shells call; the asyncio shells are the same calls around an ``await``.
"""

from __future__ import annotations

import time
from contextvars import Token
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from smruntime import keys
from smruntime.middleware import Next, StackKey
from smruntime.otel import facts
from smruntime.otel.bodies import stream_capture
from smruntime.otel.xray import HEADER, trace_header
from smruntime.stack_types import (
    BuildInput,
    BuildOutput,
    Context,
    FinalizeInput,
    FinalizeOutput,
    InitializeInput,
    InitializeOutput,
)
from smruntime.streaming import AsyncResponseStream, ResponseStream

AsyncNext = Callable[[Context, Any], Awaitable[Any]]
"""The rest of an asyncio chain (the framework's own alias where it has one)."""

if TYPE_CHECKING:
    from smruntime.otel.instrument import Telemetry

CALL: StackKey[Call] = StackKey("otel_call")
"""The call being traced, for the middleware further down."""


class Call:
    """One traced call: its span, clock and metric attributes, until the call (or its stream) ends."""

    __slots__ = (
        "attempts", "attributes", "body", "capturing", "ended", "events", "recording", "span", "start", "telemetry",
    )

    def __init__(self, telemetry: Telemetry, ctx: Context, parameters: Any) -> None:
        self.telemetry = telemetry
        self.attributes = facts.call_attributes(ctx.operation_name, parameters)
        self.span = telemetry.tracer.start_span(
            facts.span_name(ctx.operation_name), kind=SpanKind.CLIENT, attributes=self.attributes
        )
        self.recording = self.span.is_recording()
        self.start = time.perf_counter()
        self.events = 0
        self.attempts = 0
        self.ended = False
        self.body: bytearray | None = None
        self.capturing = False
        if self.recording:
            span = self.span
            span.set_attributes(facts.target_attributes(parameters))
            if telemetry.genai_operation is not None:
                span.set_attributes(facts.genai_attributes(parameters, telemetry.genai_operation))
            body = getattr(parameters, "body", None)
            if telemetry.capture_bodies and body is not None:  # none: a location, or events
                span.set_attribute(facts.REQUEST_BODY, telemetry.body_text(body))

    # -- the call ----------------------------------------------------------------------

    def attach(self) -> Token[otel_context.Context] | None:
        """Make the span current while the stack runs; None (nothing to undo) for a span that is
        not recording: what runs below would see the same trace and parent either way, so the
        no-op case skips the context switch."""
        if not self.recording:
            return None
        return otel_context.attach(trace.set_span_in_context(self.span))

    def succeeded(self, ctx: Context, result: Any) -> Any:
        """The stack returned: end the span, or hand the caller a stream that ends it."""
        self.attempts = facts.attempts_made(ctx)
        if self.recording:
            span = self.span
            span.set_attributes(facts.transport_attributes(ctx))
            span.set_attributes(facts.result_attributes(result))
        traced = _traced_class(result)
        if traced is not None:
            if self.telemetry.capture_bodies and self.recording:
                self.body = bytearray()
                self.capturing = True
            result.__class__ = traced
            result._otel_call = self
            return result
        if self.recording:
            if self.telemetry.genai_operation is not None:
                self.span.set_attributes(facts.token_usage(result))
            body = getattr(result, "body", None)
            if self.telemetry.capture_bodies and body is not None:
                self.span.set_attribute(facts.RESPONSE_BODY, self.telemetry.body_text(body))
        self._end(None)
        return result

    def failed(self, ctx: Context, error: BaseException) -> None:
        self.attempts = facts.attempts_made(ctx)
        if self.recording:
            self.span.set_attributes(facts.transport_attributes(ctx))
        self._end(error)

    # -- attempts ----------------------------------------------------------------------

    def attempt_started(self, attempt: int) -> None:
        if self.recording:
            self.span.add_event("retry", {facts.ATTEMPTS: attempt})

    def attempt_failed(self, attempt: int, error: BaseException) -> None:
        if self.recording:
            found = facts.error_attributes(error)
            found[facts.ATTEMPTS] = attempt
            self.span.add_event("attempt failed", found)

    # -- a stream ----------------------------------------------------------------------

    def stream_event(self, part: Any) -> None:
        self.events += 1
        if self.events == 1:
            elapsed = time.perf_counter() - self.start
            self.telemetry.time_to_first_event.record(elapsed, self.attributes)
            if self.recording:
                self.span.set_attribute(facts.STREAM_TTFE, elapsed)
                self.span.add_event("first event")
        if self.capturing and self.body is not None:
            self.capturing = stream_capture(self.body, part.bytes)

    def stream_ended(self, outcome: str, error: BaseException | None) -> None:
        if self.ended:
            return
        if self.recording:
            self.span.set_attributes({facts.STREAM_EVENTS: self.events, facts.STREAM_OUTCOME: outcome})
            if self.body is not None:
                self.span.set_attribute(facts.RESPONSE_BODY, self.telemetry.body_text(bytes(self.body)))
        self._end(error)

    # -- ending ------------------------------------------------------------------------

    def _end(self, error: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        telemetry = self.telemetry
        attributes = self.attributes
        if error is not None:
            attributes = {**attributes, "error.type": facts.error_type(error)}
            if self.recording:
                self.span.set_attributes(facts.error_attributes(error))
                self.span.set_status(Status(StatusCode.ERROR, attributes["error.type"]))
            telemetry.errors.add(1, attributes)
        telemetry.duration.record(time.perf_counter() - self.start, attributes)
        telemetry.attempts.add(self.attempts, self.attributes)
        self.span.end()


class OTelOperationSpan:
    """Initialize step, first: the call's span, current while the stack runs."""

    id = "OTelOperationSpan"

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def handle(self, ctx: Context, in_: InitializeInput, next: Next[InitializeInput, InitializeOutput]) -> InitializeOutput:
        call = Call(self.telemetry, ctx, in_.parameters)
        ctx.set(CALL, call)
        token = call.attach()
        try:
            out = next(ctx, in_)
        except BaseException as error:
            call.failed(ctx, error)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
        out.result = call.succeeded(ctx, out.result)
        return out

    async def ahandle(self, ctx: Context, in_: InitializeInput, next: AsyncNext) -> InitializeOutput:
        call = Call(self.telemetry, ctx, in_.parameters)
        ctx.set(CALL, call)
        token = call.attach()  # in this task's context only
        try:
            out: InitializeOutput = await next(ctx, in_)
        except BaseException as error:
            call.failed(ctx, error)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
        out.result = call.succeeded(ctx, out.result)
        return out


class OTelAttempts:
    """Finalize step, right after Retry: each retry and each failed attempt as a span event."""

    id = "OTelAttempts"

    def handle(self, ctx: Context, in_: FinalizeInput, next: Next[FinalizeInput, FinalizeOutput]) -> FinalizeOutput:
        call = ctx.get(CALL)
        if call is None or not call.recording:
            return next(ctx, in_)
        attempt = ctx.get(keys.ATTEMPT, 1)
        if attempt > 1:
            call.attempt_started(attempt)
        try:
            return next(ctx, in_)
        except Exception as error:
            call.attempt_failed(attempt, error)
            raise

    async def ahandle(self, ctx: Context, in_: FinalizeInput, next: AsyncNext) -> FinalizeOutput:
        call = ctx.get(CALL)
        if call is None or not call.recording:
            out: FinalizeOutput = await next(ctx, in_)
            return out
        attempt = ctx.get(keys.ATTEMPT, 1)
        if attempt > 1:
            call.attempt_started(attempt)
        try:
            out = await next(ctx, in_)
        except Exception as error:
            call.attempt_failed(attempt, error)
            raise
        return out


class OTelXRayTraceHeader:
    """Build step: ``X-Amzn-Trace-Id`` from the call's span (or the current one), unless set.

    The header is never signed, so it may sit before or after Signing; in Build every attempt
    carries the same value.
    """

    id = "OTelXRayTraceHeader"

    def handle(self, ctx: Context, in_: BuildInput, next: Next[BuildInput, BuildOutput]) -> BuildOutput:
        return next(ctx, self._add(ctx, in_))

    async def ahandle(self, ctx: Context, in_: BuildInput, next: AsyncNext) -> BuildOutput:
        out: BuildOutput = await next(ctx, self._add(ctx, in_))
        return out

    def _add(self, ctx: Context, in_: BuildInput) -> BuildInput:
        call = ctx.get(CALL)
        span = call.span if call is not None else trace.get_current_span()
        span_context = span.get_span_context()
        headers = in_.request.headers
        if span_context.is_valid and HEADER not in headers:
            headers[HEADER] = trace_header(span_context.trace_id, span_context.span_id, span_context.trace_flags.sampled)
        return in_


class TracedResponseStream(ResponseStream):
    """A :class:`ResponseStream` that ends its call's span when it is exhausted, fails or is closed.

    The traced call's stream becomes this class in place (its ``__class__`` is swapped), so the
    caller still holds the ResponseStream the client made, with nothing copied.
    """

    _otel_call: Call
    _otel_reading = False

    def __next__(self) -> Any:
        call = self._otel_call
        self._otel_reading = True  # the stream closes itself at its end: that is not "closed"
        try:
            part = ResponseStream.__next__(self)
        except StopIteration:
            call.stream_ended("exhausted", None)
            raise
        except BaseException as error:
            call.stream_ended("failed", error)
            raise
        finally:
            self._otel_reading = False
        call.stream_event(part)
        return part

    def close(self) -> None:
        ResponseStream.close(self)
        if not self._otel_reading:
            self._otel_call.stream_ended("closed", None)


class TracedAsyncResponseStream(AsyncResponseStream):
    """TracedResponseStream's asyncio twin: ends the span when ``async for`` ends, fails or
    the stream is closed with ``aclose``."""

    _otel_call: Call
    _otel_reading = False

    async def __anext__(self) -> Any:
        call = self._otel_call
        self._otel_reading = True
        try:
            part = await AsyncResponseStream.__anext__(self)
        except StopAsyncIteration:
            call.stream_ended("exhausted", None)
            raise
        except BaseException as error:
            call.stream_ended("failed", error)
            raise
        finally:
            self._otel_reading = False
        call.stream_event(part)
        return part

    async def aclose(self) -> None:
        await AsyncResponseStream.aclose(self)
        if not self._otel_reading:
            self._otel_call.stream_ended("closed", None)


def _traced_class(result: Any) -> type | None:
    """The traced class to swap a stream's class to; None for a result that is not a stream."""
    if isinstance(result, ResponseStream):
        return TracedResponseStream
    if isinstance(result, AsyncResponseStream):
        return TracedAsyncResponseStream
    return None
