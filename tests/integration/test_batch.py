"""``smruntime batch`` and ``Client.invoke_many`` against the local endpoint, real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smruntime import AsyncClient, Client
from smruntime.auth import Credentials
from smruntime.bulk import BulkResult
from smruntime.cli import main
from smruntime.errors import APIError, InvalidParamsError
from smruntime.local import LocalEndpoint
from smruntime.types import InvokeEndpointInput
from tests.integration.aws_env import isolate_aws_env

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def endpoint() -> Iterator[LocalEndpoint]:
    with LocalEndpoint(credentials=(KEY, SECRET)) as running:
        yield running


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate_aws_env(monkeypatch, tmp_path, (KEY, SECRET))


def write_records(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"numbers": [i, 1]}) + "\n" for i in range(count)))
    return path


def read_results(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def batch(endpoint: LocalEndpoint, *extra: str) -> list[str]:
    return ["batch", "--endpoint-url", endpoint.url, "--region", "us-east-1", "--endpoint-name", "sum", *extra]


def client(endpoint: LocalEndpoint, **fields) -> Client:
    return Client(region="us-east-1", endpoint_url=endpoint.url, credentials=Credentials(KEY, SECRET), **fields)


def async_client(endpoint: LocalEndpoint, **fields) -> AsyncClient:
    return AsyncClient(region="us-east-1", endpoint_url=endpoint.url, credentials=Credentials(KEY, SECRET), **fields)


RunMany = Callable[..., list[BulkResult]]


@pytest.fixture(params=["Client", "AsyncClient"])
def invoke_many(request: pytest.FixtureRequest, endpoint: LocalEndpoint) -> RunMany:
    """``Client.invoke_many`` or ``AsyncClient.invoke_many`` run to the end: the results in the
    order they came, ``each`` called with every one as it comes."""

    def run_sync(inputs: Any, *, each: Callable[[BulkResult], None] = lambda r: None, fields: dict[str, Any] | None = None,
                 **kwargs: Any) -> list[BulkResult]:
        seen = []
        with client(endpoint, **(fields or {})) as c:
            for result in c.invoke_many(inputs, **kwargs):
                each(result)
                seen.append(result)
        return seen

    def run_async(inputs: Any, *, each: Callable[[BulkResult], None] = lambda r: None,
                  fields: dict[str, Any] | None = None, **kwargs: Any) -> list[BulkResult]:
        async def main() -> list[BulkResult]:
            seen = []
            async with async_client(endpoint, **(fields or {})) as c:
                async for result in c.invoke_many(inputs, **kwargs):
                    each(result)
                    seen.append(result)
            return seen

        return asyncio.run(main())

    return run_sync if request.param == "Client" else run_async


def test_invoke_many_ordered_yields_every_index_in_order(invoke_many: RunMany) -> None:
    bodies = (json.dumps({"numbers": [i]}) for i in range(100))
    results = invoke_many(bodies, endpoint_name="sum", content_type="application/json", concurrency=8, ordered=True)
    assert [r.index for r in results] == list(range(100))
    assert [json.loads(r.output.body)["sum"] for r in results] == list(range(100))
    assert all(r.attempts == 1 and r.latency > 0 for r in results)


def test_invoke_many_keeps_going_past_failures_with_typed_errors(endpoint, invoke_many: RunMany) -> None:
    endpoint.faults("sum").fail_next(3, status=424)
    results = sorted(invoke_many([b'{"numbers":[1]}'] * 10, endpoint_name="sum", concurrency=2,
                                 fields={"max_attempts": 1}), key=lambda r: r.index)
    assert [r.index for r in results] == list(range(10))
    failed = [r for r in results if not r.ok]
    assert len(failed) == 3
    assert all(isinstance(r.error, APIError) and r.output is None for r in failed)


def test_asyncclient_invoke_many_reads_an_async_iterable(endpoint) -> None:
    async def bodies() -> AsyncIterator[bytes]:
        for i in range(30):
            await asyncio.sleep(0)
            yield json.dumps({"numbers": [i, 1]}).encode()

    async def main() -> list[BulkResult]:
        async with async_client(endpoint) as c:
            return [r async for r in c.invoke_many(bodies(), endpoint_name="sum", concurrency=4, ordered=True)]

    results = asyncio.run(main())
    assert [json.loads(r.output.body)["sum"] for r in results] == [i + 1 for i in range(30)]


@pytest.mark.parametrize("where", ["waiting for a result", "in the loop's body"])
def test_cancelling_the_task_reading_an_asyncclient_run_cancels_its_calls_in_flight(endpoint, where: str) -> None:
    endpoint.faults("sum").set_latency(2)  # the calls in flight must not be waited for
    # The first record fails before any I/O (a line break in a header), so its result comes at once.
    records = [InvokeEndpointInput(endpoint_name="sum", body=b"{}", content_type="bad\n"),
               *[InvokeEndpointInput(endpoint_name="sum", body=b'{"numbers":[1]}')] * 7]

    async def read_all() -> None:
        async with async_client(endpoint) as c, contextlib.aclosing(c.invoke_many(records, concurrency=4)) as run:
            async for _ in run:
                if where == "in the loop's body":
                    await asyncio.sleep(60)

    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(read_all(), 0.2)
        return time.monotonic() - started

    assert asyncio.run(main()) < 1.5  # 0.2 s, not the 2 s the calls would take


def test_invoke_many_refuses_a_bad_run_before_any_call(endpoint, invoke_many: RunMany) -> None:
    with pytest.raises(InvalidParamsError, match="endpoint_name: is needed when records are bodies"):
        invoke_many([b'{"numbers":[1]}'] * 50, concurrency=4)
    with pytest.raises(InvalidParamsError, match="endpoint_name"):
        invoke_many([b'{"numbers":[1]}'] * 50, endpoint_name="not a valid name!")
    assert endpoint.counters("sum").requests == 0
    # InvokeEndpointInput records carry their own endpoint name
    results = invoke_many([InvokeEndpointInput(endpoint_name="sum", body=b'{"numbers":[2]}')] * 3)
    assert [json.loads(r.output.body)["sum"] for r in results] == [2, 2, 2]


@pytest.mark.parametrize("kind", ["Client", "AsyncClient"])
def test_invoke_many_checks_the_run_when_called_before_reading_a_record(endpoint, kind: str) -> None:
    read: list[int] = []

    def bodies() -> Iterator[bytes]:
        read.append(1)
        yield b'{"numbers":[1]}'

    make = client if kind == "Client" else async_client
    c = make(endpoint)
    bad_runs: list[tuple[Any, dict[str, Any], str]] = [
        (bodies(), {"content_type": "a\nb"}, "content_type: must match"),  # no endpoint_name: formats still checked
        (bodies(), {"accept": 5}, "accept: must be a str"),
        (bodies(), {"endpoint_name": ""}, "endpoint_name: must be at least 1 character"),
        (b'{"numbers":[1]}', {"endpoint_name": "sum"}, "inputs: is one bytes record"),  # not 15 one-byte records
        ('{"numbers":[1]}', {"endpoint_name": "sum"}, "inputs: is one str record"),
        (InvokeEndpointInput(endpoint_name="sum", body=b"{}"), {}, "inputs: is one InvokeEndpointInput record"),
    ]
    for inputs, kwargs, message in bad_runs:
        with pytest.raises(InvalidParamsError, match=message):
            c.invoke_many(inputs, **kwargs)
    with pytest.raises(TypeError, match="not iterable"):
        c.invoke_many(None, endpoint_name="sum")
    assert read == [] and endpoint.counters("sum").requests == 0


def test_invoke_many_sends_no_more_at_once_than_the_client_has_connections(endpoint, invoke_many: RunMany) -> None:
    """More calls in flight than connections would wait for one, past connect_timeout."""
    endpoint.faults("sum").set_latency(0.4)
    results = invoke_many([b'{"numbers":[1]}'] * 6, endpoint_name="sum", concurrency=16,
                          fields={"max_pool_connections": 2, "connect_timeout": 0.3})
    assert [r.error for r in results if not r.ok] == []
    assert len(results) == 6


@pytest.mark.parametrize("ordered", [False, True])
def test_when_the_input_raises_the_results_of_what_was_sent_come_first(
    endpoint, invoke_many: RunMany, ordered: bool
) -> None:
    endpoint.faults("sum").set_latency(0.02)

    def bodies() -> Iterator[bytes]:
        for i in range(10):
            yield json.dumps({"numbers": [i]}).encode()
        raise OSError("the input file went away")

    seen: list[BulkResult] = []
    with pytest.raises(OSError, match="the input file went away"):
        invoke_many(bodies(), endpoint_name="sum", concurrency=4, ordered=ordered, each=seen.append)
    assert sorted(r.index for r in seen) == list(range(10))
    assert all(r.ok for r in seen)
    assert endpoint.counters("sum").requests == 10


@pytest.mark.parametrize("kind", ["Client", "AsyncClient"])
def test_leaving_the_loop_early_reads_no_further_and_lets_the_calls_in_flight_finish(endpoint, kind: str) -> None:
    endpoint.faults("sum").set_latency(0.05)
    read = []

    def bodies() -> Iterator[bytes]:
        for i in range(1000):
            read.append(i)
            yield b'{"numbers":[1]}'

    if kind == "Client":
        with client(endpoint) as c:
            results = c.invoke_many(bodies(), endpoint_name="sum", concurrency=4)
            first = next(results)
            results.close()
    else:
        async def main() -> BulkResult:
            async with async_client(endpoint) as c:
                results = c.invoke_many(bodies(), endpoint_name="sum", concurrency=4)
                first = await anext(results)
                await results.aclose()  # type: ignore[attr-defined]
                assert asyncio.all_tasks() == {asyncio.current_task()}
                return first

        first = asyncio.run(main())

    assert first.ok
    assert len(read) == 4  # what could be sent, nothing read ahead of it
    counters = endpoint.counters("sum").snapshot()
    assert counters.requests == 4 and counters.statuses == {200: 4}  # every call in flight was answered


def test_throttling_mid_run_slows_the_run_and_every_record_is_answered(endpoint, invoke_many: RunMany) -> None:
    seen = []

    def throttle_after_warm_up(result: BulkResult) -> None:
        seen.append(result)
        if len(seen) == 300:  # after a warm-up, so the limiter has measured a send rate
            endpoint.faults("sum").throttle_next(5)

    results = invoke_many([b'{"numbers":[1]}'] * 600, endpoint_name="sum", concurrency=8, each=throttle_after_warm_up,
                          fields={"max_attempts": 10})
    assert sorted(r.index for r in results) == list(range(600))
    assert all(r.ok for r in results)
    assert sum(r.attempts - 1 for r in results) == 5


@pytest.mark.parametrize("http_client", ["fast", "requests"])
def test_batch_writes_one_line_per_record_and_reports_malformed_lines(endpoint, tmp_path, capsys, http_client) -> None:
    source = write_records(tmp_path / "in.jsonl", 20)
    with source.open("a") as f:
        f.write("{not json\n")
        f.write(json.dumps({"numbers": [5]}) + "\n")
    out = tmp_path / "out.jsonl"
    status = main(batch(endpoint, "--input", str(source), "--output", str(out), "--concurrency", "4",
                        "--http-client", http_client))
    assert status == 1
    lines = {line["index"]: line for line in read_results(out)}
    assert sorted(lines) == list(range(22))
    assert lines[20]["status"] == "malformed" and "line 21" in lines[20]["error"]["message"]
    assert lines[21]["output"]["sum"] == 5
    assert lines[3]["output"]["sum"] == 4 and lines[3]["attempts"] == 1
    assert "21 done, 0 failed (0 throttled), 1 malformed" in capsys.readouterr().err


@pytest.mark.parametrize("http_client", ["fast", "requests"])
def test_an_endpoint_failing_every_call_marks_every_record_failed(endpoint, tmp_path, capsys, http_client) -> None:
    endpoint.faults("sum").fail_next(1000, status=500)
    out = tmp_path / "out.jsonl"
    status = main(batch(endpoint, "--input", str(write_records(tmp_path / "in.jsonl", 30)), "--output", str(out),
                        "--max-attempts", "2", "--http-client", http_client))
    assert status == 1
    lines = read_results(out)
    assert sorted(line["index"] for line in lines) == list(range(30))
    assert all(line["status"] == "failed" and line["attempts"] == 2 for line in lines)
    assert {line["error"]["code"] for line in lines} == {"InternalFailure"}
    assert "0 done, 30 failed" in capsys.readouterr().err


@pytest.mark.parametrize("credentials", ["refused", "missing"])
def test_credentials_that_fail_every_call_stop_the_run_and_a_resume_sends_every_record(
    endpoint, tmp_path, capsys, monkeypatch, credentials: str
) -> None:
    source = write_records(tmp_path / "in.jsonl", 200)
    out = tmp_path / "out.jsonl"
    if credentials == "refused":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    else:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")

    assert main(batch(endpoint, "--input", str(source), "--output", str(out), "--concurrency", "4")) == 1

    err = capsys.readouterr().err
    assert "batch: stopped: every record would fail this way" in err
    expected = "InvalidSignatureException" if credentials == "refused" else "no AWS credentials found"
    assert "smruntime: error: operation error SageMaker Runtime: InvokeEndpoint, " in err and expected in err
    assert out.read_text() == ""  # no line for a failure the run shares: a resume sends those records
    assert endpoint.counters("sum").requests <= 8  # the calls in flight when it stopped, not 200
    assert endpoint.counters("sum").model_runs == 0

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    assert main(batch(endpoint, "--input", str(source), "--output", str(out), "--resume")) == 0
    assert sorted(line["index"] for line in read_results(out)) == list(range(200))
    assert endpoint.counters("sum").model_runs == 200


def test_csv_and_folder_inputs(endpoint, tmp_path) -> None:
    config = tmp_path / "endpoints.toml"
    config.write_text('[[endpoints]]\nname = "echo"\nmodel = "echo"\n')
    rows = tmp_path / "rows.csv"
    rows.write_text('1,"a,b"\n2,c\n')
    folder = tmp_path / "records"
    folder.mkdir()
    for name in ("b.bin", "a.bin"):
        (folder / name).write_bytes(b"\xff" + name.encode())
    with LocalEndpoint(config, credentials=(KEY, SECRET)) as running:
        argv = ["batch", "--endpoint-url", running.url, "--region", "us-east-1", "--endpoint-name", "echo"]
        assert main([*argv, "--input", str(rows), "--output", str(tmp_path / "csv.jsonl"), "--ordered"]) == 0
        assert main([*argv, "--input", str(folder), "--output", str(tmp_path / "dir.jsonl"), "--ordered"]) == 0
    assert [line["output"] for line in read_results(tmp_path / "csv.jsonl")] == ['1,"a,b"', "2,c"]
    assert [line["output_base64"] for line in read_results(tmp_path / "dir.jsonl")] == ["/2EuYmlu", "/2IuYmlu"]


def test_resume_refuses_nothing_and_cuts_a_torn_last_line(endpoint, tmp_path) -> None:
    source = write_records(tmp_path / "in.jsonl", 10)
    out = tmp_path / "out.jsonl"
    out.write_text('{"index":0,"status":"ok","output":1,"attempts":1,"latency":0.1}\n{"index":4,"sta')
    assert main(batch(endpoint, "--input", str(source), "--output", str(out), "--resume")) == 0
    lines = read_results(out)
    assert sorted(line["index"] for line in lines) == list(range(10))
    assert endpoint.counters("sum").model_runs == 9


def test_resume_keeps_failing_while_the_output_holds_a_failed_record(endpoint, tmp_path, capsys) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"numbers": [1, 2]}\nnot json\n{"numbers": [3]}\n')
    out = tmp_path / "out.jsonl"
    assert main(batch(endpoint, "--input", str(source), "--output", str(out))) == 1

    # Resuming sends nothing (every record has its line) and still says the run is not clean.
    assert main(batch(endpoint, "--input", str(source), "--output", str(out), "--resume")) == 1
    assert "3 skipped (1 of them failed or malformed)" in capsys.readouterr().err

    # Keeping only the good lines and resuming sends the record again, as the docs say.
    source.write_text('{"numbers": [1, 2]}\n{"numbers": [5]}\n{"numbers": [3]}\n')
    out.write_text("".join(line + "\n" for line in out.read_text().splitlines() if '"status":"ok"' in line))
    assert main(batch(endpoint, "--input", str(source), "--output", str(out), "--resume")) == 0
    assert sorted((line["index"], line["status"]) for line in read_results(out)) == [(0, "ok"), (1, "ok"), (2, "ok")]


def test_an_existing_output_without_resume_is_refused(endpoint, tmp_path, capsys) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"index":0}\n')
    status = main(batch(endpoint, "--input", str(write_records(tmp_path / "in.jsonl", 2)), "--output", str(out)))
    assert status != 0
    assert "--resume" in capsys.readouterr().err
    assert endpoint.counters("sum").requests == 0


def test_kill_9_mid_run_then_resume_leaves_every_record_exactly_once(endpoint, tmp_path) -> None:
    count, concurrency = 400, 8
    endpoint.faults("sum").set_latency(0.02)
    source = write_records(tmp_path / "in.jsonl", count)
    out = tmp_path / "out.jsonl"
    argv = [sys.executable, "-m", "smruntime", *batch(endpoint, "--input", str(source), "--output", str(out),
                                                       "--concurrency", str(concurrency), "--no-progress")]
    process = subprocess.Popen(argv, env=dict(os.environ), stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while (not out.exists() or len(out.read_bytes().splitlines()) < count // 4) and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    before = len(read_results_tolerant(out))
    assert 0 < before < count
    endpoint.faults("sum").set_latency(0)
    assert main(batch(endpoint, "--input", str(source), "--output", str(out), "--resume")) == 0
    indices = [line["index"] for line in read_results(out)]
    assert sorted(indices) == list(range(count))  # each exactly once
    ran_twice = endpoint.counters("sum").model_runs - count
    assert 0 <= ran_twice <= concurrency  # only the calls in flight at the kill were sent again


def read_results_tolerant(path: Path) -> list[dict]:
    lines = []
    for raw in path.read_bytes().splitlines(keepends=True):
        if raw.endswith(b"\n"):
            lines.append(json.loads(raw))
    return lines


def test_resume_skips_a_blank_line_and_refuses_an_edited_one_without_cutting_results(endpoint, tmp_path, capsys) -> None:
    source = write_records(tmp_path / "in.jsonl", 10)
    out = tmp_path / "out.jsonl"
    assert main(batch(endpoint, "--input", str(source), "--output", str(out), "--ordered")) == 0
    lines = out.read_text().splitlines(keepends=True)

    out.write_text("".join(lines[:3]) + "\n" + "".join(lines[3:]))  # a blank line, as an editor may leave
    assert main(batch(endpoint, "--input", str(source), "--output", str(out), "--resume")) == 0
    assert endpoint.counters("sum").model_runs == 10  # nothing sent again, nothing cut

    edited = "".join(lines[:3]) + "not a result\n" + "".join(lines[3:])
    out.write_text(edited)
    assert main(batch(endpoint, "--input", str(source), "--output", str(out), "--resume")) == 1
    assert f"line 4 of {out} is not a result line" in capsys.readouterr().err
    assert out.read_text() == edited  # the results after it are kept
    assert endpoint.counters("sum").model_runs == 10


def test_a_csv_row_that_is_not_utf8_is_malformed_and_the_rest_is_sent(endpoint, tmp_path) -> None:
    config = tmp_path / "endpoints.toml"
    config.write_text('[[endpoints]]\nname = "echo"\nmodel = "echo"\n')
    rows = tmp_path / "rows.csv"
    rows.write_bytes(b"1,a\n2,\xff\n3,c\n")
    out = tmp_path / "out.jsonl"
    with LocalEndpoint(config, credentials=(KEY, SECRET)) as running:
        argv = ["batch", "--endpoint-url", running.url, "--region", "us-east-1", "--endpoint-name", "echo"]
        assert main([*argv, "--input", str(rows), "--output", str(out), "--ordered"]) == 1
    lines = sorted(read_results(out), key=lambda line: line["index"])
    assert [(line["index"], line["status"]) for line in lines] == [(0, "ok"), (1, "malformed"), (2, "ok")]
    assert lines[1]["error"]["message"] == "row 2: not UTF-8"


@pytest.mark.parametrize(("stop_with", "ordered"), [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)])
def test_a_signal_stops_sending_writes_every_call_in_flight_and_a_resume_sends_only_the_rest(
    endpoint, tmp_path, stop_with: int, ordered: bool
) -> None:
    count, concurrency = 300, 8
    endpoint.faults("sum").set_latency(0.05)
    source = write_records(tmp_path / "in.jsonl", count)
    out = tmp_path / "out.jsonl"
    argv = [sys.executable, "-m", "smruntime", *batch(endpoint, "--input", str(source), "--output", str(out),
                                                       "--concurrency", str(concurrency), "--no-progress",
                                                       *(["--ordered"] if ordered else []))]
    process = subprocess.Popen(argv, env=dict(os.environ), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while (not out.exists() or len(out.read_bytes().splitlines()) < 20) and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(stop_with)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 128 + stop_with, err
    assert f"batch: stopped by {signal.Signals(stop_with).name}; the same command with --resume" in err
    assert "Traceback" not in err
    lines = read_results(out)  # no torn line: the run ended by itself
    assert len(lines) < count
    assert endpoint.counters("sum").model_runs == len(lines)  # every call that ran has its line
    if ordered:
        assert [line["index"] for line in lines] == list(range(len(lines)))

    endpoint.faults("sum").set_latency(0)
    assert main(batch(endpoint, "--input", str(source), "--output", str(out), "--resume")) == 0
    assert sorted(line["index"] for line in read_results(out)) == list(range(count))
    assert endpoint.counters("sum").model_runs == count  # none ran twice


def test_ordered_results_keep_malformed_lines_in_their_place(endpoint, tmp_path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join("{bad\n" if i % 7 == 3 else json.dumps({"numbers": [i]}) + "\n" for i in range(60)))
    out = tmp_path / "out.jsonl"
    assert main(batch(endpoint, "--input", str(source), "--output", str(out), "--ordered", "--concurrency", "8")) == 1
    lines = read_results(out)
    assert [line["index"] for line in lines] == list(range(60))
    assert {line["index"] for line in lines if line["status"] == "malformed"} == {i for i in range(60) if i % 7 == 3}


def test_output_dash_writes_the_results_to_standard_output(endpoint, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    source = write_records(tmp_path / "in.jsonl", 5)
    assert main(batch(endpoint, "--input", str(source), "--output", "-", "--ordered")) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["output"]["sum"] for line in captured.out.splitlines()] == [1, 2, 3, 4, 5]
    assert "5 done" in captured.err
    assert not (tmp_path / "-").exists()


def test_resume_is_refused_for_an_output_that_is_not_a_regular_file(endpoint, tmp_path, capsys) -> None:
    source = write_records(tmp_path / "in.jsonl", 5)
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)  # reading it would wait for a writer forever (as /dev/stdout on a terminal does)
    assert main(batch(endpoint, "--input", str(source), "--output", str(pipe), "--resume")) == 1
    assert f"--resume reads the results already written: --output {pipe} is not a regular file" in capsys.readouterr().err
    assert main(batch(endpoint, "--input", str(source), "--output", "-", "--resume")) == 1
    assert "--resume reads the results already written: --output must be a file, not -" in capsys.readouterr().err
    assert endpoint.counters("sum").requests == 0


def test_an_output_that_is_not_a_file_takes_the_results_when_nothing_is_resumed(endpoint, tmp_path, capsys) -> None:
    source = write_records(tmp_path / "in.jsonl", 5)
    assert main(batch(endpoint, "--input", str(source), "--output", os.devnull)) == 0
    assert "5 done" in capsys.readouterr().err


def test_a_reader_that_stops_early_ends_the_run_quietly(endpoint, tmp_path) -> None:
    """``smruntime batch --output - ... | head -n 3``"""
    endpoint.faults("sum").set_latency(0.01)
    source = write_records(tmp_path / "in.jsonl", 500)
    argv = [sys.executable, "-m", "smruntime", *batch(endpoint, "--input", str(source), "--output", "-",
                                                       "--concurrency", "4", "--no-progress")]
    process = subprocess.Popen(argv, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    first = [process.stdout.readline() for _ in range(3)]
    process.stdout.close()
    try:
        err = process.stderr.read()
        process.wait(timeout=30)
    finally:
        process.kill()
        process.stderr.close()
    assert all(json.loads(line)["status"] == "ok" for line in first)
    assert process.returncode == 1
    assert err == b""
    assert endpoint.counters("sum").requests < 100  # it stopped sending
