"""``smruntime batch``: score a file of records through an endpoint, resumable.

Records come from JSON Lines (one body per line), CSV (one row per record, sent as a CSV
line) or a folder (one file per record, in name order). Each record's index is its position
in the input, so a rerun with ``--resume`` finds the same record under the same index. Every
result is appended to the JSON Lines output and flushed as soon as it completes.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import csv
import io
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TextIO

import attrs

from smruntime import errors
from smruntime.bulk import BulkResult
from smruntime.middleware.reprs import fields_repr

DEFAULT_CONCURRENCY = 16


def add_batch_arguments(batch: argparse.ArgumentParser) -> None:
    """Add the ``batch`` subcommand's own arguments (the client's are the other commands')."""
    batch.add_argument("--http-client", choices=("fast", "requests"), default="fast",
                       help="fast: plain sockets, least client CPU; requests: for SOCKS or https:// proxies")
    batch.add_argument("--endpoint-name", required=True, help="the endpoint's name")
    batch.add_argument("--input", required=True, type=Path, help="a .jsonl/.csv file, or a folder with one file per record")
    batch.add_argument("--input-format", choices=("jsonl", "csv", "folder"), help="default: from the path")
    batch.add_argument("--output", required=True, type=Path,
                       help="JSON Lines results, appended as they complete; - for standard output (no --resume)")
    batch.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="calls in flight at most")
    batch.add_argument("--content-type", help="default: application/json, text/csv for CSV, none for a folder")
    batch.add_argument("--accept", help="the MIME type you want the answers in")
    batch.add_argument("--resume", action="store_true", help="skip the records already in --output; send the rest")
    batch.add_argument("--ordered", action="store_true", help="write results in input order")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar")
    batch.set_defaults(handler=run_batch)


@attrs.frozen
class Malformed:
    """A record that could not be read; reported in the output, never sent."""

    __repr__ = fields_repr

    reason: str


Record = tuple[int, "bytes | Malformed"]


def input_format(path: Path, given: str | None) -> str:
    if given:
        return given
    if path.is_dir():
        return "folder"
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def read_records(path: Path, fmt: str) -> Iterator[Record]:
    """Yield (index, body or Malformed) for every record, streaming."""
    if fmt == "folder":
        for index, entry in enumerate(sorted(p for p in path.iterdir() if p.is_file())):
            yield index, entry.read_bytes()
    elif fmt == "csv":
        # surrogateescape keeps a bad byte to the row it is in: that row is malformed, not the run
        with path.open(newline="", encoding="utf-8", errors="surrogateescape") as source:
            for index, row in enumerate(csv.reader(source)):
                text = io.StringIO()
                csv.writer(text, lineterminator="").writerow(row)
                try:
                    record: bytes | Malformed = text.getvalue().encode("utf-8")
                except UnicodeEncodeError:
                    record = Malformed(f"row {index + 1}: not UTF-8")
                yield index, record
    else:
        with path.open("rb") as source:
            for index, raw in enumerate(source):
                body = raw.strip()
                try:
                    json.loads(body)
                except ValueError as error:
                    yield index, Malformed(f"line {index + 1}: not JSON: {error}")
                    continue
                yield index, body


