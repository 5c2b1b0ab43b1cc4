"""The ``smruntime`` command against the local endpoint, as a user would run it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smruntime.cli import main
from smruntime.local import LocalEndpoint
from tests.integration.aws_env import isolate_aws_env
from tests.integration.cli_support import SMRUNTIME, clean_env, hint_environment, serving

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


@pytest.mark.parametrize("where", ["before the command", "after the command"])
def test_debug_shows_the_traceback(endpoint, tmp_path, where) -> None:
    command = ["invoke-endpoint", "--endpoint-url", endpoint.url, "--region", "us-east-1",
               "--endpoint-name", "nope", "--body", "x", str(tmp_path / "out")]
    argv = ["--debug", *command] if where == "before the command" else [*command, "--debug"]
    with pytest.raises(Exception, match="ValidationError"):
        main(argv)


def test_dash_outfile_writes_the_body_to_stdout_and_the_output_fields_to_stderr(endpoint, capfd) -> None:
    status = main([
        "invoke-endpoint", "--endpoint-url", endpoint.url, "--region", "us-east-1",
        "--endpoint-name", "sum", "--body", '{"numbers":[1,2,3]}', "--content-type", "application/json", "-",
    ])
    captured = capfd.readouterr()
    assert status == 0
    assert json.loads(captured.out)["sum"] == 6
    fields = json.loads(captured.err)
    assert fields["ContentType"] == "application/json"
    assert fields["InvokedProductionVariant"] == "AllTraffic"


@pytest.mark.parametrize(("outfile", "says"), [
    ("missing/out.json", "the folder"),
    (".", "is a folder"),
    pytest.param("locked/out.json", "not writable", marks=pytest.mark.skipif(
        os.geteuid() == 0, reason="root may write anywhere")),
])
def test_an_outfile_that_cannot_be_written_is_refused_before_the_model_runs(
        endpoint, tmp_path, capsys, outfile, says) -> None:
    (tmp_path / "locked").mkdir(mode=0o500)
    before = endpoint.counters("sum").snapshot().requests
    status = main([
        "invoke-endpoint", "--endpoint-url", endpoint.url, "--region", "us-east-1",
        "--endpoint-name", "sum", "--body", '{"numbers":[1]}', str(tmp_path / outfile),
    ])
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith(f"smruntime: error: OUTFILE {tmp_path / outfile}: {says}")
    assert endpoint.counters("sum").snapshot().requests == before


@pytest.mark.parametrize(("argv", "says"), [
    (["invoke-endpoint", "--endpoint-name", "sum", "--body", "fileb://{tmp}/nope.bin", "-"],
     "--body fileb://{tmp}/nope.bin: No such file or directory"),
    (["invoke-endpoint", "--endpoint-name", "sum", "--body", "file://{tmp}/latin1.txt", "-"],
     "--body file://{tmp}/latin1.txt: file:// reads UTF-8 text and this file is not; use fileb://"),
    (["invoke-endpoint", "--endpoint-name", "sum", "--body", "fileb://~no-such-user-here/x", "-"],
     "--body fileb://~no-such-user-here/x: No such file or directory"),
    (["serve", "--port", "0", "--config", "{tmp}/nope.toml"], "config file {tmp}/nope.toml: No such file or directory"),
    (["serve", "--port", "0", "--config", "{tmp}"], "config file {tmp}: Is a directory"),
    (["batch", "--endpoint-name", "sum", "--input", "{tmp}/in.jsonl", "--output", "{tmp}/nope/out.jsonl"],
     "--output {tmp}/nope/out.jsonl: No such file or directory"),
])
def test_a_file_option_that_cannot_be_read_or_written_is_named_in_one_line(tmp_path, capsys, argv, says) -> None:
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    (tmp_path / "in.jsonl").write_text("{}\n")
    client = ["--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"] if argv[0] != "serve" else []
    command = [part.format(tmp=tmp_path) for part in argv]
    assert main([command[0], *client, *command[1:]]) == 1
    assert capsys.readouterr().err == f"smruntime: error: {says.format(tmp=tmp_path)}\n"


@pytest.mark.parametrize(("ports", "says"), [
    (["--port", "99999"], "--port must be a port number from 0 to 65535 (0: any free port), got 99999"),
    (["--port", "0", "--http2-port", "70000"],
     "--http2-port must be a port number from 0 to 65535 (0: any free port), got 70000"),
])
def test_serve_refuses_a_port_out_of_range_in_one_line(capsys, ports, says) -> None:
    assert main(["serve", *ports]) == 1
    assert capsys.readouterr().err == f"smruntime: error: {says}\n"


@pytest.mark.parametrize(("argv", "says"), [
    (["serve", "--port", "0", "--header-timeout", "-1"], "--header-timeout must be > 0, not -1.0"),
    (["serve", "--port", "0", "--http2-certfile", "cert.pem"], "--http2-certfile and --http2-keyfile go together"),
    (["invoke-endpoint-async", "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1", "--endpoint-name", "x"],
     "operation error SageMaker Runtime: InvokeEndpointAsync, invalid input: "
     "input_location: is required (or give body, the payload itself) (required)"),
])
def test_the_library_s_advice_is_given_in_the_command_s_terms(capsys, argv, says) -> None:
    assert main(argv) == 1
    assert capsys.readouterr().err == f"smruntime: error: {says}\n"


def test_version_prints_the_package_version(capsys) -> None:
    from smruntime.version import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"smruntime {__version__}"


def test_every_option_of_every_command_has_help_text() -> None:
    import argparse

    from smruntime.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, sub in commands.choices.items()
        for action in sub._actions
        if not action.help
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("flags", "verify"), [([], "<unset>"), (["--no-verify-ssl"], False), (["--ca-bundle", "/path/ca.pem"], "/path/ca.pem")]
)
def test_ca_bundle_and_no_verify_ssl_give_the_verify_option(flags: list[str], verify: object) -> None:
    from smruntime.cli import build_parser, client_fields

    args = build_parser().parse_args(["invoke-endpoint", "--endpoint-name", "ep", "--body", "x", *flags, "-"])
    assert client_fields(args).get("verify", "<unset>") == verify


def test_serve_help_shows_its_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 127.0.0.1)" in out and "(default: 8080)" in out and "(default: 64)" in out
    assert "--no-access-log no line on stdout" in out and "(default: True)" not in out  # a flag has no default shown


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
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("smruntime: error: unknown operation 'describe-endpoint'; known: InvokeEndpoint, ")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_two_servers_on_ports_of_their_own_do_not_collide_over_http2() -> None:
    """Beside any --port but the default, the HTTP/2 listener takes a free port, not 8443."""
    processes = [
        subprocess.Popen([sys.executable, "-m", "smruntime", "serve", "--port", str(_free_port())],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        for _ in range(2)
    ]
    try:
        http2_urls = []
        for process in processes:
            assert process.stderr is not None
            for line in process.stderr:
                if line.startswith("InvokeEndpointWithBidirectionalStream (HTTP/2) on "):
                    http2_urls.append(line.split(" on ", 1)[1].strip())
                    break
        assert len(http2_urls) == 2 and len(set(http2_urls)) == 2
        assert not any(url.endswith(":8443") for url in http2_urls)
        for url in http2_urls:  # each one listening
            host, port = url.removeprefix("http://").rsplit(":", 1)
            socket.create_connection((host, int(port)), timeout=5).close()
        assert all(process.poll() is None for process in processes)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
            if process.stderr is not None:
                process.stderr.close()


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


_INVOKE_SUM = ["invoke-endpoint", "--endpoint-name", "sum", "--body", '{"numbers": [2, 4]}',
               "--content-type", "application/json", "-"]


def test_serve_without_credentials_says_how_to_call_it_and_that_works(tmp_path) -> None:
    env = clean_env(tmp_path)
    with serving([], env) as (url, hint):
        assert "example pair" in hint[0]
        caller = {**env, **hint_environment(hint)}
        assert caller["AWS_DEFAULT_REGION"] == caller["AWS_REGION"]  # boto3 and the AWS CLI v1 read the first
        # A second shell that has only what the hint says: the CLI signs with it and gets the answer.
        done = subprocess.run([SMRUNTIME, *_INVOKE_SUM], capture_output=True, env=caller, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[0])["sum"] == 6
        # boto3 in that shell too: it finds its region (AWS_DEFAULT_REGION) and keys there alone.
        boto3_call = (
            "import sys, boto3\n"
            "client = boto3.client('sagemaker-runtime', endpoint_url=sys.argv[1])\n"
            "answer = client.invoke_endpoint(EndpointName='sum', Body=b'{\"numbers\": [2, 4]}',"
            " ContentType='application/json')\n"
            "print(answer['Body'].read().decode())\n"
        )
        done = subprocess.run([sys.executable, "-c", boto3_call, url], capture_output=True, env=caller, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["sum"] == 6


def test_serve_says_which_region_to_sign_for_when_the_callers_profile_names_another(tmp_path) -> None:
    # Keys from a profile whose region is not the server's: the export line sets the server's,
    # which wins over the profile's, so the second shell's calls are signed for it.
    (tmp_path / "config").write_text("[default]\nregion = eu-west-1\n")
    (tmp_path / "credentials").write_text("[default]\naws_access_key_id = AKIAPROFILEKEY\n"
                                          "aws_secret_access_key = profile-secret\n")
    env = clean_env(tmp_path)
    with serving(["--http2-port", "-1"], env) as (_, hint):
        exports = hint_environment(hint)
        assert "AWS_ACCESS_KEY_ID" not in exports  # the profile's keys are the accepted ones
        assert exports["AWS_REGION"] == exports["AWS_DEFAULT_REGION"] == "us-east-1"
        done = subprocess.run([SMRUNTIME, *_INVOKE_SUM], capture_output=True, env={**env, **exports}, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[0])["sum"] == 6


def test_serve_region_option_sets_the_region_requests_are_signed_for(tmp_path) -> None:
    env = clean_env(tmp_path)
    with serving(["--http2-port", "-1", "--region", "eu-west-1"], env) as (_, hint):
        caller = {**env, **hint_environment(hint)}
        assert caller["AWS_REGION"] == caller["AWS_DEFAULT_REGION"] == "eu-west-1"
        done = subprocess.run([SMRUNTIME, *_INVOKE_SUM], capture_output=True, env=caller, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0, done.stderr
        wrong = subprocess.run([SMRUNTIME, *_INVOKE_SUM, "--region", "us-east-1"], capture_output=True, env=caller,
                               text=True, timeout=60, check=False)
        assert wrong.returncode == 1
        assert "eu-west-1" in wrong.stderr  # the server says which region it wanted
    bad = subprocess.run([SMRUNTIME, "serve", "--port", "0", "--region", "EU West"], capture_output=True, env=env,
                         text=True, timeout=60, check=False)
    assert bad.returncode == 1
    assert bad.stderr == "smruntime: error: --region must be a region name such as 'us-east-1', got 'EU West'\n"


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


def _serve_and_sum(config: Path, cwd: Path) -> tuple[int, str]:
    """Start ``smruntime serve --config`` in ``cwd``; the status of one call to ``sum`` (or of the
    server, if it exited) and what it printed."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "smruntime", "serve", "--port", "0", "--config", str(config)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True, cwd=cwd,
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        if " on http" not in first:
            return process.wait(timeout=30), first + process.stderr.read()
        url = first.split(" on ", 1)[1].split(" ", 1)[0]
        done = subprocess.run(
            [sys.executable, "-m", "smruntime", "invoke-endpoint", "--endpoint-url", url, "--endpoint-name", "sum",
             "--body", "[1, 2]", "-"],
            capture_output=True, env=env, text=True, timeout=60, check=False,
        )
        return done.returncode, done.stdout
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


