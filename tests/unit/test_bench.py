"""``smruntime bench`` logic: percentiles, error names, the report, the progress bar, the runner.

No sockets: the client runs on a MockHTTPClient. Timings are never asserted, only their shape.
"""

from __future__ import annotations

import argparse
import io
import threading
from typing import Any

import pytest

from smruntime import Client, errors
from smruntime.bench import BenchReport, CallTimings, Progress, error_name, percentile, run_bench, run_calls
from smruntime.http import HTTPRequest
from smruntime.transport import MockHTTPClient

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def _args(**overrides: Any) -> argparse.Namespace:
    values = {"endpoint_name": "ep", "content_type": "application/json", "requests": 10, "concurrency": 1,
              "warmup": 0, "no_progress": True}
    values.update(overrides)
    return argparse.Namespace(**values)


def _client(handler: Any) -> tuple[Client, MockHTTPClient]:
    mock = MockHTTPClient(handler)
    client = Client(region="us-east-1", credentials=(KEY, SECRET), http_client=mock, endpoint_url="http://mock.invalid",
                    retry_mode="none")
    return client, mock


def _ok(request: HTTPRequest) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, b"{}"


# -- percentiles and error names ------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0.0, 1.0), (0.01, 1.0), (0.5, 50.0), (0.9, 90.0), (0.99, 99.0), (0.999, 100.0), (1.0, 100.0)],
)
def test_percentile_is_nearest_rank(q: float, expected: float) -> None:
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, q) == expected


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([0.25], 0.99) == 0.25


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_error_names_say_what_failed() -> None:
    assert error_name(errors.ModelError("boom")) == "ModelError"
    assert error_name(errors.APIError("slow down", code="ThrottlingException")) == "APIError(ThrottlingException)"
    gave_up = errors.MaxAttemptsExceededError(3, errors.ServiceUnavailable("busy"))
    gave_up.__cause__ = errors.ServiceUnavailable("busy")
    assert error_name(gave_up) == "MaxAttemptsExceededError(ServiceUnavailable)"
    assert error_name(ValueError("x")) == "ValueError"


# -- timings and the report -----------------------------------------------------------------


def test_call_timings_take_medians_in_step_order() -> None:
    samples = [
        {"steps": {"Finalize stack step": 3e-6, "Initialize stack step": 1e-6}, "middleware": {"Signing": 2e-6},
         "transport": 10e-6},
        {"steps": {"Finalize stack step": 5e-6, "Initialize stack step": 1e-6}, "middleware": {"Signing": 4e-6},
         "transport": 30e-6},
        {"steps": {"Finalize stack step": 4e-6, "Initialize stack step": 2e-6}, "middleware": {"Signing": 3e-6},
         "transport": 20e-6},
    ]
    timings = CallTimings.median_of(samples)
    assert timings is not None
    assert list(timings.steps) == ["Initialize stack step", "Finalize stack step"]
    assert timings.steps == {"Initialize stack step": 1e-6, "Finalize stack step": 4e-6}
    assert timings.middleware == {"Signing": 3e-6}
    assert timings.transport == 20e-6
    assert timings.client_side == pytest.approx(5e-6)


def test_call_timings_of_no_samples_is_none() -> None:
    assert CallTimings.median_of([]) is None


def test_report_shows_percentiles_throughput_errors_and_time_per_step() -> None:
    timings = CallTimings({"Initialize stack step": 2e-6, "Finalize stack step": 8e-6}, {"Signing": 6e-6,
                                                                                        "Retry": 2e-6}, 1e-3)
    report = BenchReport(calls=102, concurrency=4, elapsed=2.0, latencies=tuple(i / 1000 for i in range(1, 101)),
                         errors={"ModelError": 2}, timings=timings)
    text = report.format()
    assert "102 (100 ok, 2 failed)" in text
    assert "51.0 calls/s" in text
    assert "p50 50.00  p90 90.00  p99 99.00  min 1.00  max 100.00" in text
    assert "errors:      ModelError: 2" in text
    assert "client-side total" in text and "10.0" in text
    assert "HTTP exchange (transport)" in text and "1000.0" in text
    assert text.index("Signing") < text.index("Retry")  # middleware by cost, largest first


def test_report_with_every_call_failed_has_no_latency_line() -> None:
    report = BenchReport(calls=3, concurrency=1, elapsed=0.1, latencies=(), errors={"ConnectError": 3}, timings=None)
    text = report.format()
    assert "latency" not in text
    assert "(0 ok, 3 failed)" in text
    assert "ConnectError: 3" in text


# -- progress bar ---------------------------------------------------------------------------


def test_progress_bar_redraws_one_line_and_ends_it() -> None:
    stream = io.StringIO()
    ticks = iter([0.0, 1.0, 2.0])
    progress = Progress(10, stream, enabled=True, clock=lambda: next(ticks))
    progress.draw(5)
    progress.draw(10)
    progress.finish()
    text = stream.getvalue()
    assert text.startswith("\r[" + "#" * 15 + "." * 15 + "] 5/10 5 calls/s")
    assert "\r[" + "#" * 30 + "] 10/10 5 calls/s" in text
    assert text.endswith("\n") and text.count("\n") == 1


