"""The ``smruntime`` command: the operations (AWS CLI-shaped), ``serve``, ``demo``, ``stack``.

Errors print one line and exit non-zero; ``--debug`` shows the traceback and DEBUG logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence

from smruntime import errors, service_model
from smruntime.shapes import Shape

EXIT_ERROR = 1
EXIT_USAGE = 2
_DEFAULT_PORT = 8080
"""``serve``'s HTTP/1.1 port; beside it, HTTP/2 takes 8443, as the service does."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except (errors.SageMakerRuntimeError, OSError, ValueError, KeyError) as error:
        if args.debug:
            raise
        print(f"smruntime: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_ERROR


def _one_line(error: BaseException) -> str:
    text = str(error) if not isinstance(error, KeyError) else str(error.args[0] if error.args else error)
    return _in_command_line_terms(" ".join(text.split())) or type(error).__name__


def _in_command_line_terms(text: str) -> str:
    """The library's advice to a program (``Client(region=...)``), as options of this command."""
    from smruntime.async_inference import FILE_ROOT_ADVICE
    from smruntime.auth.credentials import NO_CREDENTIALS_ADVICE
    from smruntime.auth.middleware import NO_SIGNING_REGION
    from smruntime.endpoints import MISSING_REGION

    region_advice = "Invalid Configuration: Missing Region; pass --region, or set AWS_REGION or region in your profile"
    credentials_advice = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (against smruntime serve: the export line "
                          "it prints), or configure a profile in ~/.aws and pass --profile")
    text = (text.replace(MISSING_REGION, region_advice)
            .replace(NO_SIGNING_REGION, "no signing region: pass --region, or set AWS_REGION or region in your profile")
            .replace(NO_CREDENTIALS_ADVICE, credentials_advice)
            .replace(FILE_ROOT_ADVICE, "Pass --file-root FOLDER (a folder you trust) to read file:// results from it."))
    # serve's limits are options named after ServerLimits' fields; serve's and LocalConfig's own
    # checks of its port and region name the keyword, as the first word of the message.
    text = re.sub(r"^(port|http2_port|region) must be ", lambda found: f"--{found[1].replace('_', '-')} must be ", text)
    return re.sub(r"ServerLimits\.(\w+)", lambda found: "--" + found[1].replace("_", "-"), text)


_DEBUG_HELP = "show tracebacks and DEBUG logs (secrets redacted)"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default where it has one (not a bare ``None`` or ``False``, nor a flag's:
    ``--no-access-log (default: True)`` would read as the log being off by default)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        flag = action.nargs == 0  # store_true, store_false, store_const, count: nothing to show
        if flag or action.default in (None, False, [], argparse.SUPPRESS) or action.help is None:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from smruntime.version import __version__

    parser = argparse.ArgumentParser(prog="smruntime", description="SageMaker Runtime client and local endpoint.",
                                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"smruntime {__version__}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    # --debug is accepted after the command too; SUPPRESS keeps an absent one from undoing a given one.
    anywhere = argparse.ArgumentParser(add_help=False)
    anywhere.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    subparsers = parser.add_subparsers(metavar="COMMAND")

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return subparsers.add_parser(name, parents=[anywhere], formatter_class=_HelpFormatter, **kwargs)

    invoke = command("invoke-endpoint", help="invoke an endpoint; write the answer to OUTFILE")
    _add_client_arguments(invoke)
    add_members(invoke, service_model.INVOKE_ENDPOINT)
    invoke.add_argument("outfile", metavar="OUTFILE", help="where the response body is written (- for stdout)")
    invoke.set_defaults(handler=_invoke_endpoint)

    stream = command(
        "invoke-endpoint-with-response-stream", help="invoke an endpoint and print its parts as they arrive"
    )
    _add_client_arguments(stream)
    add_members(stream, service_model.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM)
    stream.add_argument("--lines", action="store_true", help="print whole lines, re-joined across parts")
    stream.set_defaults(handler=_invoke_stream)

    duplex = command(
        "invoke-endpoint-with-bidirectional-stream",
        help="open a bidirectional stream: send each line of stdin as an event, print the model's as they arrive",
    )
    _add_client_arguments(duplex)
    duplex.add_argument("--http2-endpoint-url",
                        help="the HTTP/2 service's URL (default: AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME_HTTP2, "
                             "else --endpoint-url, else the region's :8443 endpoint)")
    add_members(duplex, service_model.INVOKE_ENDPOINT_WITH_BIDIRECTIONAL_STREAM)
    duplex.add_argument("--data-type", choices=("UTF8", "BINARY"), default="UTF8", help="each event's DataType")
    duplex.set_defaults(handler=_invoke_bidirectional_stream)

    queue = command("invoke-endpoint-async", help="queue an asynchronous inference")
    _add_client_arguments(queue)
    add_members(queue, service_model.INVOKE_ENDPOINT_ASYNC)
    queue.add_argument("--file-root", type=Path,
                       help="with --wait: a folder you trust; file:// results are read only inside it")
    queue.add_argument("--wait", action="store_true", help="wait for the result and write it to stdout")
    queue.add_argument("--timeout", type=float, default=900.0, help="seconds to wait with --wait")
    queue.add_argument("--poll-interval", type=float, default=5.0, help="seconds between checks with --wait")
    queue.add_argument("--s3-endpoint-url", help="an S3-compatible server to read s3:// results from with --wait")
    queue.set_defaults(handler=_invoke_async)

    serve = command("serve", help="run the local SageMaker-compatible endpoint")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    serve.add_argument("--port", type=int, default=_DEFAULT_PORT, help="the port to listen on (0: any free port)")
    serve.add_argument("--config", type=Path, help="endpoints TOML file")
    serve.add_argument("--region",
                       help="the region requests must be signed for (default: the config file's, else us-east-1)")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help="also answer requests whose Host is NAME (repeatable; * for any)")
    serve.add_argument("--allow-example-credentials", action="store_true",
                       help="start on a non-loopback --host even though the public example key pair is accepted")
    serve.add_argument("--max-connections", type=int, default=64, help="connections held at once (more: 503)")
    serve.add_argument("--header-timeout", type=float, default=20.0, help="seconds for a request head to arrive")
    serve.add_argument("--body-timeout", type=float, default=60.0, help="seconds for a request body to arrive")
    serve.add_argument("--http2-port", type=int,
                       help="the HTTP/2 port for InvokeEndpointWithBidirectionalStream (default: 8443 beside the "
                            "default --port 8080, any free port beside any other --port, so that two servers never "
                            "collide; 0: any free port; -1: none)")
    serve.add_argument("--http2-certfile", help="PEM certificate: serve HTTP/2 over TLS (ALPN h2), with --http2-keyfile")
    serve.add_argument("--http2-keyfile", help="PEM private key of --http2-certfile")
    serve.add_argument("--no-access-log", dest="access_log", action="store_false",
                       help="no line on stdout for each request and stream (load tests); errors are still logged")
    serve.set_defaults(handler=_serve)

    demo = command("demo", help="start the local endpoint in-process and run every operation on it")
    demo.set_defaults(handler=_demo)

    bench = command("bench", help="measure latency percentiles and client-side cost against an endpoint")
    _add_client_arguments(bench)
    bench.add_argument("--endpoint-name", required=True, help="the endpoint's name")
    bench.add_argument("--body", default='{"numbers": [1, 2, 3]}', help="the payload: text, or fileb://PATH")
    bench.add_argument("--content-type", default="application/json", help="the payload's MIME type")
    bench.add_argument("-n", "--requests", type=int, default=1000, help="how many calls in all")
    bench.add_argument("--concurrency", type=int, default=1, help="threads sharing one client")
    bench.add_argument("--warmup", type=int, default=50, help="untimed calls first")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench.set_defaults(handler=_bench)

    from smruntime.batch_cli import add_batch_arguments

    batch = command("batch", help="invoke an endpoint once per record of a file; write JSON Lines results")
    _add_client_arguments(batch)
    add_batch_arguments(batch)

    stack = command("stack", help="print an operation's middleware stack")
    stack.add_argument("operation", help="e.g. invoke-endpoint or InvokeEndpoint")
    stack.add_argument("--region", default="us-east-1", help="the region the stack is built for")
    stack.set_defaults(handler=_stack)
    return parser


def _add_client_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("client")
    group.add_argument("--region", help="the AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's)")
    group.add_argument("--profile", help="a named profile from the AWS config and credentials files")
    group.add_argument("--endpoint-url", help="send to this URL (a VPC endpoint, a proxy, a local endpoint)")
    group.add_argument("--max-attempts", type=int, help="attempts per call, first included (default 3)")
    group.add_argument("--retry-mode", choices=("standard", "adaptive", "none"), help="the retry policy (default standard)")
    group.add_argument("--read-timeout", type=float, help="seconds to wait for the answer (default 70)")
    group.add_argument("--connect-timeout", type=float, help="seconds to wait for a connection (default 60)")
    group.add_argument("--ca-bundle", dest="verify", metavar="PATH", help="the CA bundle to check certificates with (default: "
                       "AWS_CA_BUNDLE, the profile's ca_bundle, REQUESTS_CA_BUNDLE, else certifi's)")
    group.add_argument("--no-verify-ssl", dest="verify", action="store_false", default=None,
                       help="do not check the server's certificate (for a test server only)")


def add_members(parser: argparse.ArgumentParser, shape: Shape) -> None:
    """One option per member of an operation's input table (``--target-variant``), in its order
    (an event stream's events are not options: they are sent on the open stream)."""
    for member in shape.held:
        help = f"{member.doc} (text, or fileb://PATH for a file's bytes)" if member.type == "blob" else member.doc
        parser.add_argument("--" + member.name.replace("_", "-"), required=member.required,
                            type=int if member.type == "integer" else str, help=help)


def member_values(args: argparse.Namespace, shape: Shape) -> dict[str, Any]:
    """The keyword arguments the options of ``shape``'s members give (a blob's file read)."""
    values: dict[str, Any] = {}
    for member in shape.held:
        value = getattr(args, member.name, None)
        if value is not None:
            values[member.name] = _body(value) if member.type == "blob" else value
    return values


def _client(args: argparse.Namespace) -> Any:
    from smruntime import Client

    return Client(**client_fields(args))


def client_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The Options fields the client arguments (and ``--debug``) give."""
    from smruntime import LogMode

    fields: dict[str, Any] = {}
    for name in ("region", "profile", "endpoint_url", "http2_endpoint_url", "max_attempts", "retry_mode", "read_timeout",
                 "connect_timeout", "verify"):
        value = getattr(args, name, None)
        if value is not None:
            fields[name] = value
    if args.debug:
        fields["log_mode"] = LogMode.REQUEST | LogMode.RESPONSE | LogMode.RETRIES
    return fields


def _body(value: str) -> bytes:
    try:
        # os.path's expanduser: an unknown ~user stays as written (pathlib's raises RuntimeError).
        if value.startswith("fileb://"):
            return Path(os.path.expanduser(value[len("fileb://") :])).read_bytes()
        if value.startswith("file://"):
            return Path(os.path.expanduser(value[len("file://") :])).read_text(encoding="utf-8").encode("utf-8")
    except OSError as error:
        raise ValueError(f"--body {value}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ValueError(f"--body {value}: file:// reads UTF-8 text and this file is not; use fileb://") from None
    return value.encode("utf-8")


def _check_outfile(outfile: str) -> None:
    """Refuse an OUTFILE that cannot be written before the model runs, not after (its answer lost)."""
    if outfile == "-":
        return
    path = Path(os.path.expanduser(outfile))
    if path.is_dir():
        raise ValueError(f"OUTFILE {outfile}: is a folder; name a file in it, or - for stdout")
    if not path.parent.is_dir():
        raise ValueError(f"OUTFILE {outfile}: the folder {path.parent} does not exist")
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        raise ValueError(f"OUTFILE {outfile}: not writable (permission denied)")


def _invoke_endpoint(args: argparse.Namespace) -> int:
    _check_outfile(args.outfile)
    with _client(args) as client:
        out = client.invoke_endpoint(**member_values(args, service_model.INVOKE_ENDPOINT))
    summary = {
        "ContentType": out.content_type,
        "InvokedProductionVariant": out.invoked_production_variant,
        "CustomAttributes": out.custom_attributes,
        "NewSessionId": out.new_session_id,
        "ClosedSessionId": out.closed_session_id,
    }
    fields = json.dumps({k: v for k, v in summary.items() if v is not None}, indent=4)
    if args.outfile == "-":
        # The body owns stdout; the output fields go to stderr so a pipe gets the body alone.
        sys.stdout.buffer.write(out.body)
        sys.stdout.flush()
        print(fields, file=sys.stderr)
    else:
        Path(os.path.expanduser(args.outfile)).write_bytes(out.body)
        print(fields)
    return 0


def _invoke_stream(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    with _client(args) as client:
        stream = client.invoke_endpoint_with_response_stream(
            **member_values(args, service_model.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM)
        )
        with stream:
            if args.lines:
                for line in stream.lines():
                    out.write(line + b"\n")
                    out.flush()
            else:
                for data in stream.payloads():
                    out.write(data)
                    out.flush()
                out.write(b"\n")
    out.flush()
    return 0


def _invoke_bidirectional_stream(args: argparse.Namespace) -> int:
    import threading

    out = sys.stdout.buffer
    failures: list[BaseException] = []

    def send_lines(stream: Any) -> None:
        # Lines go out as they are typed while the model's answers are printed: two threads
        # share the stream, as its blocking face allows.
        try:
            for number, line in enumerate(_input_lines(sys.stdin.buffer), 1):
                data = line.rstrip(b"\r\n")
                if args.data_type == "UTF8":
                    _check_utf8(number, data)
                stream.send(data, data_type=args.data_type)
            stream.end_input()
        except BaseException as error:  # shown by the main thread, which owns the exit status
            failures.append(error)
            stream.close()  # else the reader waits for answers to input that never ends

    with _client(args) as client, client.invoke_endpoint_with_bidirectional_stream(
        **member_values(args, service_model.INVOKE_ENDPOINT_WITH_BIDIRECTIONAL_STREAM)
    ) as stream:
        sender = threading.Thread(target=send_lines, args=(stream,), name="smruntime-stdin", daemon=True)
        sender.start()
        partial = False  # the last line printed waits for the part that completes it
        try:
            for part in stream:
                # A PARTIAL part is continued by the next: one answer, one line.
                partial = part.completion_state == "PARTIAL"
                out.write(part.bytes if partial else part.bytes + b"\n")
                out.flush()
        except errors.SageMakerRuntimeError:
            if not failures:
                raise
            # else the sender's error (a refused line, say) explains the reader's: raised below
        finally:
            if partial:  # the stream ended (or failed) before completing it: still a whole line
                out.write(b"\n")
                out.flush()
    if failures:  # the sender failed and closed the stream, which may just have looked ended
        raise failures[0]
    return 0


def _check_utf8(number: int, line: bytes) -> None:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidParamsError([errors.FieldProblem(
            "--data-type", "utf-8", f"line {number} of stdin is not UTF-8; send bytes with --data-type BINARY"
        )]) from None


def _input_lines(stream: BinaryIO) -> Iterator[bytes]:
    """The lines of ``stream``. A real file is read from its descriptor: the thread blocked
    here must hold no lock that the interpreter's shutdown needs, and a buffered reader's
    (``sys.stdin.buffer``'s) is one, so exiting while stdin is open would abort Python."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # not a file (io.UnsupportedOperation is an OSError)
        yield from stream
        return
    rest = b""
    while chunk := os.read(fd, 1 << 16):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _invoke_async(args: argparse.Namespace) -> int:
    with _client(args) as client:
        out = client.invoke_endpoint_async(**member_values(args, service_model.INVOKE_ENDPOINT_ASYNC))
        summary = {"InferenceId": out.inference_id, "OutputLocation": out.output_location,
                   "FailureLocation": out.failure_location}
        # Flushed: the result below goes to the binary buffer, past the text layer.
        print(json.dumps({k: v for k, v in summary.items() if v is not None}, indent=4), flush=True)
        if args.wait:
            result = client.wait_for_async_inference(
                out, timeout=args.timeout, poll_interval=args.poll_interval, s3_endpoint_url=args.s3_endpoint_url,
                file_root=args.file_root,
            )
            sys.stdout.buffer.write(result)
            sys.stdout.flush()
    return 0


def _serve(args: argparse.Namespace) -> int:
    import attrs

    from smruntime.local import ServerLimits, TLSFiles, serve
    from smruntime.local.config import as_config

    limits = ServerLimits(max_connections=args.max_connections, header_timeout=args.header_timeout,
                          body_timeout=args.body_timeout)
    if (args.http2_certfile is None) != (args.http2_keyfile is None):
        raise ValueError("--http2-certfile and --http2-keyfile go together")
    tls = TLSFiles(args.http2_certfile, args.http2_keyfile) if args.http2_certfile else None
    config = as_config(args.config)
    if args.region is not None:
        config = attrs.evolve(config, region=args.region)
    serve(config=config, host=args.host, port=args.port, limits=limits, allowed_hosts=args.allowed_host,
          allow_example_credentials=args.allow_example_credentials,
          http2_port=_http2_port(args), http2_tls=tls, access_log=args.access_log)
    return 0


def _http2_port(args: argparse.Namespace) -> int | None:
    if args.http2_port is None:
        # A server on a port of its own (a second server, tests, scripts) must not collide with
        # another one on 8443: it takes any free port, which its banner and export line show.
        return 8443 if args.port == _DEFAULT_PORT else 0
    return None if args.http2_port < 0 else int(args.http2_port)


def _demo(args: argparse.Namespace) -> int:
    from smruntime.demo import run

    return run()


def _bench(args: argparse.Namespace) -> int:
    from smruntime.bench import run_bench

    with _client(args) as client:
        return run_bench(client, args, body=_body(args.body))


def _stack(args: argparse.Namespace) -> int:
    from smruntime import Client
    from smruntime.auth import ANONYMOUS

    with Client(region=args.region, credentials=ANONYMOUS) as client:
        sys.stdout.write(str(client.stack(args.operation)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