_MODEL = "import json\n\ndef add(request):\n    return json.dumps(sum(json.loads(request.body))).encode()\n"


@pytest.mark.parametrize("beside", ["the config file", "the current directory"])
def test_serve_loads_a_module_function_model_from_beside_the_config_or_the_current_directory(tmp_path, beside) -> None:
    config_dir, work_dir = tmp_path / "conf", tmp_path / "work"
    config_dir.mkdir()
    work_dir.mkdir()
    module = f"my_models_{beside.split()[1]}"
    (config_dir if beside == "the config file" else work_dir).joinpath(f"{module}.py").write_text(_MODEL)
    config = config_dir / "endpoints.toml"
    config.write_text(f'[[endpoints]]\nname = "sum"\nmodel = "{module}:add"\n')

    status, out = _serve_and_sum(config, cwd=work_dir)
    assert status == 0, out
    assert out.strip() == "3"


@pytest.mark.parametrize(("reference", "missing"), [
    ("no_such_models:add", "no module named 'no_such_models'"),
    ("my_models_here:subtract", "has no attribute 'subtract'"),
    ("broken_models:add", "importing broken_models failed: SyntaxError: "),
    ("failing_models:add", "importing failing_models failed: RuntimeError: no GPU here"),
    ("exiting_models:add", "importing exiting_models failed: SystemExit: 3"),
    ("ftp://models.example/add", "URL scheme 'ftp' is not supported (a container URL is http:// or https://)"),
])
def test_serve_names_the_config_endpoint_and_what_is_missing_in_one_line(tmp_path, reference, missing) -> None:
    (tmp_path / "my_models_here.py").write_text(_MODEL)
    (tmp_path / "broken_models.py").write_text("def add(request)\n    return b''\n")
    (tmp_path / "failing_models.py").write_text("raise RuntimeError('no GPU here')\n")
    (tmp_path / "exiting_models.py").write_text("import sys\nsys.exit(3)\n")
    config = tmp_path / "endpoints.toml"
    config.write_text(f'[[endpoints]]\nname = "sum"\nmodel = "{reference}"\n')

    status, out = _serve_and_sum(config, cwd=tmp_path)
    assert status == 1
    assert "Traceback" not in out
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith(f"smruntime: error: {config}: endpoint 'sum': model '{reference}'")
    assert missing in lines[0]


