"""The response stream of InvokeEndpointWithResponseStream, for both clients.

:class:`ResponseStream` (sync) and :class:`AsyncResponseStream` (asyncio) share everything
but the reading: the decoder, what each message means, and how lines are re-joined.
Events are decoded as their bytes arrive. An exception frame raises
:class:`~smruntime.errors.ModelStreamError` (with its ``error_code``) or
:class:`~smruntime.errors.InternalStreamFailure` from the iteration; a stream cut off
mid-frame raises :class:`~smruntime.errors.EventStreamError`, never a silent end.
"""

from __future__ import annotations

import collections
import json
import logging
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Generic, Iterator, TypeVar

from smruntime import errors
from smruntime.eventstream import EventStreamDecoder, Message, TruncatedStreamError
from smruntime.http import HTTPResponse
from smruntime.types import PayloadPart, ResultMetadata

if TYPE_CHECKING:
    from smruntime.transport.async_protocol import AsyncHTTPResponse

LOGGER = logging.getLogger("smruntime")

T = TypeVar("T")


def message_error(message: Message, operation: str, request_id: str | None) -> errors.APIError | None:
    """The error an exception or error frame carries; None for an event frame."""
    kind = message.message_type
    if kind == "exception":
        code = message.exception_type or "UnknownError"
        document = _json_object(message.payload)
        cls = errors.error_class_for_code(code)
        text = document.get("Message", document.get("message", ""))
        fields = {key: value for key, value in document.items() if key.lower() != "message"}
        return cls(
            "" if text is None else str(text),
            code=code,
            request_id=request_id,
            operation=operation,
            fault="server" if cls is errors.InternalStreamFailure else None,
            transient=cls is errors.InternalStreamFailure,
            fields=fields,
        )
    if kind == "error":
        return errors.APIError(
            message.error_message or "",
            code=message.error_code or "UnknownError",
            request_id=request_id,
            operation=operation,
        )
    return None


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload) if payload else {}
    except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
        return {"Message": payload.decode("utf-8", "replace")}
    return document if isinstance(document, dict) else {}


