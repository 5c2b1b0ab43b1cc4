"""What each step receives and returns."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.define(slots=True)
class InitializeInput:
    parameters: Any


@attrs.define(slots=True)
class InitializeOutput:
    result: Any


@attrs.define(slots=True)
class SerializeInput:
    parameters: Any
    request: Any


@attrs.define(slots=True)
class SerializeOutput:
    result: Any


@attrs.define(slots=True)
class BuildInput:
    request: Any


@attrs.define(slots=True)
class BuildOutput:
    result: Any


@attrs.define(slots=True)
class FinalizeInput:
    request: Any


@attrs.define(slots=True)
class FinalizeOutput:
    result: Any


@attrs.define(slots=True)
class DeserializeInput:
    request: Any


@attrs.define(slots=True)
class DeserializeOutput:
    raw_response: Any
    result: Any = None
