"""The ``smruntime`` command against the local endpoint, as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smruntime.cli import main
from smruntime.local import LocalEndpoint
from tests.integration.aws_env import isolate_aws_env

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    with LocalEndpoint(credentials=(KEY, SECRET)) as running:
        yield running


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws_env(monkeypatch, tmp_path, (KEY, SECRET))


def test_invoke_endpoint_aws_cli_shape_writes_the_answer(endpoint, tmp_path, capsys) -> None:
    outfile = tmp_path / "out.json"
    status = main([
        "invoke-endpoint", "--endpoint-url", endpoint.url, "--region", "us-east-1",
        "--endpoint-name", "sum", "--body", '{"numbers":[1,2,3]}', "--content-type", "application/json",
        str(outfile),
    ])
    assert status == 0
    answer = json.loads(outfile.read_text())
    assert (answer["sum"], answer["mean"]) == (6, 2.0)
    summary = json.loads(capsys.readouterr().out)
    assert summary["ContentType"] == "application/json"
    assert summary["InvokedProductionVariant"] == "AllTraffic"


@pytest.mark.parametrize("command", ["invoke-endpoint", "invoke-endpoint-with-response-stream"])
def test_prefix_aware_id_reaches_the_model(tmp_path, capsysbinary, command) -> None:
    config = tmp_path / "endpoints.toml"
    config.write_text('[[endpoints]]\nname = "inspect"\nmodel = "inspect"\n')
    with LocalEndpoint(config, credentials=(KEY, SECRET)) as running:
        status = main([
            command, "--endpoint-url", running.url, "--region", "us-east-1",
            "--endpoint-name", "inspect", "--body", "x", "--prefix-aware-id", "chat-app-1",
            *(["-"] if command == "invoke-endpoint" else []),
        ])
    assert status == 0
    assert json.loads(capsysbinary.readouterr().out)["prefix_aware_id"] == "chat-app-1"


def test_fileb_reads_a_binary_body_and_dash_writes_to_stdout(endpoint, tmp_path, capsysbinary) -> None:
    payload = bytes(range(256))
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    status = main([
        "invoke-endpoint", "--endpoint-url", endpoint.url, "--region", "us-east-1",
        "--endpoint-name", "echo", "--body", f"fileb://{source}", "-",
    ])
    assert status == 0
    assert capsysbinary.readouterr().out == payload


def test_a_service_error_is_one_line_and_a_nonzero_status(endpoint, tmp_path, capsys) -> None:
    status = main([
        "invoke-endpoint", "--endpoint-url", endpoint.url, "--region", "us-east-1",
        "--endpoint-name", "nope", "--body", "x", str(tmp_path / "out"),
    ])
    captured = capsys.readouterr()
    assert status == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("smruntime: error: ") and "ValidationError" in lines[0]
    assert "Traceback" not in captured.err


def test_invalid_input_names_the_field(endpoint, tmp_path, capsys) -> None:
    status = main([
        "invoke-endpoint", "--endpoint-url", endpoint.url, "--region", "us-east-1",
        "--endpoint-name", "bad name", "--body", "x", str(tmp_path / "out"),
    ])
    assert status == 1
    assert "endpoint_name" in capsys.readouterr().err


def test_debug_shows_the_traceback(endpoint, tmp_path) -> None:
    with pytest.raises(Exception, match="ValidationError"):
        main([
            "--debug", "invoke-endpoint", "--endpoint-url", endpoint.url, "--region", "us-east-1",
            "--endpoint-name", "nope", "--body", "x", str(tmp_path / "out"),
        ])


@pytest.mark.parametrize("name", ["invoke-endpoint", "InvokeEndpoint"])
def test_stack_prints_the_default_stack(name, capsys) -> None:
    assert main(["stack", name]) == 0
    out = capsys.readouterr().out
    assert out.startswith("InvokeEndpoint\n\tInitialize stack step\n\t\tRegisterServiceMetadata\n")
    assert out.endswith("\t\tOperationDeserializer\n\t\tRequestResponseLogger\n")


def test_stack_of_the_stream_operation_has_the_event_stream_deserializer(capsys) -> None:
    assert main(["stack", "invoke-endpoint-with-response-stream"]) == 0
    out = capsys.readouterr().out
    assert "\t\tOperationEventStreamDeserializer\n\t\tOperationDeserializer\n" in out


def test_an_unknown_operation_is_one_line(capsys) -> None:
    assert main(["stack", "describe-endpoint"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_serve_runs_the_endpoint_for_boto3(tmp_path) -> None:
    import boto3
    from botocore.config import Config

    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(tmp_path / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials")}
    process = subprocess.Popen(
        [sys.executable, "-m", "smruntime", "serve", "--port", "0"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True,
    )
    try:
        assert process.stderr is not None
        banner = process.stderr.readline()
        url = banner.split(" on ", 1)[1].split(" ", 1)[0]
        client = boto3.client(
            "sagemaker-runtime", endpoint_url=url, region_name="us-east-1",
            aws_access_key_id=KEY, aws_secret_access_key=SECRET, config=Config(retries={"max_attempts": 1}),
        )
        response = client.invoke_endpoint(EndpointName="sum", Body=b'{"numbers": [2, 4]}', ContentType="application/json")
        assert json.loads(response["Body"].read())["sum"] == 6
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def test_serve_without_credentials_says_how_to_call_it_and_that_works(tmp_path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(tmp_path / "config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"))
    process = subprocess.Popen(
        [sys.executable, "-m", "smruntime", "serve", "--port", "0"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True,
    )
    try:
        assert process.stderr is not None
        url = process.stderr.readline().split(" on ", 1)[1].split(" ", 1)[0]
        assert "example pair" in process.stderr.readline()
        exports = process.stderr.readline().split("export ", 1)[1].split()
        caller = {**env, **dict(pair.split("=", 1) for pair in exports)}
        # A second shell that has only what the hint says: the CLI signs with it and gets the answer.
        done = subprocess.run(
            [sys.executable, "-m", "smruntime", "invoke-endpoint", "--endpoint-url", url, "--endpoint-name", "sum",
             "--body", '{"numbers": [2, 4]}', "--content-type", "application/json", "-"],
            capture_output=True, env=caller, text=True, timeout=60, check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[0])["sum"] == 6
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def test_demo_runs_all_three_operations() -> None:
    import io

    from smruntime.demo import run

    out = io.StringIO()
    assert run(out) == 0
    text = out.getvalue()
    assert '"sum": 31' in text
    assert "InvokeEndpoint\n\tInitialize stack step\n" in text
    assert "HTTP exchange (transport)" in text
    assert text.count("ms  b'") == 11  # every token, each on its own line as it arrived
    assert '"sum": 60' in text  # the async result, read back from its file:// location
