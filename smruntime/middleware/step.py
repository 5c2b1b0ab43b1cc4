"""Steps: ordered, uniquely named lists of middleware."""

from __future__ import annotations

import enum
from typing import Any, Awaitable, Callable, ClassVar, Generic, Iterator, Protocol, TypeVar

import attrs

from smruntime.middleware.context import Context
from smruntime.middleware.errors import StackError
from smruntime.middleware.types import (
    BuildInput,
    BuildOutput,
    DeserializeInput,
    DeserializeOutput,
    FinalizeInput,
    FinalizeOutput,
    InitializeInput,
    InitializeOutput,
    SerializeInput,
    SerializeOutput,
)

InT = TypeVar("InT")
OutT = TypeVar("OutT")

Next = Callable[[Context[Any], InT], OutT]
"""The rest of the chain: ``next(ctx, in_)`` returns the step's output."""

AsyncNext = Callable[[Context[Any], InT], Awaitable[OutT]]
"""The rest of an asyncio chain: ``await next(ctx, in_)`` returns the step's output."""


class Position(enum.IntEnum):
    """Where ``add``/``insert`` place a middleware (After is the zero value, as in Go)."""

    AFTER = 0
    BEFORE = 1


class Middleware(Protocol[InT, OutT]):
    """Anything with an ``id`` and ``handle(ctx, in_, next)``."""

    @property
    def id(self) -> str: ...

    def handle(self, ctx: Context[Any], in_: InT, next: Next[InT, OutT]) -> OutT: ...


class AsyncMiddleware(Protocol[InT, OutT]):
    """Anything with an ``id`` and ``async ahandle(ctx, in_, next)``: runs on an asyncio chain
    (with a ``handle`` as well, it runs on both)."""

    @property
    def id(self) -> str: ...

    async def ahandle(self, ctx: Context[Any], in_: InT, next: AsyncNext[InT, OutT]) -> OutT: ...


AnyMiddleware = Middleware[InT, OutT] | AsyncMiddleware[InT, OutT]
"""What a step holds: a sync middleware, an async one, or one with both shells."""


@attrs.define(slots=True, eq=False, repr=False)
class Step(Generic[InT, OutT]):
    """An ordered list of middleware with unique, non-empty IDs.

    Mutations follow strict rules: an empty ID, a duplicate ID or an unknown
    ``relative_to``/``id`` raises :class:`~smruntime.middleware.StackError` (or the
    ``error_type`` its stack gave it) naming the ID.
    """

    name: ClassVar[str] = ""
    _items: list[AnyMiddleware[InT, OutT]] = attrs.field(factory=list, init=False)
    error_type: type[StackError] = attrs.field(default=StackError, kw_only=True)

    def add(self, middleware: AnyMiddleware[InT, OutT], position: Position = Position.AFTER) -> None:
        """Append (AFTER, the default) or prepend (BEFORE) ``middleware``."""
        mw_id = _require_id(middleware, "add", self.error_type)
        position = _position(position, self.error_type)
        self._require_absent(mw_id)
        if position is Position.BEFORE:
            self._items.insert(0, middleware)
        else:
            self._items.append(middleware)

    def insert(
        self,
        middleware: AnyMiddleware[InT, OutT],
        relative_to: str,
        position: Position = Position.AFTER,
    ) -> None:
        """Place ``middleware`` right before or after the one with ID ``relative_to``."""
        mw_id = _require_id(middleware, "insert", self.error_type)
        position = _position(position, self.error_type)
        if not relative_to:
            raise self.error_type("relative to ID must not be empty")
        self._require_absent(mw_id)
        index = self._index(relative_to)
        if position is Position.AFTER:
            index += 1
        self._items.insert(index, middleware)

    def swap(self, id: str, middleware: AnyMiddleware[InT, OutT]) -> AnyMiddleware[InT, OutT]:
        """Replace the middleware ``id`` in place; returns the one removed."""
        if not id:
            raise self.error_type("swap from ID must not be empty")
        new_id = _require_id(middleware, "swap to", self.error_type)
        index = self._index(id)
        if new_id != id:
            self._require_absent(new_id)
        old = self._items[index]
        self._items[index] = middleware
        return old

    def remove(self, id: str) -> AnyMiddleware[InT, OutT]:
        """Remove the middleware ``id``; returns it."""
        if not id:
            raise self.error_type("remove ID must not be empty")
        return self._items.pop(self._index(id))

    def get(self, id: str) -> AnyMiddleware[InT, OutT] | None:
        for middleware in self._items:
            if middleware.id == id:
                return middleware
        return None

    def list(self) -> list[str]:
        return [middleware.id for middleware in self._items]

    def clear(self) -> None:
        self._items.clear()

    def __iter__(self) -> Iterator[AnyMiddleware[InT, OutT]]:
        return iter(tuple(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, id: object) -> bool:
        return any(middleware.id == id for middleware in self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.list()!r})"

    def _index(self, id: str) -> int:
        for index, middleware in enumerate(self._items):
            if middleware.id == id:
                return index
        held = ", ".join(self.list()) or "no middleware"
        raise self.error_type(f"not found, {id}: the {self.name} holds {held}")

    def _require_absent(self, id: str) -> None:
        if id in self:
            raise self.error_type(f"already exists, {id}: the {self.name} holds it (swap it, or remove it first)")


def _require_id(middleware: Any, verb: str, error: type[StackError]) -> str:
    mw_id = getattr(middleware, "id", None)
    if not isinstance(mw_id, str):
        raise error(f"{verb}: middleware {middleware!r} has no string id")
    if not mw_id:
        raise error(f"{verb} ID must not be empty")
    if not callable(getattr(middleware, "handle", None)) and not callable(getattr(middleware, "ahandle", None)):
        raise error(f"{verb}: middleware {mw_id} has no handle(ctx, in_, next) or async ahandle(ctx, in_, next) method")
    return mw_id


def _position(position: Any, error: type[StackError]) -> Position:
    try:
        return Position(position)
    except ValueError:
        raise error(f"invalid position, {position!r}") from None


@attrs.define(slots=True, eq=False, repr=False)
class InitializeStep(Step[InitializeInput[Any], InitializeOutput[Any]]):
    """Sets defaults and validates the input parameters."""

    name = "Initialize stack step"


@attrs.define(slots=True, eq=False, repr=False)
class SerializeStep(Step[SerializeInput[Any, Any], SerializeOutput[Any]]):
    """Turns the input parameters into a request."""

    name = "Serialize stack step"


@attrs.define(slots=True, eq=False, repr=False)
class BuildStep(Step[BuildInput[Any], BuildOutput[Any]]):
    """Adds what every attempt shares: lengths, hashes, identifying headers."""

    name = "Build stack step"


@attrs.define(slots=True, eq=False, repr=False)
class FinalizeStep(Step[FinalizeInput[Any], FinalizeOutput[Any]]):
    """Per-attempt work: retries and signing."""

    name = "Finalize stack step"


@attrs.define(slots=True, eq=False, repr=False)
class DeserializeStep(Step[DeserializeInput[Any], DeserializeOutput[Any, Any]]):
    """Turns the raw response into a result or an error."""

    name = "Deserialize stack step"
