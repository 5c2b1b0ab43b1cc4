"""Each HTTP client loads only what it uses: a program on FastHTTPClient never imports requests,
nor http.client or ssl while it only talks plain HTTP to the origin itself; the default client
loads urllib3, and requests only for an origin behind a proxy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from smruntime.errors import ConnectError
from smruntime.transport import map_transport_error

_PROBE = """
import json, sys
from smruntime import Client
from smruntime.transport import FastHTTPClient, map_transport_error
after_import = sorted(name for name in ("requests", "urllib3", "http.client", "ssl") if name in sys.modules)
client = Client(region="us-east-1", credentials=("AKID", "SECRET"), endpoint_url="http://127.0.0.1:9",
                http_client=FastHTTPClient())
error = map_transport_error(ConnectionRefusedError(111, "refused"))
after_fast = sorted(name for name in ("requests", "urllib3", "http.client", "ssl") if name in sys.modules)
Client(region="us-east-1", credentials=("AKID", "SECRET"))
after_default = sorted(name for name in ("requests", "urllib3", "http.client", "ssl") if name in sys.modules)
print(json.dumps([after_import, after_fast, type(error).__name__, after_default]))
"""


def _run_probe() -> list[object]:
    env = {name: value for name, value in os.environ.items() if not name.lower().endswith("_proxy")}
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, check=True)
    parsed: list[object] = json.loads(result.stdout)
    return parsed


def test_fast_client_imports_no_http_library_and_the_default_client_only_urllib3() -> None:
    after_import, after_fast, error_name, after_default = _run_probe()
    assert after_import == []
    assert after_fast == []
    assert error_name == "ConnectError"
    assert {"urllib3", "http.client"} <= set(after_default)
    assert "requests" not in after_default


def test_library_exceptions_are_classified_once_their_modules_are_loaded() -> None:
    import urllib3.exceptions

    error = map_transport_error(urllib3.exceptions.NewConnectionError(None, "refused"))  # type: ignore[arg-type]
    assert isinstance(error, ConnectError)
    assert error.request_sent is False