@pytest.mark.parametrize(("bad", "rule"), [
    ('endpoints = "x"\n', "configuration: endpoints must be an array of tables ([[endpoints]]), got 'x'"),
    ('[[endpoints]]\nname = "sum"\nvariants = "v"\n',
     "endpoint 'sum': variants must be an array of tables ([[endpoints.variants]]), got 'v'"),
    ('[[endpoints]]\nname = "sum"\nmodel = "sum"\nfaults = 3\n',
     "endpoint 'sum': faults must be a table ([endpoints.faults]), got 3"),
    ('[[endpoints]]\nname = "sum"\nmodel = "sum"\n[endpoints.faults]\nlatency = inf\n',
     "endpoint 'sum': faults: latency must be a finite number, got inf"),
    ("max_body_bytes = -5\n", "configuration: max_body_bytes must be >= 1, got -5"),
])
def test_serve_with_a_bad_config_value_prints_one_line_and_exits_non_zero(tmp_path, bad, rule) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(bad)

    status, out = _serve_and_sum(config, cwd=tmp_path)
    assert status == 1
    assert out == f"smruntime: error: {config}: {rule}\n"


def _bidirectional_cli(endpoint: LocalEndpoint, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "smruntime", "invoke-endpoint-with-bidirectional-stream", "--region", "us-east-1",
         "--http2-endpoint-url", endpoint.http2_url, "--endpoint-name", name],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
    )


