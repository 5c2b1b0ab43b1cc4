"""The X-Ray trace header (``X-Amzn-Trace-Id``) for a span context: sans-IO, no OpenTelemetry import."""

from __future__ import annotations

HEADER = "X-Amzn-Trace-Id"
"""Never signed (it is in ``smruntime.auth.UNSIGNED_HEADERS``): tracing agents rewrite it in flight."""


def trace_header(trace_id: int, span_id: int, sampled: bool) -> str:
    """``Root=1-<8 hex epoch>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`` for a W3C trace/span id.

    X-Ray's root is the 128-bit trace id split after its first 32 bits, which X-Ray reads as
    the epoch second the trace began; OpenTelemetry's AWS X-Ray id generator makes ids that way,
    and any other 128-bit id still round-trips through the header unchanged.
    """
    hex_id = f"{trace_id:032x}"
    return f"Root=1-{hex_id[:8]}-{hex_id[8:]};Parent={span_id:016x};Sampled={1 if sampled else 0}"
