"""FastHTTPClient's parts that need no socket: where a connection goes, and what is refused first."""

from __future__ import annotations

import pytest

from smruntime.errors import ConnectError
from smruntime.http import Headers, HTTPRequest
from smruntime.transport import FastHTTPClient
from smruntime.transport.fast_client import _host_and_port


@pytest.mark.parametrize(
    ("address", "default_port", "expected"),
    [
        ("runtime.sagemaker.us-east-1.amazonaws.com", 443, ("runtime.sagemaker.us-east-1.amazonaws.com", 443)),
        ("localhost:8080", 80, ("localhost", 8080)),
        ("127.0.0.1", 80, ("127.0.0.1", 80)),
        ("[::1]:8443", 443, ("::1", 8443)),
        ("[::1]", 443, ("::1", 443)),
        ("[fe80::1:2]", 80, ("fe80::1:2", 80)),
        ("example.com:", 443, ("example.com", 443)),
    ],
)
def test_host_and_port(address: str, default_port: int, expected: tuple[str, int]) -> None:
    assert _host_and_port(address, default_port) == expected


def test_a_port_that_is_not_a_number_is_refused_before_any_connection() -> None:
    with FastHTTPClient() as client:
        request = HTTPRequest("POST", "http://127.0.0.1:http/endpoints/ep/invocations", Headers(), b"{}")
        with pytest.raises(ConnectError, match="invalid port") as caught:
            client.send(request)
    assert caught.value.request_sent is False
