"""The operation methods both clients share.

Each operation's keyword parameters are declared once, in a function here that turns them
into the operation's input. :func:`sync_method` makes ``Client``'s method from it and
:func:`async_method` ``AsyncClient``'s coroutine method: the same signature, the same
docstring, checked by mypy on both clients.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Concatenate, ParamSpec, Sequence, TypeVar

from smruntime.types import (
    BodyInput,
    InvokeEndpointAsyncInput,
    InvokeEndpointInput,
    InvokeEndpointWithResponseStreamInput,
)

if TYPE_CHECKING:
    from smruntime.options import OptionFunc

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

Call = tuple[Any, "Sequence[OptionFunc]"]
"""What a method's parameters amount to: the operation's input and the call's option functions."""


def sync_method(
    operation: str, params: Callable[P, Call], returns: Callable[[], type[R]]
) -> Callable[Concatenate[Any, P], R]:
    """``Client``'s method for ``operation``; ``returns`` names the result type for type
    checkers (it is never called, so that type's module loads only when used)."""

    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        input, options = params(*args, **kwargs)
        chain, ctx = self._prepare(operation, options)
        result: R = chain(ctx, input)
        return result

    return _like(method, params)


def async_method(
    operation: str, params: Callable[P, Call], returns: Callable[[], type[R]]
) -> Callable[Concatenate[Any, P], Awaitable[R]]:
    """``AsyncClient``'s coroutine method for ``operation`` (as :func:`sync_method`)."""

    async def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        input, options = params(*args, **kwargs)
        chain, ctx = self._prepare(operation, options)
        result: R = await chain(ctx, input)
        return result

    return _like(method, params)


def _like(method: F, params: Callable[..., Any]) -> F:
    """``method`` with the name, docstring and signature of ``params`` (for ``help()``)."""
    import inspect

    functools.update_wrapper(method, params)
    del method.__wrapped__  # type: ignore[attr-defined]
    signature = inspect.signature(params)
    self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self, *signature.parameters.values()], return_annotation=inspect.Signature.empty
    )
    return method


def invoke_endpoint(
    input: InvokeEndpointInput | None = None,
    *,
    endpoint_name: str | None = None,
    body: BodyInput | None = None,
    content_type: str | None = None,
    accept: str | None = None,
    custom_attributes: str | None = None,
    target_model: str | None = None,
    target_variant: str | None = None,
    target_container_hostname: str | None = None,
    inference_id: str | None = None,
    enable_explanations: str | None = None,
    inference_component_name: str | None = None,
    session_id: str | None = None,
    prefix_aware_id: str | None = None,
    options: Sequence[OptionFunc] = (),
) -> Call:
    """Invoke a real-time endpoint and return the model's answer."""
    if input is None:
        input = InvokeEndpointInput(
            endpoint_name=endpoint_name,  # type: ignore[arg-type]  # validated in the stack
            body=body,  # type: ignore[arg-type]
            content_type=content_type,
            accept=accept,
            custom_attributes=custom_attributes,
            target_model=target_model,
            target_variant=target_variant,
            target_container_hostname=target_container_hostname,
            inference_id=inference_id,
            enable_explanations=enable_explanations,
            inference_component_name=inference_component_name,
            session_id=session_id,
            prefix_aware_id=prefix_aware_id,
        )
    return input, options


def invoke_endpoint_with_response_stream(
    input: InvokeEndpointWithResponseStreamInput | None = None,
    *,
    endpoint_name: str | None = None,
    body: BodyInput | None = None,
    content_type: str | None = None,
    accept: str | None = None,
    custom_attributes: str | None = None,
    target_variant: str | None = None,
    target_container_hostname: str | None = None,
    inference_id: str | None = None,
    inference_component_name: str | None = None,
    session_id: str | None = None,
    prefix_aware_id: str | None = None,
    options: Sequence[OptionFunc] = (),
) -> Call:
    """Invoke an endpoint and stream its answer: iterate the result for ``PayloadPart`` events.

    Returns once the first event is in; use the stream as a context manager.
    """
    if input is None:
        input = InvokeEndpointWithResponseStreamInput(
            endpoint_name=endpoint_name,  # type: ignore[arg-type]  # validated in the stack
            body=body,  # type: ignore[arg-type]
            content_type=content_type,
            accept=accept,
            custom_attributes=custom_attributes,
            target_variant=target_variant,
            target_container_hostname=target_container_hostname,
            inference_id=inference_id,
            inference_component_name=inference_component_name,
            session_id=session_id,
            prefix_aware_id=prefix_aware_id,
        )
    return input, options


def invoke_endpoint_async(
    input: InvokeEndpointAsyncInput | None = None,
    *,
    endpoint_name: str | None = None,
    input_location: str | None = None,
    body: BodyInput | None = None,
    content_type: str | None = None,
    accept: str | None = None,
    custom_attributes: str | None = None,
    inference_id: str | None = None,
    request_ttl_seconds: int | None = None,
    invocation_timeout_seconds: int | None = None,
    s3_output_path_extension: str | None = None,
    filename: str | None = None,
    options: Sequence[OptionFunc] = (),
) -> Call:
    """Queue an asynchronous inference whose input is at ``input_location`` (or, up to
    128,000 bytes, inline as ``body``)."""
    if input is None:
        input = InvokeEndpointAsyncInput(
            endpoint_name=endpoint_name,  # type: ignore[arg-type]  # validated in the stack
            input_location=input_location,
            body=body,
            content_type=content_type,
            accept=accept,
            custom_attributes=custom_attributes,
            inference_id=inference_id,
            request_ttl_seconds=request_ttl_seconds,
            invocation_timeout_seconds=invocation_timeout_seconds,
            s3_output_path_extension=s3_output_path_extension,
            filename=filename,
        )
    return input, options
