"""A cold start of the default client loads only what its first InvokeEndpoint needs.

The AWS Lambda case, in a fresh interpreter: credentials in ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``Client(region=..., endpoint_url=...)`` and one ``invoke_endpoint``
against a real server on loopback. Whatever the call does not use (the other operations, event
streams, asyncio, the other HTTP clients, requests, botocore, the endpoint rules, the local
endpoint, the CLI, bulk and tracing) must stay unimported: each would add to every cold start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.servers import HTTPTestServer, RecordedRequest, respond

_COLD_START = """
import json, sys
from smruntime import Client
client = Client(region="us-east-1", endpoint_url=sys.argv[1])
out = client.invoke_endpoint(endpoint_name="ep", body=b"{}", content_type="application/json")
print(json.dumps({"body": out.body.decode(), "modules": sorted(sys.modules)}))
"""

NOT_IMPORTED = (
    "asyncio",
    "boto3",
    "botocore",
    "certifi",
    "configparser",
    "requests",
    "smruntime.async_client",
    "smruntime.async_inference",
    "smruntime.bulk",
    "smruntime.cli",
    "smruntime.endpoint_rules",
    "smruntime.eventstream",
    "smruntime.local",
    "smruntime.middleware.async_adapters",
    "smruntime.operations.invoke_endpoint_async",
    "smruntime.operations.invoke_endpoint_with_response_stream",
    "smruntime.otel",
    "smruntime.retry.adaptive",
    "smruntime.retry.limiter",
    "smruntime.streaming",
    "smruntime.transport.fast_client",
    "smruntime.transport.http11",
    "smruntime.transport.requests_proxy",
    "smruntime.types.async_inference",
    "smruntime.types.bidirectional",
    "smruntime.types.response_stream",
    "tenacity",
)
"""Modules (and their submodules) a plain InvokeEndpoint cold start must not import."""

# The cold-start benchmark's floor: what a client on requests' engine and attrs cannot avoid.
_FLOOR = """
import json, sys
import attrs
import urllib3
body = urllib3.connection_from_url(sys.argv[1]).urlopen(
    "POST", "/endpoints/ep/invocations", body=b"{}", headers={"Content-Type": "application/json"}).data
print(json.dumps({"body": body.decode(), "modules": sorted(sys.modules)}))
"""


def _lambda_environment() -> dict[str, str]:
    """Credentials from the two variables only: no profile, no config files, no proxy."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and not name.lower().endswith("_proxy")
    }
    env.update(AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="secret", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, env.get("PYTHONPATH"))))
    return env


def _run(program: str) -> tuple[dict[str, Any], list[RecordedRequest]]:
    """``program``'s printed result and the requests it sent, in a fresh interpreter."""
    with HTTPTestServer() as server:
        server.enqueue(respond(200, b'{"ok": 1}', headers=[("Content-Type", "application/json")]))
        done = subprocess.run([sys.executable, "-c", program, server.url], capture_output=True, text=True,
                              env=_lambda_environment(), timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        requests = list(server.requests)
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["body"] == '{"ok": 1}'
    return result, requests


def test_a_plain_invoke_endpoint_cold_start_imports_only_what_the_call_needs() -> None:
    result, (request,) = _run(_COLD_START)
    assert (request.header("Authorization") or "").startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    modules = set(result["modules"])
    assert {"urllib3", "smruntime.transport.requests_client"} <= modules  # the default client did answer
    loaded = sorted(name for name in modules if any(name == bad or name.startswith(bad + ".") for bad in NOT_IMPORTED))
    assert loaded == []


def test_outside_smruntime_the_cold_start_imports_no_more_than_the_benchmark_floor() -> None:
    """The benchmark's floor row (urllib3 and attrs imported, one POST) is what the default client
    cannot do without; any other module its cold start pulls in is a cost of smruntime's own."""
    ours, _ = _run(_COLD_START)
    floor, _ = _run(_FLOOR)
    extra = sorted(name for name in set(ours["modules"]) - set(floor["modules"]) if not name.startswith("smruntime"))
    assert extra == []
