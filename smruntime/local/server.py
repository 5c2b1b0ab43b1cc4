"""``LocalEndpoint``: the local endpoint on a free loopback port, in a background thread.

::

    with LocalEndpoint() as endpoint:                       # echo, sum, tokens
        client = boto3.client("sagemaker-runtime", endpoint_url=endpoint.url, region_name="us-east-1",
                              aws_access_key_id="AKIDEXAMPLE",
                              aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        client.invoke_endpoint(EndpointName="sum", Body=b'{"numbers": [1, 2]}')
        endpoint.faults("sum").fail_next(2, status=503)
        endpoint.counters("sum").model_runs

Also usable without ``with`` (a notebook): ``endpoint = LocalEndpoint().start()`` ...
``endpoint.stop()``. ``serve()`` runs the same app in the foreground (``smruntime serve``).

InvokeEndpointWithBidirectionalStream is served over HTTP/2 on a second port, as the service
serves it on 8443 (``http2_port``; ``http2_url`` for clients, see ``bidi``): cleartext HTTP/2
with prior knowledge, or TLS with ALPN ``h2`` given ``http2_tls``. Both servers start and
stop together.

Both bound connections and request time (``limits``, see ``smruntime.local.limits``), answer
only the Host names they serve (``allowed_hosts`` adds names, see ``smruntime.local.hosts``),
and refuse to start on an address other machines can reach while the AWS documentation's
public example key pair is accepted, unless ``allow_example_credentials`` says so.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterable
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from smruntime.local.app import busy_app, create_app
from smruntime.local.bidi import create_http2_app
from smruntime.local.config import LocalConfig, as_config
from smruntime.local.counters import Counters
from smruntime.local.credentials import EXAMPLE_CREDENTIALS, AcceptedKey, CredentialsInput, resolve_credentials
from smruntime.local.faults import Faults
from smruntime.local.h2_server import Connections, HTTP2Listener, TLSFiles
from smruntime.local.hosts import HostPolicy, is_loopback
from smruntime.local.limits import ServerLimits, limited_protocol
from smruntime.local.state import LocalState

__all__ = ["HTTP2_ENDPOINT_ENV", "LocalEndpoint", "refuse_exposed_example_credentials", "serve"]

ENDPOINT_ENV = "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"
HTTP2_ENDPOINT_ENV = "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2"
"""The variable that points clients' HTTP/2 (bidirectional stream) service at an endpoint URL."""

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0


_EXAMPLE_KEY = AcceptedKey(*EXAMPLE_CREDENTIALS)


def refuse_exposed_example_credentials(host: str, keys: Iterable[AcceptedKey], *, allow: bool) -> None:
    """ValueError (one line) if ``host`` is reachable from other machines and the public example pair is accepted."""
    if allow or is_loopback(host) or _EXAMPLE_KEY not in tuple(keys):
        return
    raise ValueError(
        f"refusing to serve on {host}: it would accept the AWS documentation's public example key pair "
        f"({EXAMPLE_CREDENTIALS[0]}), so anyone who can reach the port could call it; set AWS credentials, "
        "or pass --allow-example-credentials (allow_example_credentials=True) if that is what you want"
    )


def _uvicorn_config(app: ASGIApp, state: LocalState, *, host: str, port: int, quiet: bool,
                    limits: ServerLimits, access_log: bool = True) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=limited_protocol(limits, busy_app(state)),
        loop="asyncio",
        ws="none",
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        date_header=False,  # the app writes Date from its own (possibly offset) clock
        access_log=access_log and not quiet,
        # None: leave the process's logging configuration alone (tests, notebooks).
        log_config=None if quiet else uvicorn.config.LOGGING_CONFIG,
        log_level=None if quiet else "info",
        timeout_graceful_shutdown=5,
    )


def _http2_listener(state: LocalState, sock: socket.socket, *, hosts: HostPolicy, limits: ServerLimits,
                    tls: TLSFiles | None, quiet: bool) -> HTTP2Listener:
    connections = Connections(limits.max_connections)
    app = create_http2_app(state, connections, hosts=hosts, idle_timeout=limits.stream_idle_timeout)
    return HTTP2Listener(app, sock, connections, limits=limits, tls=tls, quiet=quiet)


