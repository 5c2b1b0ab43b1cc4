"""Models for InvokeEndpointWithBidirectionalStream: async generators over the incoming parts.

A bidirectional model is an async generator function taking one :class:`BidiRequest`; it
reads the caller's parts from ``request.parts`` (an async iterator that ends when the caller
ends its input) and yields its answers as they are ready, each a :class:`Part`, ``bytes``
(a BINARY part) or ``str`` (a UTF8 part)::

    async def shout(request: BidiRequest) -> AsyncIterator[Part | bytes | str]:
        async for part in request.parts:
            yield part.text.upper()

The stream ends when the generator returns. Reading and answering are independent: a model
may answer before it has read anything, answer several times per part, or read several
parts before answering. An exception from the generator ends the stream with a
``ModelStreamError`` event (``ModelFailure`` gives its message).

Which model serves a variant on this route (:func:`bidirectional_model`):

- an async generator function (or an object whose ``__call__`` or ``converse`` is one), as is;
- the built-in ``echo``: answers every part as it arrives, with the same bytes and headers;
- any other model (``sum``, ``tokens``, ``module:function`` callables, containers): it takes
  turns. Parts are buffered until one is ``COMPLETE``; the turn's bytes then go to the model
  like an InvokeEndpoint body, and each chunk it answers becomes one part (``PARTIAL`` but the
  last, which is ``COMPLETE``; UTF8 when the model's content type is text or JSON). The
  built-in ``turns`` is this around ``tokens``: it answers each turn word by word.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, Final, TypeAlias

import attrs

from smruntime.local.bidi_wire import BINARY, COMPLETE, PARTIAL, UTF8, Part
from smruntime.local.models import Model, ModelRequest, ModelResponse
from smruntime.middleware.reprs import fields_repr

__all__ = ["BidiModel", "BidiOutput", "BidiRequest", "TurnTaking", "bidirectional_model", "echo_parts"]

OPERATION: Final = "InvokeEndpointWithBidirectionalStream"

BidiOutput: TypeAlias = Part | bytes | str


@attrs.frozen
class BidiRequest:
    """What a bidirectional model sees: the caller's parts and the stream's API headers."""

    __repr__ = fields_repr

    parts: AsyncIterator[Part] = attrs.field(repr=False)
    endpoint_name: str = ""
    variant_name: str = ""
    target_variant: str | None = None
    model_invocation_path: str | None = None
    """Where SageMaker would connect inside the container (``X-Amzn-SageMaker-Model-Invocation-Path``)."""
    model_query_string: str | None = None
    """The query SageMaker would add to that URL (``X-Amzn-SageMaker-Model-Query-String``)."""


BidiModel: TypeAlias = Callable[[BidiRequest], AsyncIterator[BidiOutput]]


async def echo_parts(request: BidiRequest) -> AsyncIterator[BidiOutput]:
    """Answers every part as it arrives, bytes and headers unchanged."""
    async for part in request.parts:
        yield part


_TEXT_TYPES: Final = ("text/", "application/json")


@attrs.frozen
class TurnTaking:
    """A request/response ``model`` taking turns (see the module docstring)."""

    __repr__ = fields_repr

    model: Model

    def __call__(self, request: ModelRequest) -> Any:
        # On the other routes it is the model it wraps.
        return self.model(request)

    async def converse(self, request: BidiRequest) -> AsyncIterator[BidiOutput]:
        turn: list[bytes] = []
        data_type = BINARY
        async for part in request.parts:
            turn.append(part.data)
            if not part.complete:
                continue
            data_type = part.data_type
            body, turn = b"".join(turn), []
            async for answer in self._answer(request, body, data_type):
                yield answer

    async def _answer(self, request: BidiRequest, body: bytes, data_type: str) -> AsyncIterator[Part]:
        model_request = ModelRequest(
            body=body,
            content_type="text/plain; charset=utf-8" if data_type == UTF8 else "application/octet-stream",
            target_variant=request.target_variant,
            endpoint_name=request.endpoint_name,
            variant_name=request.variant_name,
            operation=OPERATION,
        )
        response = await asyncio.to_thread(self.model, model_request)
        content_type, chunks = _chunks_of(response)
        kind = UTF8 if content_type is not None and content_type.startswith(_TEXT_TYPES) else BINARY
        # One chunk ahead: only the last one of the turn is COMPLETE.
        held: bytes | None = None
        while True:
            chunk = await asyncio.to_thread(next, chunks, None)
            if chunk is None:
                break
            if held is not None:
                yield Part(held, kind, PARTIAL)
            held = chunk
        yield Part(held or b"", kind, COMPLETE)


def _chunks_of(output: object) -> tuple[str | None, Iterator[bytes]]:
    content_type: str | None = None
    body: object = output
    if isinstance(output, ModelResponse):
        content_type, body = output.content_type, output.body
    if isinstance(body, bytes | bytearray | memoryview):
        return content_type, iter((bytes(body),))
    if isinstance(body, Iterable) and not isinstance(body, str):
        return content_type, (chunk.encode() if isinstance(chunk, str) else bytes(chunk) for chunk in body)
    raise TypeError(f"a model must return ModelResponse, bytes or an iterator of bytes, not {type(body).__name__}")


def _is_bidirectional(candidate: object) -> bool:
    call = type(candidate).__call__ if callable(candidate) else None
    return inspect.isasyncgenfunction(candidate) or inspect.isasyncgenfunction(call)


def bidirectional_model(model: object) -> BidiModel:
    """The bidirectional model that serves a variant whose model is ``model`` (module docstring)."""
    if _is_bidirectional(model):
        found: BidiModel = model  # type: ignore[assignment]
        return found
    converse = getattr(model, "converse", None)
    if converse is not None and _is_bidirectional(converse):
        bound: BidiModel = converse
        return bound
    return TurnTaking(model).converse  # type: ignore[arg-type]
