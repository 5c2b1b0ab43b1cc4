"""Bidirectional models for the local endpoint's tests, loaded as ``module:function`` references."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from smruntime.local.bidi_models import BidiOutput, BidiRequest
from smruntime.local.bidi_wire import PARTIAL, UTF8, Part
from smruntime.local.models import ModelFailure


async def shout(request: BidiRequest) -> AsyncIterator[BidiOutput]:
    """Each part back in upper case, as text."""
    async for part in request.parts:
        yield part.text.upper()


async def greet_first(request: BidiRequest) -> AsyncIterator[BidiOutput]:
    """Speaks before it has read anything, then answers each part."""
    yield "hello, who is there?"
    async for part in request.parts:
        yield f"nice to meet you, {part.text}"


async def chatty(request: BidiRequest) -> AsyncIterator[BidiOutput]:
    """Three answers for every part: two PARTIAL, then one COMPLETE."""
    async for part in request.parts:
        for index in range(3):
            yield Part(f"{part.text}#{index}".encode(), UTF8, PARTIAL if index < 2 else "COMPLETE")


async def big_then_small(request: BidiRequest) -> AsyncIterator[BidiOutput]:
    """For every part: one 100,000-byte answer (several HTTP/2 frames), then ten short ones."""
    async for part in request.parts:
        yield part.data[:1] * 100_000
        for index in range(10):
            yield f"{part.text}.{index}"


async def firehose(request: BidiRequest) -> AsyncIterator[BidiOutput]:
    """After the first part, short answers for ever, in a tight loop (it never awaits)."""
    async for _ in request.parts:
        break
    while True:
        yield b"y" * 50


async def pieces(request: BidiRequest) -> AsyncIterator[BidiOutput]:
    """For each part "count:size": that many answers of ``size`` bytes, the loop let run between them."""
    async for part in request.parts:
        count, size = (int(value) for value in part.text.split(":"))
        for _ in range(count):
            yield b"z" * size
            await asyncio.sleep(0)


async def describe(request: BidiRequest) -> AsyncIterator[BidiOutput]:
    """Reports what it was invoked with, then the number of parts it read."""
    yield json.dumps({
        "endpoint_name": request.endpoint_name,
        "variant_name": request.variant_name,
        "target_variant": request.target_variant,
        "model_invocation_path": request.model_invocation_path,
        "model_query_string": request.model_query_string,
    })
    count = 0
    async for _part in request.parts:
        count += 1
    yield f"read {count} parts"


async def fail_on_boom(request: BidiRequest) -> AsyncIterator[BidiOutput]:
    """Echoes parts until one says ``boom``, then fails like a crashed container."""
    async for part in request.parts:
        if part.data == b"boom":
            raise ModelFailure(500, "the model fell over")
        yield part


async def silent(request: BidiRequest) -> AsyncIterator[BidiOutput]:
    """Reads everything and says nothing until its input ends, then says goodbye."""
    async for _part in request.parts:
        await asyncio.sleep(0)
    yield "goodbye"


async def one_answer(request: BidiRequest) -> AsyncIterator[BidiOutput]:
    """Answers once and is done, whatever the caller still sends."""
    yield "done already"


async def deaf(request: BidiRequest) -> AsyncIterator[BidiOutput]:
    """Says it is listening, then reads nothing until it is told (by a part it never reads) to stop."""
    yield "listening"
    await asyncio.sleep(3600)