def _shown_url(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def _bind(host: str, port: int, option: str = "port") -> socket.socket:
    # Binding here, not in uvicorn, gives the port (also for port 0) before the thread starts.
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"{option} must be a port number from 0 to 65535 (0: any free port), got {port!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then (else +40 ms per call).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        shown = f"[{host}]" if ":" in host else host
        raise OSError(error.errno, f"cannot listen on {shown}:{port}: {error.strerror or error}") from error
    except BaseException:
        sock.close()
        raise
    return sock


class LocalEndpoint:
    """A SageMaker-compatible endpoint on ``host:port`` (port 0: a free one), run by uvicorn in a thread."""

    def __init__(
        self,
        config: LocalConfig | str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: CredentialsInput | None = None,
        limits: ServerLimits | None = None,
        allowed_hosts: Iterable[str] = (),
        allow_example_credentials: bool = False,
        http2_port: int | None = 0,
        http2_tls: TLSFiles | None = None,
    ) -> None:
        self.config = as_config(config)
        self.host = host
        self._requested_port = port
        self.limits = limits if limits is not None else ServerLimits()
        keys = resolve_credentials(credentials)
        refuse_exposed_example_credentials(host, keys, allow=allow_example_credentials)
        self.state = LocalState(self.config, keys)
        self._hosts = HostPolicy.serving(host, allowed_hosts)
        self.app = create_app(state=self.state, hosts=self._hosts)
        self._requested_http2_port = http2_port
        self._http2_tls = http2_tls
        self._http2: HTTP2Listener | None = None
        self._http2_port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None

    # --- lifecycle ---

    def start(self) -> LocalEndpoint:
        """Start serving and wait until connections are accepted; returns self."""
        if self._thread is not None:
            raise RuntimeError("LocalEndpoint is already started")
        server = uvicorn.Server(_uvicorn_config(self.app, self.state, host=self.host, port=0, quiet=True,
                                                limits=self.limits))
        sock = _bind(self.host, self._requested_port)
        self._port = sock.getsockname()[1]
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                  name=f"smruntime-local-endpoint-{self._port}", daemon=True)
        self._socket, self._server, self._thread = sock, server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the local endpoint did not start on {self.host}:{self._port}")
            time.sleep(0.005)
        if self._requested_http2_port is not None:
            try:
                self._start_http2(self._requested_http2_port)
            except BaseException:
                self.stop()
                raise
        return self

    def _start_http2(self, port: int) -> None:
        sock = _bind(self.host, port, "http2_port")
        self._http2_port = sock.getsockname()[1]
        self._http2 = _http2_listener(self.state, sock, hosts=self._hosts, limits=self.limits, tls=self._http2_tls,
                                      quiet=True)
        self._http2.start(_START_TIMEOUT)

    def stop(self) -> None:
        """Stop serving, close the socket and release the models' resources; idempotent.

        Requests in flight get 5 s to finish. A Python model still running in its worker
        thread (one that ignores the container timeout) is waited for up to 20 s; past that
        the server thread (a daemon) is left to end on its own.
        """
        server, thread, sock, http2 = self._server, self._thread, self._socket, self._http2
        self._server = self._thread = self._socket = self._http2 = None
        if http2 is not None:
            http2.stop(_STOP_TIMEOUT)
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive() and server is not None:
                server.force_exit = True  # in-flight requests are cut
                thread.join(_STOP_TIMEOUT)
        if sock is not None:
            sock.close()  # uvicorn closes it too; closing twice is harmless
        self.state.close()

    def __enter__(self) -> LocalEndpoint:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # --- where it listens ---

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def port(self) -> int:
        """The port it listens on (known once started)."""
        if self._port is None:
            raise RuntimeError("LocalEndpoint is not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the ``endpoint_url`` for clients."""
        return _shown_url("http", self.host, self.port)

    @property
    def http2_port(self) -> int:
        """The port of the HTTP/2 listener (known once started; none with ``http2_port=None``)."""
        if self._http2_port is None:
            raise RuntimeError("LocalEndpoint has no HTTP/2 listener running")
        return self._http2_port

    @property
    def http2_connections(self) -> int:
        """How many connections the HTTP/2 listener holds now (for tests of its limits)."""
        return len(self._http2.connections) if self._http2 is not None else 0

    @property
    def http2_url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https`` with TLS): the endpoint URL of the HTTP/2 service,
        where InvokeEndpointWithBidirectionalStream is served."""
        return _shown_url("https" if self._http2_tls is not None else "http", self.host, self.http2_port)

    @property
    def region(self) -> str:
        """The region requests must be signed for."""
        return self.config.region

    @property
    def access_key_ids(self) -> tuple[str, ...]:
        """The access key ids it accepts (the secrets are never exposed)."""
        return self.state.verifier.access_key_ids

    # --- testing hooks ---

    def faults(self, endpoint: str) -> Faults:
        """The fault injector of one endpoint (KeyError if not configured)."""
        return self.state.endpoint(endpoint).faults

    def counters(self, endpoint: str) -> Counters:
        """The server-side counters of one endpoint (KeyError if not configured)."""
        return self.state.endpoint(endpoint).counters

    def set_clock_offset(self, seconds: float) -> None:
        """Run the server's clock ``seconds`` ahead (negative: behind), e.g. to test clock-skew handling."""
        self.state.clock_offset = seconds

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        return f"LocalEndpoint({where}, endpoints={sorted(self.state.endpoints)}, region={self.region!r})"


