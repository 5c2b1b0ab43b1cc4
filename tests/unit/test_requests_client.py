"""RequestsHTTPClient without a network: what one request writes, in how many writes, and the pool a
direct origin gets."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from smruntime.transport.requests_client import _POOL_CLASSES, RequestsHTTPClient, _TrackedHTTPConnection
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


# -- a direct origin's pool is the one requests' adapter would make ----------------------------


def _pool_settings(pool: Any) -> dict[str, Any]:
    names = ("scheme", "host", "port", "cert_reqs", "ca_certs", "ca_cert_dir", "block", "cert_file", "key_file")
    return {name: getattr(pool, name, None) for name in names} | {"size": pool.pool.maxsize, "type": type(pool)}


@pytest.mark.parametrize("origin", ["https://runtime.example:8443", "https://Runtime.Example", "http://127.0.0.1:8080",
                                    "https://[::1]:9443"])
@pytest.mark.parametrize("verify", [True, False, "file", "folder"])
def test_a_direct_pool_has_the_settings_requests_adapter_gives_it(
    origin: str, verify: bool | str, tmp_path: pathlib.Path
) -> None:
    import requests

    from smruntime.transport.requests_proxy import ProxyAdapter

    if verify == "file":
        verify = str(tmp_path / "ca.pem")
        pathlib.Path(verify).write_text("not read until a connection is made\n")
    elif verify == "folder":
        verify = str(tmp_path)
    client = RequestsHTTPClient(max_pool_connections=3, verify=verify)
    scheme, _, netloc = origin.partition("://")
    ours = client._direct_pool(scheme, netloc)

    adapter = ProxyAdapter(_POOL_CLASSES, pool_connections=10, pool_maxsize=3, pool_block=True)
    adapter.poolmanager.pool_classes_by_scheme = dict(_POOL_CLASSES)
    prepared = requests.PreparedRequest()
    prepared.url = origin + "/"
    theirs = adapter.get_connection_with_tls_context(prepared, verify)
    adapter.cert_verify(theirs, origin + "/", verify, None)  # type: ignore[no-untyped-call]

    if scheme == "http":  # requests' cert_verify also stamps CERT_NONE on a plain-HTTP pool, unused there
        for name in ("cert_reqs", "ca_certs", "ca_cert_dir"):
            setattr(theirs, name, getattr(ours, name, None))
    assert _pool_settings(ours) == _pool_settings(theirs)
    client.close()
    adapter.close()
