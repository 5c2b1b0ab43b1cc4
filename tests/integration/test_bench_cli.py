"""``smruntime bench`` against the local endpoint, and the benchmark harness's own server.

Behaviour only: what is reported and counted, never how fast.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.server import LoopbackServer
from smruntime import Client, errors
from smruntime.cli import main
from smruntime.local import LocalEndpoint
from smruntime.transport import FastHTTPClient
from tests.integration.aws_env import isolate_aws_env

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    with LocalEndpoint(credentials=(KEY, SECRET)) as running:
        yield running


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws_env(monkeypatch, tmp_path, (KEY, SECRET))


def _bench(endpoint: LocalEndpoint, *extra: str) -> int:
    return main(["bench", "--endpoint-url", endpoint.url, "--region", "us-east-1", *extra])


def test_bench_reports_percentiles_throughput_and_client_side_time(
    endpoint: LocalEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _bench(endpoint, "--endpoint-name", "sum", "-n", "40", "--concurrency", "3", "--warmup", "5")
    out, err = capsys.readouterr()
    assert status == 0
    assert "InvokeEndpoint 'sum'" in out and "concurrency 3" in out
    assert "40 (40 ok, 0 failed)" in out
    latency = re.search(r"p50 ([\d.]+)  p90 ([\d.]+)  p99 ([\d.]+)", out)
    assert latency is not None
    p50, p90, p99 = (float(value) for value in latency.groups())
    assert 0 < p50 <= p90 <= p99
    assert re.search(r"throughput:  [\d,.]+ calls/s", out)
    assert "errors:      none" in out
    for step in ("Initialize", "Serialize", "Build", "Finalize", "Deserialize"):
        assert f"{step} stack step" in out
    for middleware in ("Signing", "Retry", "OperationDeserializer", "RequestResponseLogger"):
        assert middleware in out
    assert "\r[" not in err  # stderr is not a terminal here: no progress bar


def test_bench_sends_the_body_and_content_type_given(
    endpoint: LocalEndpoint, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    payload = tmp_path / "numbers.json"
    payload.write_text('{"numbers": [2, 4]}')
    status = _bench(endpoint, "--endpoint-name", "echo", "-n", "3", "--warmup", "0", "--no-progress",
                    "--body", f"fileb://{payload}", "--content-type", "application/json")
    assert status == 0
    assert "3 (3 ok, 0 failed)" in capsys.readouterr().out
    with Client(region="us-east-1", endpoint_url=endpoint.url) as client:
        echoed = client.invoke_endpoint(endpoint_name="echo", body=payload.read_bytes(),
                                        content_type="application/json")
    assert json.loads(echoed.body) == {"numbers": [2, 4]}


def test_bench_counts_errors_by_type_and_exits_non_zero(
    endpoint: LocalEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _bench(endpoint, "--endpoint-name", "no-such-endpoint", "-n", "4", "--warmup", "0")
    out = capsys.readouterr().out
    assert status == 1
    assert "4 (0 ok, 4 failed)" in out
    assert "errors:      ValidationError: 4" in out


def test_bench_stops_at_a_failing_warm_up_with_one_line(
    endpoint: LocalEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _bench(endpoint, "--endpoint-name", "no-such-endpoint", "-n", "100")
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("smruntime: error: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_bench_rejects_a_zero_count(endpoint: LocalEndpoint, capsys: pytest.CaptureFixture[str]) -> None:
    assert _bench(endpoint, "--endpoint-name", "sum", "-n", "0") == 1
    assert "--requests must be at least 1" in capsys.readouterr().err


# -- the benchmark harness's loopback server ---------------------------------------------------


@pytest.fixture(scope="module")
def loopback() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


def test_loopback_server_answers_every_post_on_one_kept_alive_connection(loopback: LoopbackServer) -> None:
    before = loopback.accepts
    with FastHTTPClient() as http, Client(region="us-east-1", credentials=(KEY, SECRET), endpoint_url=loopback.url,
                                          http_client=http) as client:
        outs = [client.invoke_endpoint(endpoint_name="bench", body=b"{}", content_type="application/json")
                for _ in range(5)]
    assert [out.body for out in outs] == [b"{}"] * 5
    assert {out.content_type for out in outs} == {"application/json"}
    assert {out.invoked_production_variant for out in outs} == {"AllTraffic"}
    assert loopback.accepts - before == 1


def test_loopback_server_streams_the_requested_bytes_as_payload_parts(loopback: LoopbackServer) -> None:
    with Client(region="us-east-1", credentials=(KEY, SECRET), endpoint_url=loopback.url) as client:
        with client.invoke_endpoint_with_response_stream(
            endpoint_name="bench", body=json.dumps({"bytes": 300_000, "part": 65536})
        ) as stream:
            parts = [part.bytes for part in stream]
        after = client.invoke_endpoint(endpoint_name="bench", body=b"{}")  # the connection still serves
    assert [len(part) for part in parts] == [65536, 65536, 65536, 65536, 300_000 - 4 * 65536]
    assert [int.from_bytes(part[:8], "big") for part in parts] == [0, 1, 2, 3, 4]
    assert after.body == b"{}"


def test_loopback_server_stops_when_asked() -> None:
    server = LoopbackServer().start()
    url = server.url
    server.stop()
    with Client(region="us-east-1", credentials=(KEY, SECRET), endpoint_url=url, retry_mode="none") as client, \
            pytest.raises(errors.ConnectError):
        client.invoke_endpoint(endpoint_name="bench", body=b"{}")
