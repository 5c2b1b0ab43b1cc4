"""The client: holds Options, builds each call's stack, runs it."""

from __future__ import annotations

import threading
import warnings
from typing import TYPE_CHECKING, Any, AsyncIterable, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar, cast

import attrs

from smruntime import client_methods as methods
from smruntime import errors, keys, middleware
from smruntime.client_methods import sync_method
from smruntime.default_stack import new_stack
from smruntime.http import HTTPRequest, HTTPResponse
from smruntime.middleware import Stack, StackKey
from smruntime.operations import Operation, unknown_operation
from smruntime.operations import get as get_operation
from smruntime.operations.common import SERVICE_ID
from smruntime.options import OptionFunc, Options, resolve_defaults, validate_options
from smruntime.retry import ClockOffset
from smruntime.stack_types import Context
from smruntime.types import InvokeEndpointOutput

if TYPE_CHECKING:
    from smruntime.async_inference import Poll, S3Reader
    from smruntime.bidirectional import AsyncBidirectionalStream, BidirectionalStream, OpenedStream
    from smruntime.blocking_loop import BlockingLoop
    from smruntime.bulk.scheduler import BulkResult, BulkRun, Record
    from smruntime.operations.duplex import DuplexChain, DuplexOperation
    from smruntime.streaming import ResponseStream  # imported by the stream operation when used
    from smruntime.transport import HTTPClient
    from smruntime.types import InvokeEndpointAsyncOutput

Chain = Callable[[Context, Any], Any]
R = TypeVar("R")