class IndexSet:
    """A set of record indices in one bit each, so resuming 100 million records costs 12 MB."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self._count = 0

    def add(self, index: int) -> None:
        byte, bit = divmod(index, 8)
        if byte >= len(self._bits):
            self._bits.extend(bytes(max(byte + 1 - len(self._bits), len(self._bits))))
        if not self._bits[byte] >> bit & 1:
            self._bits[byte] |= 1 << bit
            self._count += 1

    def __contains__(self, index: int) -> bool:
        byte, bit = divmod(index, 8)
        return byte < len(self._bits) and bool(self._bits[byte] >> bit & 1)

    def __len__(self) -> int:
        return self._count


@attrs.define(eq=False)
class Completed:
    """What an output file already holds: the indices of its records, and how many of them failed."""

    __repr__ = fields_repr

    indices: IndexSet = attrs.field(factory=IndexSet)
    unsuccessful: int = 0
    """Records whose line says ``failed`` or ``malformed``: resuming does not send them again."""


def completed_indices(output: Path) -> Completed:
    """The records already in ``output``; cuts a torn last line (a crash mid-write) off the file.

    Blank lines are skipped. Any other line that is not a result, before the last, stops the
    run (ValueError naming it): the file was edited, and nothing after it is cut away.
    """
    done = Completed()
    if not output.exists():
        return done
    good = 0
    torn: int | None = None  # where an unreadable line starts, while it may be the last one
    with output.open("rb") as results:
        for number, line in enumerate(results, 1):
            if torn is not None:
                raise ValueError(f"--output: line {number - 1} of {output} is not a result line; fix or remove it, "
                                 "then resume")
            if not line.strip():
                good += len(line)
                continue
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("no end of line")
                fields = json.loads(line)
                done.indices.add(int(fields["index"]))
            except (ValueError, KeyError, TypeError):
                torn = good
                continue
            if fields.get("status") != "ok":
                done.unsuccessful += 1
            good += len(line)
    if good != output.stat().st_size:
        with output.open("r+b") as results:
            results.truncate(good)
    return done


def run_failure(result: BulkResult) -> BaseException | None:
    """The error of a failed record when every record would fail the same way: no credentials
    or no region to sign with, or the service refusing the credentials (403). Such a failure
    stops the run instead of filling the output with it."""
    last = getattr(result.error, "last_error", result.error)
    if isinstance(last, (errors.CredentialsError, errors.SigningError)) or (
        isinstance(last, errors.APIError) and last.http_status == 403
    ):
        return result.error
    return None


def result_line(index: int, result: BulkResult | Malformed) -> dict[str, Any]:
    if isinstance(result, Malformed):
        return {"index": index, "status": "malformed", "error": {"type": "MalformedRecord", "message": result.reason},
                "attempts": 0, "latency": 0.0}
    line: dict[str, Any] = {"index": index, "status": "ok" if result.ok else "failed"}
    if result.output is not None:
        line.update(_output_fields(result.output.body))
    else:
        error = result.error
        last = getattr(error, "last_error", error)
        line["error"] = {"type": type(last).__name__, "message": " ".join(str(error).split())}
        code = getattr(last, "code", None)
        if code:
            line["error"]["code"] = code
        if getattr(last, "throttling", False):
            line["error"]["throttling"] = True
    line["attempts"] = result.attempts
    line["latency"] = round(result.latency, 6)
    return line


def _output_fields(body: bytes) -> dict[str, Any]:
    try:
        return {"output": json.loads(body)}
    except ValueError:
        pass
    try:
        return {"output": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"output_base64": base64.b64encode(body).decode("ascii")}


@attrs.define
class LatencyHistogram:
    """Latency percentiles in constant memory: counts in buckets 1 % wide (log scale)."""

    __repr__ = fields_repr

    counts: dict[int, int] = attrs.field(factory=dict)
    total: int = 0

    def add(self, seconds: float) -> None:
        bucket = math.floor(math.log(max(seconds, 1e-6)) / _LOG_STEP)
        self.counts[bucket] = self.counts.get(bucket, 0) + 1
        self.total += 1

    def percentile(self, q: float) -> float:
        """The upper edge of the bucket holding the ``q`` quantile (0 when empty)."""
        rank = min(self.total - 1, int(q * self.total))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen > rank:
                return math.exp((bucket + 1) * _LOG_STEP)
        return 0.0


_LOG_STEP = math.log(1.01)


@attrs.define
class Tally:
    """Counts and latencies for the summary line."""

    __repr__ = fields_repr

    done: int = 0
    failed: int = 0
    malformed: int = 0
    throttled: int = 0
    skipped: int = 0
    skipped_unsuccessful: int = 0
    """Of the skipped records (already in the output), those that had failed or were malformed."""
    latencies: LatencyHistogram = attrs.field(factory=LatencyHistogram)

    def add(self, line: dict[str, Any]) -> None:
        status = line["status"]
        if status == "ok":
            self.done += 1
        elif status == "malformed":
            self.malformed += 1
        else:
            self.failed += 1
            if line["error"].get("throttling"):
                self.throttled += 1
        if status != "malformed":
            self.latencies.add(line["latency"])

    def summary(self, seconds: float) -> str:
        p50, p99 = self.latencies.percentile(0.50), self.latencies.percentile(0.99)
        total = self.done + self.failed + self.malformed
        rate = total / seconds if seconds > 0 else 0.0
        earlier = f" ({self.skipped_unsuccessful} of them failed or malformed)" if self.skipped_unsuccessful else ""
        return (f"batch: {self.done} done, {self.failed} failed ({self.throttled} throttled), {self.malformed} malformed,"
                f" {self.skipped} skipped{earlier}; {rate:.0f} records/s;"
                f" latency p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")


class _PlainProgress:
    """A line every few seconds when no progress-bar library is installed."""

    def __init__(self, stream: IO[str], enabled: bool) -> None:
        self._stream, self._enabled = stream, enabled
        self._start = self._last = time.monotonic()
        self._count = 0

    def update(self, count: int = 1) -> None:
        self._count += count
        now = time.monotonic()
        if self._enabled and now - self._last >= 2.0:
            self._last = now
            print(f"batch: {self._count} records, {self._count / (now - self._start):.0f}/s", file=self._stream)

    def close(self) -> None:
        pass


def _progress(enabled: bool) -> Any:
    if enabled:
        try:
            from tqdm import tqdm  # type: ignore[import-untyped,import-not-found,unused-ignore]  # optional: the batch extra
        except ImportError:
            return _PlainProgress(sys.stderr, enabled)
        return tqdm(unit="rec", file=sys.stderr, dynamic_ncols=True)
    return _PlainProgress(sys.stderr, False)


def _client(args: argparse.Namespace, closing: contextlib.ExitStack) -> Any:
    """The run's client; ``closing`` closes it and the HTTP client it was given."""
    from smruntime import Client
    from smruntime.cli import client_fields

    pool = max(args.concurrency, 1)
    fields = {**client_fields(args), "max_pool_connections": pool}
    if args.http_client == "fast":
        from smruntime.transport import FastHTTPClient

        # The timeouts are the HTTP client's own: the Client does not pass them on to one it is given.
        timeouts = {name: fields.pop(name) for name in ("connect_timeout", "read_timeout") if name in fields}
        fields["http_client"] = closing.enter_context(FastHTTPClient(max_pool_connections=pool, **timeouts))
    return closing.enter_context(Client(**fields))


