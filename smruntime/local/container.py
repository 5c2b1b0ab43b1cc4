"""A model served by a separate HTTP server that implements the SageMaker container contract.

The contract: ``GET /ping`` answers 200 when the container is healthy, ``POST /invocations``
answers an inference. Like SageMaker, the endpoint checks ``/ping`` before the first
invocation (until it passes: ModelNotReadyException otherwise) and forwards only the API's
headers. A 4xx/5xx from the container becomes a ModelFailure (a 424 ModelError to the caller).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import requests

from smruntime.local.models import ModelFailure, ModelNotReady, ModelRequest, ModelResponse

__all__ = ["FORWARDED_HEADERS", "RemoteContainer"]

FORWARDED_HEADERS = {
    "content_type": "Content-Type",
    "accept": "Accept",
    "custom_attributes": "X-Amzn-SageMaker-Custom-Attributes",
    "inference_id": "X-Amzn-SageMaker-Inference-Id",
    "target_model": "X-Amzn-SageMaker-Target-Model",
    "session_id": "X-Amzn-SageMaker-Session-Id",
    "enable_explanations": "X-Amzn-SageMaker-Enable-Explanations",
}
"""ModelRequest field -> the header the container receives it in."""

_PING_TIMEOUT = 2.0
_CONNECT_TIMEOUT = 2.0
_CHUNK = 64 * 1024


class RemoteContainer:
    """Calls ``{url}/invocations`` for each request; safe to share between threads."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._session = requests.Session()
        # The container gets exactly the headers below, not requests' defaults (Accept: */*, ...).
        self._session.headers.clear()
        self._healthy = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RemoteContainer({self.url!r})"

    def ping(self) -> bool:
        """True if ``GET /ping`` answers 200."""
        try:
            with self._session.get(f"{self.url}/ping", timeout=_PING_TIMEOUT) as response:
                return response.status_code == 200
        except requests.RequestException:
            return False

    def __call__(self, request: ModelRequest) -> ModelResponse:
        self._ensure_healthy(request)
        headers = {name: value for field, name in FORWARDED_HEADERS.items()
                   if (value := getattr(request, field)) is not None}
        try:
            response = self._session.post(
                f"{self.url}/invocations",
                data=request.body,
                headers=headers,
                timeout=(_CONNECT_TIMEOUT, request.timeout),
                stream=True,
            )
        except requests.Timeout:
            raise TimeoutError(f"container {request.container} did not answer in {request.timeout} s") from None
        except requests.RequestException as exc:
            # The container is gone: the caller sees what a crashed container gives, a 5xx.
            self._healthy = False
            raise ModelFailure(502, f"could not reach container at {self.url}: {type(exc).__name__}") from None
        if response.status_code >= 300:
            with response:
                raise ModelFailure(response.status_code, response.text)
        session_id = _session_id(response.headers.get("X-Amzn-SageMaker-New-Session-Id"))
        return ModelResponse(
            body=_chunks(response),
            content_type=response.headers.get("Content-Type"),
            custom_attributes=response.headers.get("X-Amzn-SageMaker-Custom-Attributes"),
            session_id=session_id,
            close_session="X-Amzn-SageMaker-Closed-Session-Id" in response.headers,
        )

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()

    def _ensure_healthy(self, request: ModelRequest) -> None:
        with self._lock:
            if not self._healthy:
                self._healthy = self.ping()
            if not self._healthy:
                raise ModelNotReady(f"container {request.container} at {self.url} did not pass GET /ping")


def _chunks(response: requests.Response) -> Iterator[bytes]:
    # Each HTTP chunk of a chunked reply as it arrives, else whatever one socket read brings:
    # never wait for a full buffer, so whatever the container streams is streamed on.
    with response:
        raw = response.raw
        if raw.chunked and raw.supports_chunked_reads():
            yield from raw.read_chunked(decode_content=True)
        else:
            while data := raw.read1(_CHUNK, decode_content=True):
                yield data


def _session_id(header: str | None) -> str | None:
    # "<id>; Expires=<timestamp>": the endpoint sets its own expiry, only the id is kept.
    if not header:
        return None
    return header.split(";", 1)[0].strip() or None