def test_disabled_progress_bar_writes_nothing() -> None:
    stream = io.StringIO()
    progress = Progress(10, stream, enabled=False)
    progress.draw(3)
    progress.finish()
    assert stream.getvalue() == ""


# -- the runner -----------------------------------------------------------------------------


def test_run_calls_makes_exactly_n_calls_across_threads() -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        with lock:
            seen.append(threading.current_thread().name)

    report = run_calls(call, 50, 4, Progress(50, io.StringIO(), enabled=False))
    assert len(seen) == 50
    assert report.succeeded == 50 and report.failed == 0
    assert len(set(seen)) >= 1 and all(name.startswith("smruntime-bench-") for name in seen)
    assert list(report.latencies) == sorted(report.latencies)
    assert report.timings is None  # the calls returned no timings


def test_an_interrupt_stops_the_calls_and_reports_those_made(capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import signal
    import time

    made = 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal made
        with lock:
            made += 1
            if made == 20:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: the main thread, waiting for the workers, gets it
        time.sleep(0.001)

    report = run_calls(call, 100_000, 4, Progress(100_000, io.StringIO(), enabled=False))
    assert report.interrupted
    assert report.calls == report.succeeded == made  # every call started was waited for and counted
    assert 20 <= made < 1_000
    assert report.format().splitlines()[0].endswith("with concurrency 4, interrupted")
    assert "interrupted; waiting for the calls in flight" in capsys.readouterr().err


def test_run_calls_with_more_threads_than_calls() -> None:
    counter = iter(range(1000))
    report = run_calls(lambda: next(counter), 3, 8, Progress(3, io.StringIO(), enabled=False))
    assert report.calls == 3 and report.succeeded == 3
    assert next(counter) == 3


def test_run_calls_counts_failures_by_type() -> None:
    outcomes = iter([None, errors.ModelError("a"), errors.ModelError("b"), errors.ConnectError("c"), None])

    def call() -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    report = run_calls(call, 5, 1, Progress(5, io.StringIO(), enabled=False))
    assert report.errors == {"ModelError": 2, "ConnectError": 1}
    assert report.succeeded == 2


def test_run_calls_draws_progress_to_the_end() -> None:
    stream = io.StringIO()
    run_calls(lambda: None, 20, 2, Progress(20, stream, enabled=True))
    assert stream.getvalue().rstrip("\n").rsplit("\r", 1)[-1].startswith("[" + "#" * 30 + "] 20/20")


# -- run_bench on a mock HTTP client --------------------------------------------------------


def test_run_bench_reports_latency_and_where_client_time_went(capsys: pytest.CaptureFixture[str]) -> None:
    client, mock = _client(_ok)
    status = run_bench(client, _args(requests=12, warmup=3, concurrency=2), body=b'{"x": 1}')
    out = capsys.readouterr()
    assert status == 0
    assert len(mock.requests) == 15  # warm-up calls, then the timed ones
    assert all(request.body == b'{"x": 1}' for request in mock.requests)
    assert all(request.url == "http://mock.invalid/endpoints/ep/invocations" for request in mock.requests)
    assert "12 (12 ok, 0 failed)" in out.out
    for expected in ("p50", "p90", "p99", "calls/s", "errors:      none", "Finalize stack step", "Signing",
                     "OperationSerializer", "HTTP exchange (transport)"):
        assert expected in out.out
    assert out.err == ""  # --no-progress


def test_run_bench_leaves_the_callers_client_alone(capsys: pytest.CaptureFixture[str]) -> None:
    client, _ = _client(_ok)
    before = client.stack("InvokeEndpoint").list()
    run_bench(client, _args(requests=2), body=b"{}")
    assert client.stack("InvokeEndpoint").list() == before
    out = client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert out.metadata.timings == {}  # the timers were on the bench's own client only
    capsys.readouterr()


def test_run_bench_counts_service_errors_and_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    calls = iter(range(1000))

    def sometimes_fails(request: HTTPRequest) -> tuple[int, dict[str, str], bytes]:
        if next(calls) % 3 == 0:
            return 424, {"X-Amzn-ErrorType": "ModelError"}, b'{"message": "model failed"}'
        return _ok(request)

    client, _ = _client(sometimes_fails)
    status = run_bench(client, _args(requests=9), body=b"{}")
    out = capsys.readouterr().out
    assert status == 1
    assert "9 (6 ok, 3 failed)" in out
    assert "errors:      ModelError: 3" in out


def test_a_failing_warm_up_call_stops_the_run() -> None:
    client, mock = _client(lambda request: (400, {"X-Amzn-ErrorType": "ValidationError"},
                                            b'{"message": "Endpoint ep not found"}'))
    with pytest.raises(errors.ValidationError):
        run_bench(client, _args(requests=100, warmup=5), body=b"{}")
    assert len(mock.requests) == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"requests": 0}, "requests"), ({"concurrency": 0}, "concurrency"), ({"warmup": -1}, "warmup")],
)
def test_run_bench_rejects_bad_counts(overrides: dict[str, int], message: str) -> None:
    client, mock = _client(_ok)
    with pytest.raises(ValueError, match=message):
        run_bench(client, _args(**overrides), body=b"{}")
    assert mock.requests == []
