"""Steps: ordered, uniquely named lists of middleware."""

from __future__ import annotations

import enum
from typing import Any, Callable, ClassVar, Generic, Iterator, Protocol, TypeVar

import attrs

from smruntime.errors import StackError
from smruntime.middleware.context import Context
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

Next = Callable[[Context, InT], OutT]
"""The rest of the chain: ``next(ctx, in_)`` returns the step's output."""


class Position(enum.IntEnum):
    """Where ``add``/``insert`` place a middleware (After is the zero value, as in Go)."""

    AFTER = 0
    BEFORE = 1


class Middleware(Protocol[InT, OutT]):
    """Anything with an ``id`` and ``handle(ctx, in_, next)``."""

    @property
    def id(self) -> str: ...

    def handle(self, ctx: Context, in_: InT, next: Next[InT, OutT]) -> OutT: ...


@attrs.define(slots=True, eq=False, repr=False)
class Step(Generic[InT, OutT]):
    """An ordered list of middleware with unique, non-empty IDs.

    Mutations follow strict rules: an empty ID, a duplicate ID or an unknown
    ``relative_to``/``id`` raises :class:`~smruntime.errors.StackError` naming the ID.
    """

    name: ClassVar[str] = ""
    _items: list[Middleware[InT, OutT]] = attrs.field(factory=list, init=False)

    def add(self, middleware: Middleware[InT, OutT], position: Position = Position.AFTER) -> None:
        """Append (AFTER, the default) or prepend (BEFORE) ``middleware``."""
        mw_id = _require_id(middleware, "add")
        position = _position(position)
        self._require_absent(mw_id)
        if position is Position.BEFORE:
            self._items.insert(0, middleware)
        else:
            self._items.append(middleware)

    def insert(
        self,
        middleware: Middleware[InT, OutT],
        relative_to: str,
        position: Position = Position.AFTER,
    ) -> None:
        """Place ``middleware`` right before or after the one with ID ``relative_to``."""
        mw_id = _require_id(middleware, "insert")
        position = _position(position)
        if not relative_to:
            raise StackError("relative to ID must not be empty")
        self._require_absent(mw_id)
        index = self._index(relative_to)
        if position is Position.AFTER:
            index += 1
        self._items.insert(index, middleware)

    def swap(self, id: str, middleware: Middleware[InT, OutT]) -> Middleware[InT, OutT]:
        """Replace the middleware ``id`` in place; returns the one removed."""
        if not id:
            raise StackError("swap from ID must not be empty")
        new_id = _require_id(middleware, "swap to")
        index = self._index(id)
        if new_id != id:
            self._require_absent(new_id)
        old = self._items[index]
        self._items[index] = middleware
        return old

    def remove(self, id: str) -> Middleware[InT, OutT]:
        """Remove the middleware ``id``; returns it."""
        if not id:
            raise StackError("remove ID must not be empty")
        return self._items.pop(self._index(id))

    def get(self, id: str) -> Middleware[InT, OutT] | None:
        for middleware in self._items:
            if middleware.id == id:
                return middleware
        return None

    def list(self) -> list[str]:
        return [middleware.id for middleware in self._items]

    def clear(self) -> None:
        self._items.clear()

    def __iter__(self) -> Iterator[Middleware[InT, OutT]]:
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
        raise StackError(f"not found, {id}")

    def _require_absent(self, id: str) -> None:
        if id in self:
            raise StackError(f"already exists, {id}")


def _require_id(middleware: Any, verb: str) -> str:
    mw_id = getattr(middleware, "id", None)
    if not isinstance(mw_id, str):
        raise StackError(f"{verb}: middleware {middleware!r} has no string id")
    if not mw_id:
        raise StackError(f"{verb} ID must not be empty")
    if not callable(getattr(middleware, "handle", None)):
        raise StackError(f"{verb}: middleware {mw_id} has no handle(ctx, in_, next) method")
    return mw_id


def _position(position: Any) -> Position:
    try:
        return Position(position)
    except ValueError:
        raise StackError(f"invalid position, {position!r}") from None


@attrs.define(slots=True, eq=False, repr=False)
class InitializeStep(Step[InitializeInput, InitializeOutput]):
    """Sets defaults and validates the input parameters."""

    name = "Initialize stack step"


@attrs.define(slots=True, eq=False, repr=False)
class SerializeStep(Step[SerializeInput, SerializeOutput]):
    """Turns the input parameters into a request."""

    name = "Serialize stack step"


@attrs.define(slots=True, eq=False, repr=False)
class BuildStep(Step[BuildInput, BuildOutput]):
    """Adds what every attempt shares: lengths, hashes, identifying headers."""

    name = "Build stack step"


@attrs.define(slots=True, eq=False, repr=False)
class FinalizeStep(Step[FinalizeInput, FinalizeOutput]):
    """Per-attempt work: retries and signing."""

    name = "Finalize stack step"


@attrs.define(slots=True, eq=False, repr=False)
class DeserializeStep(Step[DeserializeInput, DeserializeOutput]):
    """Turns the raw response into a result or an error."""

    name = "Deserialize stack step"
