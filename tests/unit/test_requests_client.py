"""RequestsHTTPClient's connections, without a network: what one request writes, and in how many writes."""

from __future__ import annotations

import pytest

from smruntime.transport.requests_client import _TrackedHTTPConnection
from smruntime.transport.shared import COALESCE_LIMIT


class _RecordingSocket:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def settimeout(self, timeout: float | None) -> None:
        """urllib3 sets the timeout before each request."""

    def close(self) -> None:
        """Nothing to release."""


def _send(body: bytes | None) -> list[bytes]:
    connection = _TrackedHTTPConnection("model.example", 8080)
    sock = _RecordingSocket()
    connection.sock = sock  # type: ignore[assignment]
    headers = {"Content-Type": "application/json", "User-Agent": "test"}
    if body is not None:
        headers["Content-Length"] = str(len(body))
    connection.request("POST", "/endpoints/ep/invocations", body=body, headers=headers)
    return sock.writes


def test_a_small_body_goes_out_in_the_same_write_as_the_head() -> None:
    writes = _send(b'{"numbers": [1, 2]}')
    assert len(writes) == 1
    head, _, body = writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /endpoints/ep/invocations HTTP/1.1\r\n")
    assert b"Content-Length: 19" in head
    assert body == b'{"numbers": [1, 2]}'


@pytest.mark.parametrize("body", [None, b"x" * (COALESCE_LIMIT + 1)], ids=["no body", "large body"])
def test_the_head_is_never_lost_or_doubled(body: bytes | None) -> None:
    writes = _send(body)
    wire = b"".join(writes)
    assert wire.count(b"POST /endpoints/ep/invocations HTTP/1.1\r\n") == 1
    assert wire.endswith(b"\r\n\r\n" + (body or b""))
    assert len(writes) == (1 if body is None else 2)
