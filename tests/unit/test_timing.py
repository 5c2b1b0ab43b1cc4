"""record_timings on both clients: every middleware timed under its own ID, the HTTP exchange apart."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from smruntime import AsyncClient, Client
from smruntime.middleware import BuildInput, Context, Position, StackError
from smruntime.timing import STEP_ORDER, record_timings
from smruntime.transport import AsyncMockHTTPClient, MockHTTPClient

FIELDS: dict[str, Any] = {"region": "us-east-1", "credentials": ("AKID", "SECRET"), "retry_mode": "none"}
ANSWER = (200, {"Content-Type": "application/json"}, b"{}")


def _check(timings: dict[str, Any], stack_ids: list[str]) -> None:
    assert set(timings["middleware"]) == {name for name in stack_ids if name not in STEP_ORDER}
    assert set(timings["steps"]) == set(STEP_ORDER)
    assert all(seconds >= 0 for seconds in timings["middleware"].values())
    assert timings["transport"] > 0


def test_client_records_every_middleware_and_the_exchange() -> None:
    client = Client(http_client=MockHTTPClient(lambda request: ANSWER), api_options=[record_timings], **FIELDS)
    out = client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    _check(out.metadata.timings, client.stack("InvokeEndpoint").list()[1:])


def test_async_client_records_every_middleware_and_the_exchange() -> None:
    async def answer(request: Any) -> Any:
        await asyncio.sleep(0.001)  # the exchange takes a moment
        return ANSWER

    async def scenario() -> None:
        async with AsyncClient(http_client=AsyncMockHTTPClient(answer), api_options=[record_timings], **FIELDS) as client:
            out = await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
            _check(out.metadata.timings, client.stack("InvokeEndpoint").list()[1:])
            assert out.metadata.timings["transport"] >= 0.001
            assert client.stack("InvokeEndpoint").list() == Client(**FIELDS).stack("InvokeEndpoint").list()

    asyncio.run(scenario())


class SyncOnly:
    id = "SyncOnly"

    def handle(self, ctx: Context, in_: BuildInput, next: Any) -> Any:
        return next(ctx, in_)


class AsyncOnly:
    id = "AsyncOnly"

    async def ahandle(self, ctx: Context, in_: BuildInput, next: Any) -> Any:
        return await next(ctx, in_)


def _add(middleware: Any) -> Any:
    def option(stack: Any) -> None:
        stack.build.add(middleware, Position.AFTER)

    return option


def test_a_timed_sync_only_middleware_is_still_refused_by_async_client_when_composed() -> None:
    async def scenario() -> None:
        async with AsyncClient(http_client=AsyncMockHTTPClient(lambda request: ANSWER),
                               api_options=[_add(SyncOnly()), record_timings], **FIELDS) as client:
            with pytest.raises(StackError, match="SyncOnly"):
                await client.invoke_endpoint(endpoint_name="ep", body=b"{}")

    asyncio.run(scenario())


def test_an_async_only_middleware_is_timed_on_async_client_and_refused_by_client() -> None:
    async def scenario() -> None:
        async with AsyncClient(http_client=AsyncMockHTTPClient(lambda request: ANSWER),
                               api_options=[_add(AsyncOnly()), record_timings], **FIELDS) as client:
            out = await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
            assert "AsyncOnly" in out.metadata.timings["middleware"]

    asyncio.run(scenario())
    client = Client(http_client=MockHTTPClient(lambda request: ANSWER), api_options=[_add(AsyncOnly()), record_timings],
                    **FIELDS)
    with pytest.raises(StackError, match="AsyncOnly"):
        client.invoke_endpoint(endpoint_name="ep", body=b"{}")
