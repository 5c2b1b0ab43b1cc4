"""Built-in demo models: ``echo``, ``sum``, ``tokens``, ``inspect``, and ``turns`` (bidirectional)."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator

import attrs

from smruntime.local.bidi_models import TurnTaking, echo_parts
from smruntime.local.models import Model, ModelFailure, ModelRequest, ModelResponse
from smruntime.middleware.reprs import fields_repr

__all__ = ["BUILTIN_MODELS", "TokenStreamer", "echo", "inspect", "sum_model"]

JSON = "application/json"


def echo(request: ModelRequest) -> ModelResponse:
    """Answers with the request body, its content type and its custom attributes."""
    return ModelResponse(
        body=request.body,
        content_type=request.content_type or "application/octet-stream",
        custom_attributes=request.custom_attributes,
    )


def sum_model(request: ModelRequest) -> ModelResponse:
    """``{"numbers": [...]}`` -> ``{"sum", "mean", "count", "min", "max"}``; bad input is a 400.

    Numbers must be finite doubles (an integer too large for one is refused), and so must the
    sum: the answer is always strict JSON.
    """
    try:
        document = json.loads(request.body)
    except RecursionError:
        raise _bad_input("body is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad_input(f"body is not valid JSON: {exc}") from None
    numbers = document.get("numbers") if isinstance(document, dict) else None
    if not isinstance(numbers, list) or not all(_is_finite_number(n) for n in numbers):
        raise _bad_input('expected {"numbers": [finite numbers...]}')
    total = sum(numbers)
    if not _is_finite_number(total):
        raise _bad_input("the sum of the numbers overflows a double")
    result = {
        "sum": total,
        "mean": total / len(numbers) if numbers else None,
        "count": len(numbers),
        "min": min(numbers) if numbers else None,
        "max": max(numbers) if numbers else None,
    }
    return ModelResponse(body=json.dumps(result, allow_nan=False).encode(), content_type=JSON)


def _is_finite_number(value: object) -> bool:
    # bool is an int subclass, but true/false are not numbers to a caller.
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond a double's range
        return False


def _bad_input(message: str) -> ModelFailure:
    return ModelFailure(400, json.dumps({"error": message}))


_WORD = re.compile(r"\s*\S+")


@attrs.frozen
class TokenStreamer:
    """Yields its input text one word at a time (each with its leading whitespace).

    Joining the chunks gives the input back, so InvokeEndpoint answers with the whole text.
    ``delay`` seconds pass before each word after the first, like a model generating tokens.
    """

    __repr__ = fields_repr

    delay: float = 0.0
    sleep: Callable[[float], None] = attrs.field(default=time.sleep, repr=False)

    def __call__(self, request: ModelRequest) -> ModelResponse:
        text = request.body.decode("utf-8", errors="replace")
        return ModelResponse(body=self._words(text), content_type="text/plain; charset=utf-8")

    def _words(self, text: str) -> Iterator[bytes]:
        words = _WORD.findall(text)
        tail = text[sum(map(len, words)):]
        if tail:  # trailing whitespace belongs to the last chunk
            words = [*words[:-1], words[-1] + tail] if words else [tail]
        for index, word in enumerate(words):
            if index and self.delay:
                self.sleep(self.delay)
            yield word.encode()


# On a bidirectional stream echo answers each part as it arrives, not turn by turn.
echo.converse = echo_parts  # type: ignore[attr-defined]


def inspect(request: ModelRequest) -> ModelResponse:
    """Reports, as JSON, everything the model received (the body as text)."""
    received = attrs.asdict(request)
    received["body"] = request.body.decode("utf-8", errors="replace")
    received["body_length"] = len(request.body)
    return ModelResponse(body=json.dumps(received).encode(), content_type=JSON,
                         custom_attributes=request.custom_attributes)


def _turns() -> Model:
    """Takes turns on a bidirectional stream: answers each turn word by word (``tokens`` elsewhere)."""
    return TurnTaking(TokenStreamer())


def is_instant(model: object) -> bool:
    """Whether ``model`` is a built-in that answers at once, without blocking (so it may run on
    the event loop rather than in a thread). By identity: a user's model need not be hashable."""
    return model is echo or model is sum_model or model is inspect


BUILTIN_MODELS: dict[str, Callable[[], Model]] = {
    "echo": lambda: echo,
    "sum": lambda: sum_model,
    "tokens": TokenStreamer,
    "inspect": lambda: inspect,
    "turns": _turns,
}
"""Built-in model names and how to make each."""
