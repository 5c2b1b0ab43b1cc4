"""What every operation of the local endpoint shares: accepting a call, its faults, the wire answer.

Accepting a call is steps 1-3 of ``app``'s docstring: a declared ``Content-Length`` over the
limit is refused at once, the SigV4 headers are authenticated before any of the body is read,
the body is read within the limit and the signature settled with its SHA-256, then the endpoint
name and the API headers are validated and the endpoint looked up.
"""

from __future__ import annotations

import asyncio
import email.utils
import socket
import struct
from collections.abc import Sequence

import attrs
from starlette.requests import Request
from starlette.responses import Response

from smruntime import service_model
from smruntime.local.sigv4_verify import SignedHeaders
from smruntime.local.state import EndpointRuntime, LocalState
from smruntime.local.wire import (
    InvokeParams,
    ServiceError,
    parse_invoke_params,
    validate_endpoint_name,
    validation_error,
)
from smruntime.middleware.reprs import fields_repr
from smruntime.shapes import Shape

__all__ = [
    "TRANSPORT_KEY",
    "Accepted",
    "ConnectionResetOnPurpose",
    "accept_call",
    "apply_faults",
    "count_answer",
    "error_response",
    "reset_connection",
    "wire_response",
]

TRANSPORT_KEY = "smruntime.transport"
"""Scope key under which LocalApp leaves the connection's transport, to reset it on demand."""


# --- responses ------------------------------------------------------------------------------

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

    __repr__ = fields_repr

    endpoint: EndpointRuntime
    params: InvokeParams
    body: bytes = attrs.field(repr=False)


async def accept_call(state: LocalState, request: Request, shape: Shape = service_model.INVOKE_ENDPOINT,
                      *, max_body_bytes: int | None = None) -> Accepted:
    """Accept a call of the operation whose input table is ``shape``, as this module's docstring
    says (steps 1-3 of ``app``'s); raises the ServiceError to answer."""
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
