"""OpenTelemetry tracing and metrics for smruntime calls (the ``otel`` extra).

Nothing here is imported unless you import it: a client without ``instrument()`` never loads
OpenTelemetry. ::

    import smruntime
    import smruntime.otel

    client = smruntime.Client(region="us-east-1", api_options=[smruntime.otel.instrument()])
"""

try:
    import opentelemetry.trace  # noqa: F401  # the one dependency: say how to get it
except ImportError as error:  # pragma: no cover - exercised in a subprocess
    raise ImportError("smruntime.otel needs the OpenTelemetry API: pip install 'smruntime[otel]'") from error

from smruntime.otel.instrument import (
    CALL_ATTEMPTS,
    CALL_DURATION,
    CALL_ERRORS,
    SCOPE,
    TIME_TO_FIRST_EVENT,
    instrument,
)
from smruntime.redaction import REDACTED, SECRET_KEYS, redact_json

__all__ = [
    "CALL_ATTEMPTS",
    "CALL_DURATION",
    "CALL_ERRORS",
    "REDACTED",
    "SCOPE",
    "SECRET_KEYS",
    "TIME_TO_FIRST_EVENT",
    "instrument",
    "redact_json",
]
