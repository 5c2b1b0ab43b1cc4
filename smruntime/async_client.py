"""AsyncClient: the asyncio client, on the same stack as Client.

Everything but the waiting is shared with :class:`~smruntime.client.Client`: the Options and
how they resolve, the operations, the middleware, the signer, the retry policy, the error
mapping and the event-stream codec. The chain is composed as an asyncio chain (see
:mod:`smruntime.middleware`), and its terminal handler sends with an
:class:`~smruntime.transport.async_protocol.AsyncHTTPClient`. That handler also reads every
response body the Deserialize step would read (all but a live event stream) before handing
the response on, so the middleware there never wait.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, Sequence, cast

from smruntime import client_methods as methods
from smruntime import errors, keys
from smruntime.client import BaseClient, Chain, is_async_http_client, received, transport_failure
from smruntime.client_methods import async_method, sync_method
from smruntime.http import BytesBody, HTTPRequest, HTTPResponse
from smruntime.middleware import Stack
from smruntime.options import OptionFunc
from smruntime.stack_types import Context
from smruntime.transport.shared import WrongEventLoopError
from smruntime.types import InvokeEndpointAsyncOutput, InvokeEndpointOutput

if TYPE_CHECKING:
    from smruntime.async_inference import Poll, S3Reader
    from smruntime.bidirectional import AsyncBidirectionalStream
    from smruntime.bulk.scheduler import BulkResult, BulkRun, Record
    from smruntime.streaming import AsyncResponseStream
    from smruntime.transport.async_protocol import AsyncHTTPClient, AsyncHTTPResponse

__all__ = ["AsyncClient"]


class AsyncClient(BaseClient):
    """A SageMaker Runtime client for asyncio: the same constructor, Options and stack as
    :class:`~smruntime.Client`; every call is awaited.

    Use it with ``async with`` (or ``await client.aclose()``). One client serves any number
    of concurrent calls on one event loop; it is not meant to be shared between loops.
    """

    invoke_endpoint = async_method(methods.invoke_endpoint, lambda: InvokeEndpointOutput)
    invoke_endpoint_with_response_stream = async_method(
        methods.invoke_endpoint_with_response_stream, lambda: AsyncResponseStream
    )
    invoke_endpoint_async = async_method(methods.invoke_endpoint_async, lambda: InvokeEndpointAsyncOutput)
    wait_for_async_inference = async_method(methods.wait_for_async_inference, lambda: bytes)
    invoke_many = sync_method(methods.invoke_many, lambda: AsyncIterator[BulkResult])
    invoke_endpoint_with_bidirectional_stream = sync_method(
        methods.invoke_endpoint_with_bidirectional_stream, lambda: AsyncBidirectionalStream
    )

    def _open_stream(self, operation_name: str, input: Any, option_fns: Sequence[OptionFunc]) -> AsyncBidirectionalStream:
        return self._bidirectional_stream(operation_name, input, option_fns)

    def _invoke_many(self, inputs: Iterable[Record] | AsyncIterable[Record], run: BulkRun) -> AsyncIterator[BulkResult]:
        from smruntime.bulk.tasks import invoke_many

        return invoke_many(self, inputs, run)

    async def _wait(self, poll: Poll, reader: S3Reader) -> bytes:
        try:
            return await poll.await_result()
        finally:
            reader.close()

    async def _call(self, operation_name: str, input: Any, option_fns: Sequence[OptionFunc]) -> Any:
        chain, ctx = self._prepare(operation_name, option_fns)
        return await chain(ctx, input)

    async def aclose(self) -> None:
        """Release pooled connections (only of an HTTP client this client created).

        Calls started later raise; calls still in flight finish, or fail with a
        :class:`~smruntime.errors.TransportError`, rather than hang.
        """
        if self._closed:
            return
        self._closed = True
        client: Any = self._options.http_client  # an AsyncHTTPClient: _check_http_client saw to it
        if self._owns_http_client and client is not None:
            await client.aclose()
        http2_client = self._options.http2_client
        if self._owns_http2_client and http2_client is not None:
            await http2_client.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _default_http_client(self) -> type[Any]:
        from smruntime.transport import AsyncFastHTTPClient

        return AsyncFastHTTPClient

    def _check_http_client(self, http_client: Any) -> None:
        if http_client is not None and not is_async_http_client(http_client):
            raise errors.InvalidParamsError(
                [errors.FieldProblem("http_client", "type", "is a sync HTTP client: AsyncClient needs an AsyncHTTPClient "
                                     "(async send and aclose), or use it with Client")]
            )

    def _compose(self, stack: Stack) -> Chain:
        return stack.async_handler(_send)


async def _send(ctx: Context, request: HTTPRequest) -> HTTPResponse | AsyncHTTPResponse:
    """The terminal handler: send with the call's AsyncHTTPClient, and read the body unless it
    is a live event stream (a 2xx answer of a streaming operation), so that the Deserialize
    step gets it in memory."""
    client = cast("AsyncHTTPClient", ctx.options.http_client)  # checked when the client was made
    streams = ctx.get(keys.STREAM_RESPONSE, False)
    response: HTTPResponse | AsyncHTTPResponse
    try:
        sent = await client.send(request, stream=streams)
        if streams and 200 <= sent.status_code < 300:
            response = sent
        else:
            response = HTTPResponse(sent.status_code, sent.headers, BytesBody(await sent.read()), sent.reason)
    except (errors.SageMakerRuntimeError, WrongEventLoopError):
        raise
    except Exception as error:  # a user's HTTP client: map its failure at this one boundary
        raise transport_failure(error) from error
    return received(ctx, response)
