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
import email.utils
import os
import socket
import struct
import uuid
from collections.abc import Sequence

import attrs
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from smruntime.local.config import LocalConfig, as_config
from smruntime.local.credentials import CredentialsInput, resolve_credentials
from smruntime.local.hosts import ANY_HOST, HostPolicy
from smruntime.local.invoke import Invocation, join_chunks, run_invocation
from smruntime.local.routing import route
from smruntime.local.sessions import NEW_SESSION, format_new_session_header
from smruntime.local.sigv4_verify import SignedHeaders
from smruntime.local.state import EndpointRuntime, LocalState
from smruntime.local.wire import (
    InvokeParams,
    ServiceError,
    parse_invoke_params,
    validate_endpoint_name,
    validation_error,
)
from smruntime.operations import model
from smruntime.operations.spec import Shape

__all__ = ["Accepted", "LocalApp", "accept_call", "busy_app", "create_app", "error_response", "wire_response"]

TRANSPORT_KEY = "smruntime.transport"
"""Scope key under which LocalApp leaves the connection's transport, to reset it on demand."""


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

    # Imported here: the streaming module builds on this one's helpers.
    from smruntime.local.streaming import invoke_endpoint_with_response_stream

    async def invoke_stream(request: Request) -> Response:
        return await invoke_endpoint_with_response_stream(live, request)

    # Imported here for the same reason; the worker's jobs run on the server's event loop.
    from smruntime.local.async_invoke import AsyncInvocations

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


# --- responses ------------------------------------------------------------------------------

def _request_id() -> str:
    return str(uuid.uuid4())


def wire_response(state: LocalState, status: int, body: bytes, headers: Sequence[tuple[str, str]],
                  request_id: str) -> Response:
    """A response with headers spelled exactly as given (Starlette would lower-case them)."""
    response = Response(content=body, status_code=status)
    framing = response.raw_headers  # content-length, as Starlette computed it
    ours = [*headers, ("x-amzn-RequestId", request_id), ("Date", email.utils.formatdate(state.now(), usegmt=True))]
    response.raw_headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in ours] + framing
    return response


def error_response(state: LocalState, error: ServiceError, request_id: str) -> Response:
    """The error's JSON body (see ``ServiceError.body``) and its code in ``X-Amzn-ErrorType``."""
    headers = [("Content-Type", "application/json")]
    if error.code is not None:
        headers.append(("X-Amzn-ErrorType", error.code))
    return wire_response(state, error.status, error.body(), headers, request_id)


# --- the steps every operation shares -------------------------------------------------------

@attrs.frozen
class Accepted:
    """A request that passed size, signature and input checks, for a configured endpoint."""

    endpoint: EndpointRuntime
    params: InvokeParams
    body: bytes = attrs.field(repr=False)


async def accept_call(state: LocalState, request: Request, shape: Shape = model.INVOKE_ENDPOINT,
                      *, max_body_bytes: int | None = None) -> Accepted:
    """Steps 1-3 of the module docstring for the operation whose input table is ``shape``;
    raises the ServiceError to answer."""
    name = request.path_params.get("endpoint_name", "")
    runtime = state.endpoints.get(name)
    if runtime is not None:
        runtime.counters.request_received()
    limit = state.config.max_body_bytes if max_body_bytes is None else max_body_bytes
    _refuse_declared_oversize(request, limit)
    signed = _verify_headers(state, request) if state.config.verify_signatures else None
    body = await _read_body(request, limit)
    if signed is not None:
        state.verifier.verify_body(signed, body)
    validate_endpoint_name(name)
    params = parse_invoke_params(request.headers, shape)
    if runtime is None:
        raise validation_error(f"Endpoint {name} of account {state.config.account_id} not found.")
    return Accepted(endpoint=runtime, params=params, body=body)


def _too_large(limit: int) -> ServiceError:
    return ServiceError(413, None, f"HTTP content length exceeded {limit} bytes.")


def _refuse_declared_oversize(request: Request, limit: int) -> None:
    # Answered before a byte of the body is read; the server drops the rest as it arrives.
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


def _verify_headers(state: LocalState, request: Request) -> SignedHeaders:
    scope = request.scope
    return state.verifier.verify_headers(
        method=request.method,
        raw_path=scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
        raw_query=scope.get("query_string", b"").decode("latin-1"),
        headers=[(key.decode("latin-1"), value.decode("latin-1")) for key, value in scope["headers"]],
    )


async def _read_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)  # nothing more is read or kept
        chunks.append(chunk)
    return b"".join(chunks)


async def reset_connection(request: Request) -> None:
    """Drop the connection with a TCP RST and send nothing (needs uvicorn's transport)."""
    transport = request.scope.get(TRANSPORT_KEY)
    if not isinstance(transport, asyncio.Transport):
        raise ConnectionResetError("fault injection: cannot reset, the server does not expose its transport")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger 0: close() sends RST instead of FIN, what a crashed proxy looks like.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let the server see the connection lost, so nothing is written to it afterwards.
    await asyncio.sleep(0)


class ConnectionResetOnPurpose(Exception):
    """Fault injection reset the connection: there is nobody left to answer."""


async def apply_faults(runtime: EndpointRuntime, request: Request) -> None:
    """Apply the endpoint's next scheduled fault, if any (after authentication, before the model)."""
    action = runtime.faults.take()
    if action.latency:
        await asyncio.sleep(action.latency)
    if action.reset:
        runtime.counters.answered(0)  # before the reset: the client may look as soon as it sees it
        await reset_connection(request)
        raise ConnectionResetOnPurpose
    if action.error is not None:
        raise action.error


def count_answer(state: LocalState, request: Request, status: int) -> None:
    """Record the status answered to a call on its endpoint's counters (unknown endpoints: none)."""
    runtime = state.endpoints.get(request.path_params.get("endpoint_name", ""))
    if runtime is not None:
        runtime.counters.answered(status)


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