def serve(config: LocalConfig | str | os.PathLike[str] | None = None, *, host: str = "127.0.0.1", port: int = 8080,
          credentials: CredentialsInput | None = None, limits: ServerLimits | None = None,
          allowed_hosts: Iterable[str] = (), allow_example_credentials: bool = False,
          http2_port: int | None = 8443, http2_tls: TLSFiles | None = None, access_log: bool = True) -> None:
    """Serve in the foreground until interrupted (``smruntime serve``); the keywords are LocalEndpoint's.

    The HTTP/2 listener (``http2_port``, None: none) runs in a thread beside uvicorn and stops with it.
    ``access_log``: a line on stdout for each request and each stream (off for load tests, where
    writing them costs the server about a tenth of its CPU); errors are logged either way.
    """
    local = as_config(config)
    limits = limits if limits is not None else ServerLimits()
    keys = resolve_credentials(credentials)
    refuse_exposed_example_credentials(host, keys, allow=allow_example_credentials)
    state = LocalState(local, keys)
    hosts = HostPolicy.serving(host, allowed_hosts)
    sock = _bind(host, port)
    http2: HTTP2Listener | None = None
    try:
        if http2_port is not None:
            http2_sock = _bind(host, http2_port, "http2_port")
            http2_url = _shown_url("https" if http2_tls else "http", host, http2_sock.getsockname()[1])
            http2 = _http2_listener(state, http2_sock, hosts=hosts, limits=limits, tls=http2_tls, quiet=not access_log)
            http2.start(_START_TIMEOUT)
        url = _shown_url("http", host, sock.getsockname()[1])
        print(f"Local SageMaker Runtime endpoint on {url} "
              f"(region {local.region}; endpoints: {', '.join(sorted(state.endpoints))}; "
              f"access keys: {', '.join(state.verifier.access_key_ids)})", file=sys.stderr, flush=True)
        if keys == (AcceptedKey(*EXAMPLE_CREDENTIALS),):
            # No other credentials here, so likely none in the caller's shell: say how to sign for it.
            key_id, secret = EXAMPLE_CREDENTIALS
            print("It accepts the AWS documentation's example pair (no other AWS credentials found). Clients "
                  "(smruntime, boto3, the AWS CLI) sign with it after:\n"
                  f"  export AWS_ACCESS_KEY_ID={key_id} AWS_SECRET_ACCESS_KEY={secret}",
                  file=sys.stderr, flush=True)
        # boto3, the AWS CLI and smruntime all read the service-specific endpoint variables. The
        # region goes with them whatever the keys: a client signing for its profile's region is
        # refused. boto3, aiobotocore and the AWS CLI v1 read AWS_DEFAULT_REGION only.
        exports = (f"{ENDPOINT_ENV}={url}" + (f" {HTTP2_ENDPOINT_ENV}={http2_url}" if http2 is not None else "")
                   + f" AWS_REGION={local.region} AWS_DEFAULT_REGION={local.region}")
        print(f"Point clients at it with:\n  export {exports}", file=sys.stderr, flush=True)
        if http2 is not None:
            print(f"InvokeEndpointWithBidirectionalStream (HTTP/2) on {http2_url}", file=sys.stderr, flush=True)
        app = create_app(state=state, hosts=hosts)
        server = uvicorn.Server(_uvicorn_config(app, state, host=host, port=port, quiet=False, limits=limits,
                                                access_log=access_log))
        server.run(sockets=[sock])
    finally:
        if http2 is not None:
            http2.stop(_STOP_TIMEOUT)
        sock.close()
        state.close()
