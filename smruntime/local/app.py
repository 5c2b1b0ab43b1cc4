"""The Starlette app that speaks the SageMaker Runtime wire protocol.

Every request first has its ``Host`` header checked (see ``hosts``; a name this server does
not serve: 400). ``POST /endpoints/{EndpointName}/invocations`` (InvokeEndpoint) then goes
through, in order:

1. a declared ``Content-Length`` over ``max_body_bytes`` is answered 413 at once, body
   ``{"message": "HTTP content length exceeded 6291456 bytes."}`` and no error code, as the
   service answers;
2. the SigV4 headers are authenticated before any of the body is read (see ``sigv4_verify``;
   off with ``verify_signatures``), then the body is read (past ``max_body_bytes``: 413, and
   nothing more is kept) and the signature settled with its SHA-256;
3. the endpoint name and the API headers are validated, the endpoint looked up
   (``Endpoint X of account 123456789012 not found.``: 400 ValidationError);
4. faults armed on the endpoint apply (latency, reset, scheduled errors);
5. the request is routed (see ``routing``) and the model run (see ``invoke``).

Every response carries ``x-amzn-RequestId`` and a ``Date`` from the server's clock. Paths the
API does not have answer 404 ``UnknownOperationException``; ``GET /ping`` answers 200 so that
scripts can wait for ``smruntime serve`` to be up.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from smruntime.local.async_inference import AsyncInvocations
from smruntime.local.calls import (
    TRANSPORT_KEY,
    Accepted,
    ConnectionResetOnPurpose,
    accept_call,
    apply_faults,
    count_answer,
    error_response,
    wire_response,
)
from smruntime.local.config import LocalConfig, as_config
from smruntime.local.credentials import CredentialsInput, resolve_credentials
from smruntime.local.hosts import ANY_HOST, HostPolicy
from smruntime.local.invoke import Invocation, join_chunks, run_invocation
from smruntime.local.routing import route
from smruntime.local.sessions import NEW_SESSION, format_new_session_header
from smruntime.local.state import LocalState
from smruntime.local.streaming import invoke_endpoint_with_response_stream
from smruntime.local.wire import ServiceError

# Accepted, accept_call, error_response and wire_response now live in ``calls``; kept here too.
__all__ = ["Accepted", "LocalApp", "accept_call", "busy_app", "create_app", "error_response", "wire_response"]


class LocalApp(Starlette):
    """A Starlette app holding the endpoint state; also exposes the transport for resets.

    ``hosts`` is the Host policy; None answers any Host (an app mounted in process, where
    no browser can reach it; ``LocalEndpoint`` and ``serve`` pass the names they serve).
    """

    def __init__(self, state: LocalState, routes: Sequence[Route], hosts: HostPolicy | None = None) -> None:
        super().__init__(routes=list(routes))
        self.local_state = state
        self.hosts = hosts if hosts is not None else HostPolicy(names={ANY_HOST})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = next((value.decode("latin-1") for name, value in scope["headers"] if name.lower() == b"host"), None)
            if not self.hosts.allows(host):
                # Before routing and before any of the body: a page driving a loopback endpoint
                # through DNS rebinding gets nothing but this.
                shown = (host or "")[:100]
                error = ServiceError(400, None, f"Host '{shown}' is not a name this endpoint serves "
                                                f"(it serves {self.hosts.describe()}); allow more names with "
                                                "allowed_hosts (smruntime serve --allowed-host NAME).")
                await error_response(self.local_state, error, _request_id())(scope, receive, send)
                return
            # Starlette wraps ``send`` below this point; uvicorn's own send knows its transport.
            owner = getattr(send, "__self__", None)
            transport = getattr(owner, "transport", None)
            if isinstance(transport, asyncio.Transport):
                scope[TRANSPORT_KEY] = transport
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            pass  # the client left before its request was whole: nobody to answer, nothing broke


def busy_app(state: LocalState) -> ASGIApp:
    """The ASGI answer to a connection over the server's limit: 503, then the connection closes."""

    async def busy(scope: Scope, receive: Receive, send: Send) -> None:
        error = ServiceError(503, "ServiceUnavailable", "The endpoint has too many open connections. "
                                                        "Try your request again.")
        response = error_response(state, error, _request_id())
        response.raw_headers.append((b"connection", b"close"))
        await response(scope, receive, send)

    return busy


def create_app(
    config: LocalConfig | str | os.PathLike[str] | None = None, credentials: CredentialsInput | None = None, *,
    state: LocalState | None = None, hosts: HostPolicy | None = None,
) -> LocalApp:
    """The ASGI app for ``config`` (default: echo, sum, tokens), accepting ``credentials``,
    answering the Host names of ``hosts`` (default: any, see LocalApp)."""
    if state is None:
        state = LocalState(as_config(config), resolve_credentials(credentials))
    live = state

    async def invoke_endpoint(request: Request) -> Response:
        return await _invoke_endpoint(live, request)

    async def invoke_stream(request: Request) -> Response:
        return await invoke_endpoint_with_response_stream(live, request)

    async_invocations = AsyncInvocations(live)

    async def ping(_request: Request) -> Response:
        return wire_response(live, 200, b'{"status": "ok"}', [("Content-Type", "application/json")], _request_id())

    async def unknown(request: Request) -> Response:
        error = ServiceError(404, "UnknownOperationException", f"No operation at {request.method} {request.url.path}")
        return error_response(live, error, _request_id())

    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    return LocalApp(state, hosts=hosts, routes=[
        Route("/endpoints/{endpoint_name:path}/invocations", invoke_endpoint, methods=["POST"]),
        Route("/endpoints/{endpoint_name:path}/invocations-response-stream", invoke_stream, methods=["POST"]),
        Route("/endpoints/{endpoint_name:path}/async-invocations", async_invocations.handle, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/{path:path}", unknown, methods=methods),
    ])


def _request_id() -> str:
    return str(uuid.uuid4())


# --- InvokeEndpoint -------------------------------------------------------------------------

async def _invoke_endpoint(state: LocalState, request: Request) -> Response:
    request_id = _request_id()
    try:
        response = await _invoke(state, request, request_id)
        status = response.status_code
    except ServiceError as error:
        response = error_response(state, error, request_id)
        status = error.status
    except ConnectionResetOnPurpose:
        return Response(status_code=500)  # never sent: the connection is gone (counted as 0 already)
    count_answer(state, request, status)
    return response


async def _invoke(state: LocalState, request: Request, request_id: str) -> Response:
    accepted = await accept_call(state, request)
    runtime, params = accepted.endpoint, accepted.params
    await apply_faults(runtime, request)
    target = route(runtime, params, state.sessions, account=state.config.account_id)
    result = await run_invocation(Invocation(
        endpoint=runtime.name,
        region=state.config.region,
        account=state.config.account_id,
        timeout=runtime.config.container_timeout,
        params=params,
        body=accepted.body,
        target=target,
        counters=runtime.counters,
    ))
    headers = [("Content-Type", result.content_type), ("x-Amzn-Invoked-Production-Variant", target.variant)]
    if result.custom_attributes is not None:
        headers.append(("X-Amzn-SageMaker-Custom-Attributes", result.custom_attributes))
    if params.session_id == NEW_SESSION:
        session = state.sessions.open(runtime.name, target.variant, result.session_id)
        headers.append(("X-Amzn-SageMaker-New-Session-Id", format_new_session_header(session)))
    elif target.session is not None and result.close_session:
        state.sessions.close(target.session.id)
        headers.append(("X-Amzn-SageMaker-Closed-Session-Id", target.session.id))
    return wire_response(state, 200, join_chunks(result.body), headers, request_id)

