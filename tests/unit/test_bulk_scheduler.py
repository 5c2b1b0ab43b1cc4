"""The bulk scheduler: in-flight bound, reorder window, hand-out order. No I/O."""

from __future__ import annotations

import pytest

from smruntime.bulk import BulkResult, BulkScheduler


def send_all(scheduler: BulkScheduler) -> list[int]:
    sent = []
    while scheduler.can_send():
        sent.append(scheduler.started())
    return sent


def test_at_most_concurrency_in_flight_and_results_as_they_complete() -> None:
    scheduler = BulkScheduler(3)
    assert send_all(scheduler) == [0, 1, 2]
    assert scheduler.finished(BulkResult(2)) == [BulkResult(2)]
    assert send_all(scheduler) == [3]
    scheduler.input_exhausted()
    for index in (0, 1, 3):
        scheduler.finished(BulkResult(index))
    assert scheduler.done


def test_ordered_mode_holds_results_until_the_gap_fills_and_bounds_the_window() -> None:
    scheduler = BulkScheduler(2, ordered=True, reorder_window=3)
    assert send_all(scheduler) == [0, 1]
    assert scheduler.finished(BulkResult(1)) == []
    assert send_all(scheduler) == [2]
    assert scheduler.finished(BulkResult(2)) == []
    assert send_all(scheduler) == []  # record 0 is still out: three records behind it at most
    assert [r.index for r in scheduler.finished(BulkResult(0))] == [0, 1, 2]
    assert send_all(scheduler) == [3, 4]


@pytest.mark.parametrize(("fields", "message"), [
    ({"concurrency": 0}, "concurrency must be at least 1"),
    ({"concurrency": 4, "ordered": True, "reorder_window": 2}, "reorder_window must be at least concurrency"),
])
def test_bad_bounds_are_refused(fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        BulkScheduler(**fields)



def test_a_send_rate_limit_narrows_the_window_to_what_it_sustains() -> None:
    scheduler = BulkScheduler(64)
    scheduler.started()
    scheduler.finished(BulkResult(0, latency=0.1))
    assert scheduler.window() == 64
    assert scheduler.window(rate=50.0) == 11  # twice 50/s x 0.1 s in flight, plus one waiting
    assert scheduler.window(rate=0.5) == 2  # one call, and the next waiting for its token
    assert scheduler.window(rate=10_000.0) == 64
    for _ in range(11):
        scheduler.started()
    assert not scheduler.can_send(rate=50.0) and scheduler.can_send()


def test_calls_that_waited_for_tokens_or_were_retried_barely_widen_the_window() -> None:
    scheduler = BulkScheduler(64)
    for _ in range(5):
        scheduler.finished(BulkResult(scheduler.started(), latency=0.01))
    assert scheduler.window(rate=100.0) == 3  # twice 100/s x 10 ms, plus one

    scheduler.finished(BulkResult(scheduler.started(), latency=2.0, attempts=3))  # mostly backoff: not counted
    scheduler.finished(BulkResult(scheduler.started(), latency=2.0))  # mostly a wait for a send token

    assert scheduler.window(rate=100.0) <= 23  # not 64: the queue must not justify itself
    for _ in range(5):
        scheduler.finished(BulkResult(scheduler.started(), latency=0.01))
    assert scheduler.window(rate=100.0) == 4  # and the estimate falls back fast


@pytest.mark.parametrize("kind", ["Client", "AsyncClient"])
def test_invoke_many_refuses_bad_bounds_when_called_before_reading_the_input(kind: str) -> None:
    from smruntime import AsyncClient, Client, MockHTTPClient
    from smruntime.transport.async_mock import AsyncMockHTTPClient

    def never_read():
        raise AssertionError("the input was read")
        yield b""

    mock = MockHTTPClient(lambda request: None) if kind == "Client" else AsyncMockHTTPClient(lambda request: None)
    client = (Client if kind == "Client" else AsyncClient)(region="us-east-1", credentials=("AKID", "secret"),
                                                          http_client=mock)
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        client.invoke_many(never_read(), endpoint_name="ep", concurrency=0)
    with pytest.raises(ValueError, match="reorder_window must be at least concurrency"):
        client.invoke_many(never_read(), endpoint_name="ep", concurrency=8, ordered=True, reorder_window=2)
    assert mock.requests == []


def test_client_invoke_many_refuses_an_async_iterable_naming_the_field() -> None:
    from smruntime import Client, MockHTTPClient
    from smruntime.errors import InvalidParamsError

    async def records():
        yield b"{}"

    mock = MockHTTPClient(lambda request: None)
    client = Client(region="us-east-1", credentials=("AKID", "secret"), http_client=mock)
    pending = records()
    with pytest.raises(InvalidParamsError, match=r"inputs.*async iterable.*AsyncClient\.invoke_many"):
        client.invoke_many(pending, endpoint_name="ep")
    assert mock.requests == []
    pending.aclose().close()  # never started: nothing to run
