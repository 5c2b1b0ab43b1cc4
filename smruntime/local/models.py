"""The model interface of the local endpoint (``model_refs`` resolves a model reference).

A model is any callable ``(ModelRequest) -> ModelResponse | bytes | Iterator[bytes]``. It runs
in a worker thread, so it may block. Returning an iterator (a generator) lets the streaming
operation send each chunk as it is produced; InvokeEndpoint joins the chunks. A model signals
a container error by raising ``ModelFailure(status, message)``, which the endpoint answers
like the service answers a container's 4xx/5xx: ``ModelError`` (424) with
``OriginalStatusCode`` and ``OriginalMessage``. Any other exception counts as a 500 from the
container.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeAlias

import attrs

from smruntime.middleware.reprs import fields_repr

__all__ = [
    "Model",
    "ModelFailure",
    "ModelNotReady",
    "ModelOutput",
    "ModelRequest",
    "ModelResponse",
    "ModelSpec",
]


@attrs.frozen
class ModelRequest:
    """What the model sees: the body and the API headers SageMaker passes to a container."""

    __repr__ = fields_repr

    body: bytes = attrs.field(repr=False)
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = attrs.field(default=None, repr=False)
    target_model: str | None = None
    target_variant: str | None = None
    target_container_hostname: str | None = None
    inference_id: str | None = None
    enable_explanations: str | None = None
    inference_component: str | None = None
    session_id: str | None = None
    """The caller's session: ``NEW_SESSION``, an open session's id, or None."""
    prefix_aware_id: str | None = None
    """The caller's routing hint for prefix-aware routing (one instance locally: nothing to route)."""
    endpoint_name: str = ""
    variant_name: str = ""
    container: str = "primary"
    """The container hostname being invoked (``primary`` for single-container variants)."""
    operation: str = "InvokeEndpoint"
    timeout: float = 60.0
    """Seconds the endpoint waits for this model before answering with a timeout ModelError."""


@attrs.frozen
class ModelResponse:
    """A model's answer; ``body`` may be an iterator of chunks for streaming."""

    __repr__ = fields_repr

    body: bytes | Iterable[bytes] = attrs.field(default=b"", repr=False)
    content_type: str | None = None
    custom_attributes: str | None = attrs.field(default=None, repr=False)
    session_id: str | None = None
    """On a NEW_SESSION request: the id to give the new session (the endpoint makes one if None)."""
    close_session: bool = False
    """Close the caller's session; answered with ``X-Amzn-SageMaker-Closed-Session-Id``."""


ModelOutput: TypeAlias = ModelResponse | bytes | Iterator[bytes]


class Model(Protocol):
    """Anything callable with a ModelRequest."""

    def __call__(self, request: ModelRequest, /) -> ModelOutput: ...


ModelSpec: TypeAlias = str | Model


class ModelFailure(Exception):
    """Raised by a model to answer like a container returning HTTP ``status`` with ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class ModelNotReady(Exception):
    """Raised when a container does not pass its health check (``GET /ping``) yet."""