class GracefulStop:
    """The first SIGINT or SIGTERM stops the reading of records: the calls in flight finish and
    their results are written. A second one ends the process at once; every line written is
    already flushed, and ``--resume`` cuts a torn last one."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():  # only there can Python take signals
            for number in self.SIGNALS:
                self._previous[number] = signal.signal(number, self._received)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _received(self, number: int, frame: object) -> None:
        if self.signal is not None:
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
            return
        self.signal = number
        print("batch: stopping: no more records are sent; the calls in flight finish and are written "
              "(interrupt again to quit at once)", file=sys.stderr)


def _open_output(path: Path) -> TextIO:
    try:
        return path.open("a", encoding="utf-8")
    except OSError as error:
        raise ValueError(f"--output {path}: {error.strerror or error}") from None


def run_batch(args: argparse.Namespace) -> int:
    """Run ``smruntime batch``; exit status 0 when every record succeeded, 1 otherwise, 128 plus
    the signal's number when stopped by SIGINT or SIGTERM."""
    if args.concurrency < 1:
        raise ValueError(f"--concurrency must be at least 1, got {args.concurrency}")
    fmt = input_format(args.input, args.input_format)
    if not args.input.exists():
        raise ValueError(f"--input: no such file or folder: {args.input}")
    content_type = args.content_type or {"jsonl": "application/json", "csv": "text/csv"}.get(fmt)
    to_stdout = str(args.output) == "-"
    if to_stdout and args.resume:
        raise ValueError("--resume reads the results already written: --output must be a file, not -")
    if args.resume and not to_stdout and args.output.exists() and not args.output.is_file():
        raise ValueError(f"--resume reads the results already written: --output {args.output} is not a regular file")
    completed = completed_indices(args.output) if args.resume and not to_stdout else Completed()
    skip = completed.indices
    if not args.resume and not to_stdout and args.output.is_file() and args.output.stat().st_size:
        raise ValueError(f"--output: {args.output} already has results; pass --resume to complete it, or remove it")
    tally = Tally(skipped=len(skip), skipped_unsuccessful=completed.unsuccessful)
    progress = _progress(not args.no_progress and sys.stderr.isatty())
    start = time.monotonic()
    with contextlib.ExitStack() as closing:
        output = sys.stdout if to_stdout else closing.enter_context(_open_output(args.output))
        client = _client(args, closing)
        stop = closing.enter_context(GracefulStop())
        held: collections.deque[dict[str, Any]] = collections.deque()  # --ordered: malformed lines, until their turn
        # The bulk API numbers what it is given; map its indices back to input positions.
        positions: dict[int, int] = {}
        sent = 0
        stopped: list[BaseException] = []  # a failure every record would share: send no more
        closed_output: list[bool] = []  # standard output was closed (a broken pipe): send no more

        def write(line: dict[str, Any] | None) -> None:
            """Write ``line`` (None: what is held) after the held lines before it."""
            try:
                while held and (line is None or held[0]["index"] < line["index"]):
                    emit(held.popleft())
                if line is not None:
                    emit(line)
            except BrokenPipeError:  # `... | head`: what reads the output has had enough
                closed_output.append(True)

        def emit(line: dict[str, Any]) -> None:
            if closed_output:
                return
            output.write(json.dumps(line, separators=(",", ":")) + "\n")
            output.flush()  # a crash loses at most the calls in flight, never a written result
            tally.add(line)
            progress.update(1)

        def numbered() -> Iterator[bytes]:
            nonlocal sent
            for index, record in read_records(args.input, fmt):
                if stopped or stop.signal is not None or closed_output:
                    return
                if index in skip:
                    continue
                if isinstance(record, Malformed):
                    if args.ordered:
                        held.append(result_line(index, record))
                    else:
                        write(result_line(index, record))
                    continue
                positions[sent] = index
                sent += 1
                yield record

        results = client.invoke_many(
            numbered(), endpoint_name=args.endpoint_name, content_type=content_type, accept=args.accept,
            concurrency=args.concurrency, ordered=args.ordered,
        )
        for result in results:
            index = positions.pop(result.index)
            failure = run_failure(result)
            if failure is not None:
                stopped.append(failure)  # no line: a resume sends the record again
                continue
            write(result_line(index, result))
        write(None)
    progress.close()
    if closed_output:
        _quiet_stdout()
        return 1
    print(tally.summary(time.monotonic() - start), file=sys.stderr)
    if stop.signal is not None:
        resume = "" if to_stdout else f"; the same command with --resume sends the rest to {args.output}"
        print(f"batch: stopped by {signal.Signals(stop.signal).name}{resume}", file=sys.stderr)
        return 128 + stop.signal
    if stopped:
        again = ("" if to_stdout else f"; the records without a line in {args.output} are sent again by the same "
                 "command with --resume once it is fixed")
        print(f"batch: stopped: every record would fail this way{again}", file=sys.stderr)
        raise stopped[0]
    return 0 if tally.failed == 0 and tally.malformed == 0 and tally.skipped_unsuccessful == 0 else 1


def _quiet_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's last flush finds no broken pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