def test_a_refused_bidirectional_stream_exits_with_one_line_while_stdin_is_still_open(endpoint) -> None:
    # The thread reading stdin is still blocked when the command ends: exiting must not abort Python.
    with _bidirectional_cli(endpoint, "nosuch") as process:
        process.wait(30)  # stdin still open
        _, err = process.communicate()
    stderr = err.decode()
    assert process.returncode == 1, stderr
    assert stderr.startswith("smruntime: error: ") and "Endpoint nosuch" in stderr
    assert "Fatal Python error" not in stderr and len(stderr.splitlines()) == 1


def test_ctrl_c_ends_a_bidirectional_stream_with_status_130(endpoint) -> None:
    with _bidirectional_cli(endpoint, "echo") as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"hello\n")
        process.stdin.flush()
        assert process.stdout.readline() == b"hello\n"
        process.send_signal(signal.SIGINT)
        process.wait(30)
        _, err = process.communicate()
    stderr = err.decode()
    assert process.returncode == 130, stderr
    assert "Fatal Python error" not in stderr and "Traceback" not in stderr


def test_serve_on_a_busy_port_names_the_address(capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        status = main(["serve", "--port", str(port), "--http2-port", str(_free_port())])
    assert status == 1
    error = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}: " in error and len(error.splitlines()) == 1


