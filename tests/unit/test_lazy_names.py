"""Names whose classes load on first use are importable from every place they were before.

The other operations' types, adaptive retries and the asyncio function adapter live in modules
of their own that a plain InvokeEndpoint cold start never imports
(``tests/integration/test_cold_start_imports.py``); the packages that exported them still do.
"""

from __future__ import annotations

import importlib

import pytest

# (where a program imports the name from, the name, the module that defines it)
LAZY_NAMES = [
    ("smruntime", "InvokeEndpointWithResponseStreamInput", "smruntime.types.response_stream"),
    ("smruntime", "PayloadPart", "smruntime.types.response_stream"),
    ("smruntime", "RequestPayloadPart", "smruntime.types.bidirectional"),
    ("smruntime", "ResponsePayloadPart", "smruntime.types.bidirectional"),
    ("smruntime", "InvokeEndpointAsyncInput", "smruntime.types.async_inference"),
    ("smruntime", "InvokeEndpointAsyncOutput", "smruntime.types.async_inference"),
    ("smruntime.types", "InvokeEndpointWithResponseStreamInput", "smruntime.types.response_stream"),
    ("smruntime.types", "PayloadPart", "smruntime.types.response_stream"),
    ("smruntime.types", "RequestPayloadPart", "smruntime.types.bidirectional"),
    ("smruntime.types", "ResponsePayloadPart", "smruntime.types.bidirectional"),
    ("smruntime.types", "InvokeEndpointAsyncInput", "smruntime.types.async_inference"),
    ("smruntime.types", "InvokeEndpointAsyncOutput", "smruntime.types.async_inference"),
    ("smruntime.retry", "AdaptiveRetryer", "smruntime.retry.adaptive"),
    ("smruntime.retry", "ClientRateLimiter", "smruntime.retry.limiter"),
    ("smruntime.retry.policy", "AdaptiveRetryer", "smruntime.retry.adaptive"),
    ("smruntime.middleware", "AsyncMiddlewareFunc", "smruntime.middleware.async_adapters"),
]


@pytest.mark.parametrize(("place", "name", "home"), LAZY_NAMES)
def test_a_lazily_loaded_name_is_the_defining_modules_own(place: str, name: str, home: str) -> None:
    module = importlib.import_module(place)
    assert getattr(module, name) is getattr(importlib.import_module(home), name)
    assert name in module.__all__  # so `from place import *` and the type checker see it too


@pytest.mark.parametrize("place", sorted({place for place, _, _ in LAZY_NAMES}))
def test_an_unknown_name_is_still_an_attribute_error_naming_the_module(place: str) -> None:
    with pytest.raises(AttributeError, match=f"module '{place}' has no attribute 'NoSuchName'"):
        importlib.import_module(place).NoSuchName  # noqa: B018  # the lookup is the test


def test_the_factories_build_the_lazily_loaded_classes() -> None:
    from smruntime.middleware import AsyncMiddlewareFunc, MiddlewareFunc, build_middleware
    from smruntime.retry import AdaptiveRetryer, StandardRetryer, new_retryer

    async def passes_on(ctx: object, in_: object, next: object) -> object:
        return in_

    assert type(new_retryer("adaptive")) is AdaptiveRetryer
    assert type(new_retryer("standard")) is StandardRetryer
    assert type(build_middleware("async", passes_on)) is AsyncMiddlewareFunc
    assert type(build_middleware("sync", lambda ctx, in_, next: next(ctx, in_))) is MiddlewareFunc
