"""Ray Data integration: score a ``ray.data.Dataset`` through an endpoint.

::

    dataset.map_batches(
        InvokeEndpointBatch,
        fn_constructor_kwargs={"endpoint_name": "my-endpoint", "content_type": "application/json"},
        concurrency=4,  # actors, one client each
    )

Each actor holds one ``Client`` and sends the rows of every batch with ``invoke_many``, at
most ``per_actor_concurrency`` calls in flight; the batch comes back with the columns
``output`` (the response body, or None), ``error`` (None, or ``"ErrorType: message"``),
``attempts`` and ``latency``. One row's failure never fails the batch.
"""

from __future__ import annotations

from typing import Any

from smruntime.bulk.scheduler import BulkResult


class InvokeEndpointBatch:
    """A callable class for ``Dataset.map_batches``: one client per actor, bounded calls per batch."""

    def __init__(
        self,
        endpoint_name: str,
        *,
        column: str = "body",
        content_type: str | None = None,
        accept: str | None = None,
        per_actor_concurrency: int = 16,
        client_fields: dict[str, Any] | None = None,
    ) -> None:
        from smruntime.client import Client

        self._endpoint_name = endpoint_name
        self._column = column
        self._content_type = content_type
        self._accept = accept
        self._concurrency = per_actor_concurrency
        fields = {"max_pool_connections": per_actor_concurrency, **(client_fields or {})}
        self._client = Client(**fields)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        bodies = (_body(value) for value in batch[self._column])
        results = list(self._client.invoke_many(
            bodies, endpoint_name=self._endpoint_name, content_type=self._content_type, accept=self._accept,
            concurrency=self._concurrency, ordered=True,
        ))
        return {
            **batch,
            "output": [r.output.body if r.output is not None else None for r in results],
            "error": [_error_text(r) for r in results],
            "attempts": [r.attempts for r in results],
            "latency": [r.latency for r in results],
        }

    def __del__(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()


def _body(value: Any) -> bytes | str:
    if isinstance(value, (bytes, str)):
        return value
    if hasattr(value, "tobytes"):  # a numpy bytes scalar
        return bytes(value)
    raise TypeError(f"column value must be bytes or str, got {type(value).__name__}")


def _error_text(result: BulkResult) -> str | None:
    if result.error is None:
        return None
    last = getattr(result.error, "last_error", result.error)
    return f"{type(last).__name__}: {' '.join(str(result.error).split())}"
