"""The ``HTTPClient`` protocol: what the stack's terminal handler needs from an HTTP client."""

from __future__ import annotations

from typing import Protocol

from smruntime.http import HTTPRequest, HTTPResponse

__all__ = ["HTTPClient"]


class HTTPClient(Protocol):
    """Sends one HTTP request: the terminal handler of every stack."""

    def send(self, request: HTTPRequest, *, stream: bool = False) -> HTTPResponse:
        """Send ``request``. With ``stream``, the body stays on the wire for the caller to read."""
        ...

    def close(self) -> None:
        """Release pooled connections."""
        ...