class _Stream:
    """What both streams hold: the response's facts, the decoder and the messages decoded ahead."""

    def __init__(
        self,
        response: Any,
        *,
        operation: str,
        content_type: str | None,
        invoked_production_variant: str | None,
        custom_attributes: str | None,
        metadata: ResultMetadata,
        request_id: str | None = None,
        first: list[Message] | None = None,
        decoder: EventStreamDecoder | None = None,
    ) -> None:
        self.content_type = content_type
        self.invoked_production_variant = invoked_production_variant
        self.custom_attributes = custom_attributes
        self.metadata = metadata
        self._response = response
        self._operation = operation
        self._request_id = request_id
        self._decoder = decoder or EventStreamDecoder()
        self._ready: list[Message] = list(first or ())
        self._closed = False
        self._ended = False  # every event was read: a closed stream then just has no more
        # lines(): kept with the stream, so that a loop left early and a new lines() go on
        # where it stopped, with no line lost.
        self._splitter = LineSplitter()
        self._lines: collections.deque[bytes] = collections.deque()
        self._lines_ended = False
        self._reading_lines = False
        self._lines_broken = False  # a part was read directly while a line was unfinished

    @property
    def closed(self) -> bool:
        return self._closed

    def _split(self, part: PayloadPart | None) -> None:
        """Feed the next part (None: the stream ended) to the line splitter."""
        if part is None:
            self._lines.extend(self._splitter.end())
            self._lines_ended = True
        else:
            self._lines.extend(self._splitter.feed(part.bytes))

    def _read_directly(self) -> None:
        """A part is about to be handed out other than to ``lines()``."""
        if not self._reading_lines and self._splitter.unfinished:
            self._lines_broken = True  # that part's bytes belong to the unfinished line

    def _check_lines(self) -> None:
        if self._closed and not self._ended:
            raise self._closed_early()
        if self._lines_broken:
            raise errors.SageMakerRuntimeError(
                "lines() cannot go on: parts were read from the stream directly while a line was unfinished; "
                "read a stream by its parts or by its lines, not both",
                operation=self._operation,
            )

    def _closed_early(self) -> errors.SageMakerRuntimeError:
        return errors.SageMakerRuntimeError(
            "the stream was closed before its end: nothing more can be read from it", operation=self._operation
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(content_type={self.content_type!r}, "
            f"invoked_production_variant={self.invoked_production_variant!r}, closed={self._closed})"
        )


class ResponseStream(_Stream):
    """Iterate it for :class:`~smruntime.types.PayloadPart` events, in order, as they arrive.

    Use it as a context manager (or call :meth:`close`, which is idempotent): a fully read
    stream returns its connection to the pool, an abandoned one drops it.
    """

    def __init__(self, response: HTTPResponse, *, chunks: Iterator[bytes] | None = None, **facts: Any) -> None:
        super().__init__(response, **facts)
        self._chunks = chunks
        self._events = self._generate()

    def __iter__(self) -> Iterator[PayloadPart]:
        return self

    def __next__(self) -> PayloadPart:
        if self._closed and not self._ended:
            raise self._closed_early()
        self._read_directly()
        return next(self._events)

    def payloads(self) -> Iterator[bytes]:
        """The raw bytes of each part."""
        return _View(lambda: next(self).bytes)

    def lines(self) -> Iterator[bytes]:
        """Lines re-joined across parts, without their ``\\n`` (or ``\\r\\n``).

        A last line without a newline is yielded when the stream ends. A new ``lines()`` goes
        on where the last one stopped (the partial line is kept with the stream).
        """
        return _View(self._next_line)

    def _next_line(self) -> bytes:
        self._check_lines()
        while not self._lines:
            if self._lines_ended:
                raise StopIteration
            self._reading_lines = True
            try:
                part = next(self, None)
            finally:
                self._reading_lines = False
            self._split(part)
        return self._lines.popleft()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._response.close()

    def __enter__(self) -> ResponseStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _generate(self) -> Iterator[PayloadPart]:
        try:
            yield from self._parts(self._ready)
            self._ready = []
            chunks = self._chunks if self._chunks is not None else self._response.body.iter_chunks()
            for chunk in _cut_off_as_truncation(chunks, self._operation):
                yield from self._parts(self._decoder.feed(chunk))
            self._decoder.end()
        except BaseException:
            self.close()
            raise
        self._ended = True
        self.close()

    def _parts(self, messages: list[Message]) -> Iterator[PayloadPart]:
        for message in messages:
            part = part_of(message, self._operation, self._request_id)
            if part is not None:
                yield part


def part_of(message: Message, operation: str, request_id: str | None) -> PayloadPart | None:
    """The event a message carries (None for one of an unknown type); raises the error an
    exception or error message carries."""
    error = message_error(message, operation, request_id)
    if error is not None:
        raise error
    if message.event_type == "PayloadPart":
        return PayloadPart(message.payload)
    LOGGER.debug("%s: skipping unknown event type %r", operation, message.event_type)
    return None


class _View(Generic[T]):
    """An iterator whose items come from the stream itself, so that it holds no state of its
    own: an interrupted or abandoned one loses nothing, and the stream's errors reach it."""

    __slots__ = ("_next_item",)

    def __init__(self, next_item: Callable[[], T]) -> None:
        self._next_item = next_item

    def __iter__(self) -> _View[T]:
        return self

    def __next__(self) -> T:
        return self._next_item()

    def close(self) -> None:
        """Nothing to release: the stream holds the state (close the stream to end it)."""


class _AsyncView(Generic[T]):
    """:class:`_View` for ``async for``. Unlike an async generator, a cancelled read does not
    end it: the next read raises the error the cancelled stream raises."""

    __slots__ = ("_next_item",)

    def __init__(self, next_item: Callable[[], Awaitable[T]]) -> None:
        self._next_item = next_item

    def __aiter__(self) -> _AsyncView[T]:
        return self

    async def __anext__(self) -> T:
        return await self._next_item()

    async def aclose(self) -> None:
        """Nothing to release (as for ``contextlib.aclosing``): the stream holds the state."""


class LineSplitter:
    """Re-joins lines across parts (sans-IO): ``feed`` each part, then ``end``."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The lines ``data`` completes, without their ``\\n`` (or ``\\r\\n``)."""
        lines: list[bytes] = []
        pending = self._pending
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline < 0:
                pending += data[start:]
                return lines
            pending += data[start:newline]
            lines.append(_strip_cr(bytes(pending)))
            pending.clear()
            start = newline + 1

    @property
    def unfinished(self) -> bool:
        """Whether part of a line was fed and its end not yet."""
        return bool(self._pending)

    def end(self) -> list[bytes]:
        """A last line without a newline, if any."""
        rest = bytes(self._pending)
        self._pending.clear()
        return [rest] if rest else []


class AsyncResponseStream(_Stream):
    """The asyncio stream: ``async for`` it for :class:`~smruntime.types.PayloadPart` events.

    Use it with ``async with`` (or await :meth:`aclose`, which is idempotent): a fully read
    stream returns its connection to the pool; an abandoned, failed or cancelled one drops it.
    """

    def __init__(self, response: AsyncHTTPResponse, *, chunks: AsyncIterator[bytes] | None = None, **facts: Any) -> None:
        super().__init__(response, **facts)
        self._chunks = chunks if chunks is not None else response.body.aiter_chunks()
        import asyncio  # only asyncio programs make this stream

        self._loop = asyncio.get_running_loop()

    def __aiter__(self) -> AsyncResponseStream:
        return self

    async def __anext__(self) -> PayloadPart:
        if self._closed and not self._ended:
            raise self._closed_early()
        self._read_directly()
        try:
            while True:
                while self._ready:
                    part = part_of(self._ready.pop(0), self._operation, self._request_id)
                    if part is not None:
                        return part
                if self._ended:
                    break
                try:
                    chunk = await self._chunks.__anext__()
                except StopAsyncIteration:
                    self._ended = True
                    self._decoder.end()
                    continue
                except errors.TransportError as error:
                    raise stream_cut_off(error, self._operation) from error
                self._ready = self._decoder.feed(chunk)
        except BaseException:
            await self.aclose()  # an error, a cancellation: the connection is dropped
            raise
        await self.aclose()
        raise StopAsyncIteration

    def payloads(self) -> AsyncIterator[bytes]:
        """The raw bytes of each part."""
        return _AsyncView(self._next_payload)

    def lines(self) -> AsyncIterator[bytes]:
        """Lines re-joined across parts, as :meth:`ResponseStream.lines`."""
        return _AsyncView(self._next_line)

    async def _next_payload(self) -> bytes:
        return (await self.__anext__()).bytes

    async def _next_line(self) -> bytes:
        self._check_lines()
        while not self._lines:
            if self._lines_ended:
                raise StopAsyncIteration
            self._reading_lines = True
            try:
                part = await anext(self, None)
            finally:
                self._reading_lines = False
            self._split(part)
        return self._lines.popleft()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            # The chunk iterator first: an async generator left to the garbage collector would
            # be finalized by a task of its own, after the caller thinks the stream is done.
            close_chunks = getattr(self._chunks, "aclose", None)
            if close_chunks is not None:
                try:
                    await close_chunks()
                except (RuntimeError, errors.SageMakerRuntimeError):  # running, or failed as it stopped
                    pass
            await self._response.aclose()

    async def __aenter__(self) -> AsyncResponseStream:
        return self

    def __del__(self) -> None:
        # Abandoned without aclose: release the connection on the stream's loop (a finalizer
        # cannot await, and may run on another thread).
        if not getattr(self, "_closed", True) and not self._loop.is_closed():
            self._closed = True
            try:
                self._loop.call_soon_threadsafe(_release_later, self._loop, self._response)
            except RuntimeError:  # the loop closed meanwhile: its transports went with it
                pass

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _release_later(loop: Any, response: AsyncHTTPResponse) -> None:
    loop.create_task(response.aclose())


def _cut_off_as_truncation(chunks: Iterator[bytes], operation: str) -> Iterator[bytes]:
    try:
        yield from chunks
    except errors.TransportError as error:
        raise stream_cut_off(error, operation) from error


def stream_cut_off(error: errors.TransportError, operation: str | None = None) -> TruncatedStreamError:
    """A connection lost mid-stream, as what it means here: a truncated stream. A stream that
    sent nothing for ``read_timeout`` stalled: that error has ``timeout`` set. Raise it
    ``from error``."""
    if isinstance(error, errors.ReadTimeoutError):
        truncated = TruncatedStreamError(
            f"the event stream stalled: no data within the read timeout ({error.message})", operation=operation
        )
        truncated.timeout = True
        return truncated
    return TruncatedStreamError(f"the event stream was cut off: {error.message}", operation=operation)


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line