def test_serve_with_a_config_that_is_not_toml_names_the_file(tmp_path, capsys) -> None:
    config = tmp_path / "endpoints.toml"
    config.write_text('[[endpoints]\nname = "x"\n')
    assert main(["serve", "--config", str(config), "--port", str(_free_port())]) == 1
    error = capsys.readouterr().err
    assert f"{config} is not valid TOML: " in error and "line 1" in error


@pytest.mark.parametrize("missing", ["region", "credentials"])
def test_configuration_errors_give_the_commands_own_advice(
    endpoint, monkeypatch: pytest.MonkeyPatch, capsys, missing: str
) -> None:
    if missing == "region":
        monkeypatch.delenv("AWS_REGION")
        monkeypatch.delenv("AWS_DEFAULT_REGION")
    else:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    status = main(["invoke-endpoint", "--endpoint-name", "echo", "--body", "x", "--endpoint-url", endpoint.url, "-"])
    assert status == 1
    error = capsys.readouterr().err
    assert ("pass --region" if missing == "region" else "pass --profile") in error
    assert "Client(" not in error and "credentials=" not in error


@pytest.mark.parametrize("access_log", [True, False])
def test_serve_writes_an_access_log_line_per_request_and_stream_unless_told_not_to(tmp_path, access_log) -> None:
    from smruntime import Client

    env = clean_env(tmp_path, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    argv = [sys.executable, "-m", "smruntime", "serve", "--port", "0", "--http2-port", "0"]
    process = subprocess.Popen(argv + ([] if access_log else ["--no-access-log"]),
                               stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert process.stderr is not None
        line = ""
        while "export AWS_ENDPOINT_URL" not in line:
            line = process.stderr.readline()
            assert line, "serve stopped before it printed its export line"
        exports = hint_environment([line])
        with Client(region="us-east-1", credentials=(KEY, SECRET), endpoint_url=exports["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"],
                    http2_endpoint_url=exports["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2"]) as client:
            client.invoke_endpoint(endpoint_name="sum", body=b'{"numbers": [1]}', content_type="application/json")
            with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as stream:
                stream.send(b"hi")
                stream.end_input()
                assert [part.bytes for part in stream] == [b"hi"]
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    lines = out.splitlines()
    requests = [line for line in lines if "/endpoints/sum/invocations" in line]
    streams = [line for line in lines if "/endpoints/echo/invocations-bidirectional-stream" in line]
    assert (len(requests), len(streams)) == ((1, 1) if access_log else (0, 0)), out