class BaseClient:
    """What both clients share: resolved Options, the stacks built from them, per-call options.

    A subclass says how a chain is composed (sync or asyncio), which HTTP client it builds
    by default, and runs the chain in ``_invoke``.
    """

    def __init__(self, options: Options | None = None, **fields: Any) -> None:
        if options is not None and fields:
            raise TypeError("pass either options= or keyword fields of Options, not both")
        base = options if options is not None else Options(**fields)
        _warn_of_settings_a_given_component_ignores(base)
        resolved = resolve_defaults(base)
        self._check_http_client(resolved.http_client)
        if resolved.http_client is None:
            resolved.http_client = self._new_http_client(resolved)
        self._options = _with_defaults(resolved)
        self._owns_http_client = base.http_client is None
        self._owns_http2_client = False
        self._chains: dict[str, Chain] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._clock_offset = ClockOffset()  # what clock-skew rejections taught every operation

    @property
    def options(self) -> Options:
        """A copy of the client's resolved options."""
        return self._options.copy()

    def stack(self, operation: str, options: Sequence[OptionFunc] = ()) -> Stack:
        """The stack a call of ``operation`` would run, for inspection (``print`` it)."""
        call_options = self._call_options(options)
        try:
            spec = get_operation(_api_name(operation))
        except KeyError:
            raise unknown_operation(operation) from None  # named as the caller wrote it
        return self._build_stack(spec, call_options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._options!r})"

    # -- what a subclass provides ----------------------------------------------------

    def _new_http_client(self, options: Options) -> Any:
        """The HTTP client this client makes when the options name none."""
        return self._default_http_client()(
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            max_pool_connections=options.max_pool_connections,
            max_response_body_size=options.max_response_body_size,
            verify=options.verify,
        )

    def _default_http_client(self) -> type[Any]:
        raise NotImplementedError

    def _check_http_client(self, http_client: Any) -> None:
        """Refuse an HTTP client of the other kind (sync for async, or the reverse)."""

    def _compose(self, stack: Stack) -> Chain:
        raise NotImplementedError

    # -- running a call -------------------------------------------------------------

    def _prepare(self, operation_name: str, option_fns: Sequence[OptionFunc]) -> tuple[Chain, Context]:
        """The chain to run and the context to run it with, before any I/O."""
        if self._closed:
            raise errors.ClientClosedError("the client is closed", operation=operation_name)
        operation = get_operation(operation_name)
        if option_fns:
            options = self._call_options(option_fns)
            chain = self._chain(operation, options)
        else:  # most calls: the client's own options and the chain composed for them
            options = self._options
            chain = self._chains.get(operation.name) or self._chain(operation, options)
        ctx: Context = middleware.Context(operation.name, SERVICE_ID, options)  # the bare class: cheaper to call
        if operation.streams_response:
            ctx.set(keys.STREAM_RESPONSE, True)
        return chain, ctx

    def _call_options(self, option_fns: Iterable[OptionFunc]) -> Options:
        if not option_fns:
            return self._options  # nothing changes it: middleware only read options
        options = self._options.copy()
        for fn in option_fns:
            fn(options)
        validate_options(options)
        _refuse_ignored_changes(self._options, options)
        self._check_http_client(options.http_client)
        return _with_defaults(options)

    def _chain(self, operation: Operation[Any, Any] | DuplexOperation, options: Options) -> Chain:
        # The composed chain depends only on the operation and the api options, so the
        # client's own configuration is composed once; a call whose option functions
        # changed the api options gets a chain of its own.
        # A duplex operation composes its own asyncio chain, whichever the client.
        compose: Callable[[Any], Chain] = self._compose if isinstance(operation, Operation) else operation.compose  # type: ignore[assignment]
        if options.api_options != self._options.api_options:
            return compose(self._build_stack(operation, options))
        chain = self._chains.get(operation.name)
        if chain is None:
            with self._lock:
                chain = self._chains.get(operation.name)
                if chain is None:
                    chain = compose(self._build_stack(operation, options))
                    self._chains[operation.name] = chain
        return chain

    def _bidirectional_stream(self, operation_name: str, input: Any, option_fns: Sequence[OptionFunc]) -> AsyncBidirectionalStream:
        """A stream whose opening runs the operation's stack (on the running event loop)."""
        from smruntime.bidirectional import AsyncBidirectionalStream

        async def open(preset: Mapping[StackKey[Any], Any]) -> tuple[OpenedStream, DuplexChain, Context]:
            self._ensure_http2_client()  # here: on the loop the HTTP/2 client will run on
            chain, ctx = self._prepare(operation_name, option_fns)
            for key, value in preset.items():
                ctx.set(key, value)
            duplex = cast("DuplexChain", chain)  # what a duplex operation composes
            opened: OpenedStream = await duplex.open(ctx, input)
            return opened, duplex, ctx

        return AsyncBidirectionalStream(open, operation=operation_name)

    def _ensure_http2_client(self) -> None:
        """Make the HTTP/2 client on first use unless the options name one."""
        if self._options.http2_client is None:
            from smruntime.transport import default_http2_client

            self._options.http2_client = default_http2_client(self._options)
            self._owns_http2_client = True

    def _build_stack(self, operation: Operation[Any, Any] | DuplexOperation, options: Options) -> Stack:
        if isinstance(operation, Operation):
            stack = new_stack(operation, clock_offset=self._clock_offset)
        else:
            stack = operation.new_stack(self._clock_offset)
        for api_option in options.api_options:
            api_option(stack)
        return stack

    def _s3_client(self, endpoint_url: str | None) -> Any:
        import botocore.config
        import botocore.session

        from smruntime.auth import ANONYMOUS

        session = botocore.session.Session()
        kwargs: dict[str, Any] = {"region_name": self._options.region, "endpoint_url": endpoint_url}
        provider = self._options.credentials
        if provider is ANONYMOUS or provider is None:
            kwargs["config"] = botocore.config.Config(signature_version=botocore.UNSIGNED)
        else:
            credentials = provider.retrieve()
            kwargs.update(
                aws_access_key_id=credentials.access_key_id,
                aws_secret_access_key=credentials.secret_access_key,
                aws_session_token=credentials.session_token,
            )
        return session.create_client("s3", **kwargs)


