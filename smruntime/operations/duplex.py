"""What a duplex operation (events both ways on one HTTP/2 stream) contributes to a client.

Unlike the request/response operations, it builds a stack of its own (with the two event
steps) and composes it into a :class:`DuplexChain`: an asyncio chain that opens the stream,
and the event steps each opened stream composes around its own ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable

if TYPE_CHECKING:
    from smruntime.middleware.events import EventStreamStack, ReceiveEventStep, SendEventStep
    from smruntime.retry import ClockOffset


class DuplexChain:
    """A duplex operation's composed stack: ``open(ctx, input)`` and a snapshot of the event steps."""

    __slots__ = ("open", "receive_event", "send_event")

    def __init__(
        self,
        open: Callable[[Any, Any], Awaitable[Any]],
        send_event: SendEventStep,
        receive_event: ReceiveEventStep,
    ) -> None:
        self.open = open
        self.send_event = send_event
        self.receive_event = receive_event


class DuplexOperation:
    """An operation whose stack opens a stream of events in both directions."""

    __slots__ = ("compose", "input_type", "name", "new_stack", "validate")

    streams_response = False  # the stream's response is read by the stream object, not the stack

    def __init__(
        self,
        name: str,
        input_type: type[Any],
        validate: Callable[[Any, str], None],
        new_stack: Callable[[ClockOffset | None], EventStreamStack],
        compose: Callable[[EventStreamStack], DuplexChain],
    ) -> None:
        self.name = name
        self.input_type = input_type
        self.validate = validate
        self.new_stack = new_stack
        self.compose = compose

    def __repr__(self) -> str:
        return f"DuplexOperation({self.name!r})"
