"""What an operation contributes to its stack."""

from __future__ import annotations

from typing import Any, Callable

import attrs

from smruntime.middleware import DeserializeInput, DeserializeOutput, Middleware, SerializeInput, SerializeOutput


@attrs.frozen
class Operation:
    """One API operation: its input type, validator, serializer and deserializer(s)."""

    name: str
    input_type: type[Any]
    validate: Callable[[Any, str], None]
    serializer: Middleware[SerializeInput, SerializeOutput]
    deserializer: Middleware[DeserializeInput, DeserializeOutput]
    event_stream_deserializer: Middleware[DeserializeInput, DeserializeOutput] | None = None
    streams_response: bool = False