class Client(BaseClient):
    """A SageMaker Runtime client. Safe to share between threads.

    Build it from keyword fields of :class:`Options` or from a whole ``options=``;
    ``close()`` (or leaving a ``with`` block) releases pooled connections.
    """

    invoke_endpoint = sync_method(methods.invoke_endpoint, lambda: InvokeEndpointOutput)
    invoke_endpoint_with_response_stream = sync_method(
        methods.invoke_endpoint_with_response_stream, lambda: ResponseStream
    )
    invoke_endpoint_async = sync_method(methods.invoke_endpoint_async, lambda: InvokeEndpointAsyncOutput)
    wait_for_async_inference = sync_method(methods.wait_for_async_inference, lambda: bytes)
    invoke_many = sync_method(methods.invoke_many, lambda: Iterator[BulkResult])
    invoke_endpoint_with_bidirectional_stream = sync_method(
        methods.invoke_endpoint_with_bidirectional_stream, lambda: BidirectionalStream
    )

    _loop: BlockingLoop | None = None

    def _open_stream(self, operation_name: str, input: Any, option_fns: Sequence[OptionFunc]) -> BidirectionalStream:
        # The asyncio stream, driven on an event loop of the client's own, on its own thread.
        from smruntime.bidirectional import BidirectionalStream
        from smruntime.blocking_loop import BlockingLoop

        with self._lock:
            if self._closed:
                raise errors.ClientClosedError("the client is closed", operation=operation_name)
            if self._loop is None:
                self._loop = BlockingLoop(f"smruntime-{id(self):x}", on_fork=self._forget_http2_client)
        return BidirectionalStream(self._bidirectional_stream(operation_name, input, option_fns), self._loop)

    def _forget_http2_client(self) -> None:
        """In a forked child: the HTTP/2 client this client made runs on the loop left behind,
        over the parent's sockets; the next stream makes a new one."""
        if self._owns_http2_client and self._options.http2_client is not None:
            from smruntime.blocking_loop import _INHERITED

            _INHERITED.append(self._options.http2_client)
            self._options.http2_client = None
            self._owns_http2_client = False

    def _wait(self, poll: Poll, reader: S3Reader) -> bytes:
        try:
            return poll.wait()
        finally:
            reader.close()  # an S3 client made here would otherwise leak its pooled sockets

    def _invoke_many(self, inputs: Iterable[Record] | AsyncIterable[Record], run: BulkRun) -> Iterator[BulkResult]:
        from smruntime.bulk.threaded import invoke_many

        return invoke_many(self, inputs, run)

    def _call(self, operation_name: str, input: Any, option_fns: Sequence[OptionFunc]) -> Any:
        chain, ctx = self._prepare(operation_name, option_fns)
        return chain(ctx, input)

    def close(self) -> None:
        """Release pooled connections (only of an HTTP client this client created)."""
        if self._closed:
            return
        self._closed = True
        client: Any = self._options.http_client  # an HTTPClient: _check_http_client saw to it
        if self._owns_http_client and client is not None:
            client.close()
        loop = self._loop
        if loop is not None:
            http2_client = self._options.http2_client
            if self._owns_http2_client and http2_client is not None and loop.running:
                loop.run(http2_client.aclose())
            loop.stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _default_http_client(self) -> type[Any]:
        from smruntime.transport import RequestsHTTPClient

        return RequestsHTTPClient

    def _check_http_client(self, http_client: Any) -> None:
        if http_client is not None and is_async_http_client(http_client):
            raise errors.InvalidParamsError(
                [errors.FieldProblem("http_client", "type", "is an asyncio HTTP client (async send): use it with AsyncClient, "
                                     "or give Client an HTTPClient whose send() returns the response")]
            )

    def _compose(self, stack: Stack) -> Chain:
        return stack.handler(_send)


def is_async_http_client(http_client: Any) -> bool:
    """Whether ``http_client.send`` is a coroutine function (an ``AsyncHTTPClient``)."""
    import inspect

    return inspect.iscoroutinefunction(getattr(http_client, "send", None))


def _send(ctx: Context, request: HTTPRequest) -> HTTPResponse:
    """The terminal handler: hand the request to the HTTP client."""
    client = cast("HTTPClient", ctx.options.http_client)  # checked when the client was made
    try:
        response = client.send(request, stream=ctx.get(keys.STREAM_RESPONSE, False))
    except errors.SageMakerRuntimeError:
        raise
    except Exception as error:  # a user's HTTP client: map its failure at this one boundary
        raise transport_failure(error) from error
    return received(ctx, response)


