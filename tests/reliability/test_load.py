"""One client shared by 32 threads, 500 calls each (on AsyncClient: 32 threads feeding one event loop), against the local endpoint's echo model.

Every request carries a unique id in its body, content type and custom attributes; the echo
model answers with all three, so a response handed to the wrong caller cannot go unnoticed.
The endpoint counts the TCP connections it accepted (a wrapper records each request's client
address); the test counts file descriptors and threads before and after ``close()``.

It takes tens of seconds on two cores: the local endpoint (one event loop, in this process)
is the bottleneck, not the client.
"""

from __future__ import annotations

import gc
import logging
import threading
import uuid
from collections.abc import Iterator

import pytest

from smruntime.local import LocalEndpoint
from tests.async_clients import KINDS
from tests.reliability.support import CLIENT_KIND, CREDENTIALS, ConnectionCounter, make_client, open_fds, wait_until

THREADS = 32
CALLS = 500
POOL = 10  # Options.max_pool_connections' default


def client_threads() -> set[threading.Thread]:
    """Live threads, leaving out the local endpoint's model workers (asyncio's executor)."""
    return {thread for thread in threading.enumerate() if not thread.name.startswith("asyncio_")}


@pytest.fixture(params=KINDS)
def client_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Client, and AsyncClient (its 32 threads hand their calls to the client's one event loop)."""
    token = CLIENT_KIND.set(request.param)
    yield request.param
    CLIENT_KIND.reset(token)


@pytest.mark.slow
def test_one_client_shared_by_32_threads(caplog: pytest.LogCaptureFixture, client_kind: str) -> None:
    caplog.set_level(logging.WARNING, logger="urllib3")
    endpoint = LocalEndpoint(credentials=CREDENTIALS)
    counter = ConnectionCounter(endpoint.app)
    endpoint.app = counter  # type: ignore[assignment]  # any ASGI app will do
    with endpoint:
        gc.collect()  # sockets an earlier test left to the collector would close mid-count
        fds_before = open_fds()
        threads_before = client_threads()
        client = make_client(endpoint.url, max_pool_connections=POOL)
        wrong: list[str] = []
        failures: list[str] = []
        start = threading.Barrier(THREADS)

        def caller(index: int) -> None:
            start.wait()
            for call in range(CALLS):
                token = f"{index}.{call}.{uuid.uuid4().hex}"
                try:
                    out = client.invoke_endpoint(
                        endpoint_name="echo",
                        body=token.encode(),
                        content_type=f"application/x-{token}",
                        custom_attributes=token,
                    )
                except Exception as error:
                    failures.append(f"{token}: {type(error).__name__}: {error}")
                    continue
                if (out.body, out.content_type, out.custom_attributes) != (
                    token.encode(),
                    f"application/x-{token}",
                    token,
                ):
                    wrong.append(f"{token}: got {out.body[:80]!r}, {out.content_type!r}")

        workers = [threading.Thread(target=caller, args=(index,), name=f"load-{index}") for index in range(THREADS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        client.close()

        assert failures == []
        assert wrong == []
        counters = endpoint.counters("echo").snapshot()
        assert counters.requests == THREADS * CALLS
        assert counters.model_runs == THREADS * CALLS
        assert counters.statuses == {200: THREADS * CALLS}
        assert counter.requests == THREADS * CALLS
        assert 1 <= len(counter.peers) <= POOL  # never more connections than the pool holds

        # close() closed the client's sockets; the server closes its ends when it sees that.
        try:
            wait_until(lambda: open_fds() == fds_before, what="the connections' file descriptors to close")
        except AssertionError:
            pass  # reported by the assertion below, with the difference
        assert open_fds() == fds_before
        assert client_threads() == threads_before

    churn = [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage().lower()]
    assert churn == []