def transport_failure(error: Exception) -> errors.SageMakerRuntimeError:
    """What an HTTP client's own exception means, as the library's error."""
    from smruntime.transport import map_transport_error

    return map_transport_error(error)


def received(ctx: Context, response: R) -> R:
    """Record the response the terminal handler hands to the Deserialize step."""
    ctx.set(keys.RAW_RESPONSE, response)
    ctx.metadata.set(keys.HTTP_STATUS, response.status_code)  # type: ignore[attr-defined]
    return response


_BUILT_FROM = (
    ("http_client", ("connect_timeout", "read_timeout", "max_pool_connections", "max_response_body_size", "verify")),
    ("retryer", ("retry_mode",)),
)
"""Fields that configured a component the client built once, by that component."""


def _warn_of_settings_a_given_component_ignores(options: Options) -> None:
    """Fields set beside a component that was given ready-made configure nothing of it (an
    ``http_client`` keeps its own timeouts): say so rather than let them be silently ignored."""
    for component, names in _BUILT_FROM:
        given = getattr(options, component)
        if given is None:
            continue
        defaults = attrs.fields_dict(Options)
        changed = [
            name for name in names
            if getattr(options, name) != defaults[name].default and getattr(options, name) != _setting_of(given, name)
        ]
        if not changed:
            continue
        settings = ", ".join(f"{name}={getattr(options, name)!r}" for name in changed)
        verb, it, them, does = ("is", "it", "it", "configures") if len(changed) == 1 else ("are", "they", "them", "configure")
        message = f"{settings} {verb} not applied to the {component} you gave, which keeps its own settings"
        if component == "http_client":
            message += f": pass {them} to its constructor ({type(options.http_client).__name__}({changed[0]}=...))"
            if options.http2_client is None:
                message += f"; {it} still {does} the HTTP/2 client the client builds for bidirectional streams"
        warnings.warn(message, UserWarning, stacklevel=3)


_RETRYERS_BY_MODE = {"standard": "StandardRetryer", "adaptive": "AdaptiveRetryer", "none": "NoRetryer"}


def _setting_of(component: Any, name: str) -> Any:
    """What a given component uses for the option ``name``, where it says (else None)."""
    if name == "retry_mode":
        return next((mode for mode, cls in _RETRYERS_BY_MODE.items() if type(component).__name__ == cls), None)
    return getattr(component, name, None)


def _refuse_ignored_changes(client: Options, call: Options) -> None:
    """A per-call change to a field that only configured a client-built component would be
    silently ignored: refuse it, unless the call brings its own component too."""
    problems = [
        errors.FieldProblem(
            name,
            "per-call",
            f"configures the client's {component} and cannot change per call; "
            f"set options.{component} for the call as well",
        )
        for component, names in _BUILT_FROM
        if getattr(call, component) is getattr(client, component)
        for name in names
        if getattr(call, name) != getattr(client, name)
    ]
    if problems:
        raise errors.InvalidParamsError(problems)


def _with_defaults(options: Options) -> Options:
    """Fill the pluggable parts the user left empty but the HTTP client (in place; returns
    ``options``); each client builds its own kind of HTTP client."""
    from smruntime.auth import ANONYMOUS, SigV4Signer, credentials_provider
    from smruntime.retry import new_retryer

    if options.retryer is None:
        options.retryer = new_retryer(
            options.retry_mode or "standard",
            options.max_attempts or 3,
            retry_read_timeouts=options.retry_read_timeouts,
        )
    if options.signer is None:
        options.signer = SigV4Signer()
    if options.credentials is not ANONYMOUS and not _is_provider(options.credentials):
        options.credentials = credentials_provider(options.credentials, options.profile)
    return options


def _is_provider(value: Any) -> bool:
    return value is not None and callable(getattr(value, "retrieve", None))


def _api_name(operation: str) -> str:
    """``invoke-endpoint`` or ``InvokeEndpoint`` → ``InvokeEndpoint``."""
    if "-" in operation or operation.islower():
        return "".join(part.capitalize() for part in operation.split("-"))
    return operation
