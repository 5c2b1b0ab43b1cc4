"""(9) Bidirectional streaming: round trip, events per second, memory over 1 GiB.

Against the local endpoint's ``echo`` model over cleartext HTTP/2, served from a child process
(``python -m benchmarks.bidi --serve``), in one run:

* the round trip of one 64-byte event (send it, read its echo) on one open stream, for
  AsyncClient and Client, against the floor: the same round trip as raw h2 frames over a
  blocking socket (no signing, no event framing, no asyncio; ``benchmarks.h2_floor``) to an
  HTTP/2 echo on the same server software (hypercorn, cleartext, its own child process);
* the events per second one stream sustains both ways (a task sends while the caller reads
  the echoes) with 1 KiB and with 64 KiB events;
* the peak RSS growth of a fresh process that sends 1 GiB in 64 KiB events and reads the
  1 GiB echoed back on one stream.

Every event is signed and chained by the client and checked by the local endpoint.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

from benchmarks.common import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    Section,
    client_apart_from_servers,
    standalone,
    subprocess_env,
    table,
)

GIB = 1024 * 1024 * 1024
SMALL = 64
ROUNDS = 10
RTT_GOAL = 1.5
MEMORY_GOAL_MIB = 32
RATE_EVENTS = {1024: 10_000, 64 * 1024: 1_000}
"""Events sent (and echoed) per events-per-second run, by event size."""


class LocalH2Endpoint:
    """The local endpoint (its default models) in a child process; ``http2_url`` is its HTTP/2 service."""

    def __enter__(self) -> LocalH2Endpoint:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bidi", "--serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=subprocess_env(),
        )
        assert self._process.stdout is not None
        self.http2_url = self._process.stdout.readline().strip()
        if not self.http2_url.startswith("http"):
            self.__exit__()
            raise SystemExit("the local endpoint did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()  # the child stops when its stdin closes
        self._process.wait(30)


async def bare_echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor's server, two ways: ``/echo`` answers each request chunk with itself (raw h2);
    any other path answers a bidirectional stream's signed events with their inner events,
    unchecked (the least a server can do for our client: no signature check, no model)."""
    from benchmarks.h2_floor import echo_app
    from smruntime.eventstream import EventStreamDecoder

    if scope["type"] != "http" or scope["path"] == "/echo":
        await echo_app(scope, receive, send)
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/vnd.amazon.eventstream")]})
    decoder = EventStreamDecoder()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        inner = b"".join(frame.payload for frame in decoder.feed(message.get("body", b"")))
        if inner:
            await send({"type": "http.response.body", "body": inner, "more_body": True})
        if not message.get("more_body"):
            break
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class BareEchoServer:
    """hypercorn serving :func:`bare_echo_app` in a child process, on a loopback port it is handed."""

    def __enter__(self) -> BareEchoServer:
        import socket

        from benchmarks.common import REPO

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        fd = listener.fileno()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "hypercorn", "--bind", f"fd://{fd}", "--log-level", "error",
             "benchmarks.bidi:bare_echo_app"],
            pass_fds=(fd,), cwd=REPO, env=subprocess_env(),
        )
        listener.close()
        deadline = time.monotonic() + 30
        while True:  # until it answers
            try:
                from benchmarks.h2_floor import raw_echo_rtts

                raw_echo_rtts(self.url, count=1)
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self._process.terminate()
        self._process.wait(10)


def _serve() -> None:
    from smruntime.local import LocalEndpoint

    with LocalEndpoint(credentials=(ACCESS_KEY, SECRET_KEY)) as endpoint:
        print(endpoint.http2_url, flush=True)
        sys.stdin.read()


def _client_fields(url: str) -> dict[str, Any]:
    return {"region": REGION, "credentials": (ACCESS_KEY, SECRET_KEY), "http2_endpoint_url": url}


async def async_rtts(url: str, count: int, payload: bytes = b"x" * SMALL) -> list[float]:
    """Round trips of one event through ``echo`` on one stream opened by AsyncClient."""
    from smruntime import AsyncClient

    async with AsyncClient(**_client_fields(url)) as client, client.invoke_endpoint_with_bidirectional_stream(
        endpoint_name="echo"
    ) as stream:
        rtts = []
        for _ in range(count):
            started = time.perf_counter()
            await stream.send(payload)
            await stream.__anext__()
            rtts.append(time.perf_counter() - started)
        await stream.end_input()
    return rtts


def sync_rtts(url: str, count: int, payload: bytes = b"x" * SMALL) -> list[float]:
    """The same with Client (its stream runs on the client's event-loop thread)."""
    from smruntime import Client

    with Client(**_client_fields(url)) as client, client.invoke_endpoint_with_bidirectional_stream(
        endpoint_name="echo"
    ) as stream:
        rtts = []
        for _ in range(count):
            started = time.perf_counter()
            stream.send(payload)
            next(stream)
            rtts.append(time.perf_counter() - started)
        stream.end_input()
    return rtts


async def exchange(url: str, size: int, count: int) -> float:
    """Seconds to send ``count`` events of ``size`` bytes on one stream while reading their echoes."""
    from smruntime import AsyncClient

    payload = b"e" * size
    async with AsyncClient(**_client_fields(url)) as client, client.invoke_endpoint_with_bidirectional_stream(
        endpoint_name="echo"
    ) as stream:

        async def send_all() -> None:
            for _ in range(count):
                await stream.send(payload)
            await stream.end_input()

        started = time.perf_counter()
        sender = asyncio.ensure_future(send_all())
        got = 0
        async for part in stream:
            got += len(part.bytes)
        await sender
        elapsed = time.perf_counter() - started
    assert got == size * count, (got, size * count)
    return elapsed


_MEMORY_CHILD = """
import asyncio, json, sys, time
from benchmarks.bidi import exchange

def status():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) * 1024
    return fields

url, total, part = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
asyncio.run(exchange(url, part, 8))  # warm-up: every code path loaded before measuring
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    reset = True
except OSError:
    reset = False
before = status()
seconds = asyncio.run(exchange(url, part, total // part))
after = status()
print(json.dumps({"rss_before": before["VmRSS"], "hwm_after": after["VmHWM"], "seconds": seconds, "peak_reset": reset}))
"""


def memory_run(url: str, total: int, part: int = 64 * 1024) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, url, str(total), str(part)],
                            capture_output=True, text=True, env=subprocess_env(), check=False)
    if result.returncode != 0:
        raise SystemExit(f"bidirectional memory child failed:\n{result.stderr}")
    figures: dict[str, Any] = json.loads(result.stdout)
    figures["peak_growth_mib"] = (figures["hwm_after"] - figures["rss_before"]) / 2**20
    return figures


def _rates(url: str) -> dict[int, dict[str, float]]:
    rates = {}
    for size, count in RATE_EVENTS.items():
        asyncio.run(exchange(url, size, max(count // 10, 10)))  # warm-up
        cpu = time.process_time()
        seconds = asyncio.run(exchange(url, size, count))
        cpu = time.process_time() - cpu
        rates[size] = {"events": count, "seconds": seconds, "events_per_s": count / seconds,
                       "mib_per_s": count * size / seconds / 2**20, "client_cpu_us_per_event": cpu / count * 1e6}
    return rates


def round_trips(bare_url: str, local_url: str, rtts: int) -> dict[str, float]:
    """Median round trip of each contender, in seconds: ``rtts`` of each, in interleaved rounds."""
    from benchmarks.h2_floor import raw_echo_rtts

    payload = b"x" * SMALL
    contenders: dict[str, Callable[[int], list[float]]] = {
        "raw h2 floor": lambda count: raw_echo_rtts(bare_url, payload=payload, count=count),
        "AsyncClient, bare echo": lambda count: asyncio.run(async_rtts(bare_url, count)),
        "AsyncClient, local echo model": lambda count: asyncio.run(async_rtts(local_url, count)),
        "Client, local echo model": lambda count: sync_rtts(local_url, count),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for measure in contenders.values():
        measure(200)  # warm-up
    for _ in range(ROUNDS):  # interleaved, so that a busy moment weighs on every contender alike
        for name, measure in contenders.items():
            samples[name] += measure(rtts // ROUNDS)
    return {name: statistics.median(values) for name, values in samples.items()}


def run(*, rtts: int = 2000, total: int = GIB) -> Section:
    with client_apart_from_servers() as servers_started, BareEchoServer() as bare, LocalH2Endpoint() as local:
        client_cpus = servers_started()
        rtt = round_trips(bare.url, local.http2_url, rtts)
        rates = {"local echo model": _rates(local.http2_url), "bare echo": _rates(bare.url)}
        memory = memory_run(bare.url, total)
    floor = rtt["raw h2 floor"]
    data = {
        "rtt_us": {name: seconds * 1e6 for name, seconds in rtt.items()},
        "rtt_vs_floor": rtt["AsyncClient, local echo model"] / floor,
        "client_only_rtt_vs_floor": rtt["AsyncClient, bare echo"] / floor,
        "events_per_s": {server: {f"{size // 1024} KiB": figures for size, figures in by_size.items()}
                         for server, by_size in rates.items()},
        "memory": {"bytes": total, **memory},
        "client_cpus": client_cpus,
    }
    rows = [
        (f"round trip of a {SMALL} B event, {name}", f"{seconds * 1e6:,.0f} µs",
         "" if name == "raw h2 floor" else f"{seconds / floor:.2f} x floor")
        for name, seconds in rtt.items()
    ]
    rows += [
        (f"events/s both ways, {size // 1024} KiB events, {server}", f"{figures['events_per_s']:,.0f} /s",
         f"{figures['mib_per_s']:,.1f} MiB/s each way; client CPU {figures['client_cpu_us_per_event']:,.0f} µs/event")
        for server, by_size in rates.items()
        for size, figures in by_size.items()
    ]
    rows.append((f"{total / GIB:g} GiB each way on one stream (bare echo), peak RSS growth",
                 f"{memory['peak_growth_mib']:.2f} MiB", f"{total / memory['seconds'] / 2**20:,.0f} MiB/s each way"))
    return Section(
        "bidi",
        "10. Bidirectional streaming over HTTP/2",
        table(["measure", "value", ""], rows, "lrr"),
        data,
        [f"Round trips: median of {rtts:,} on open streams, in {ROUNDS} interleaved rounds, after 200 untimed. The floor is raw h2 frames "
         "over a blocking socket (no signing, no event framing, no asyncio) to an echo on hypercorn; the bare "
         "echo is the same server answering each signed event with its inner event, unchecked (what the "
         "client itself costs); the local echo model is the local endpoint (hypercorn too), which also checks "
         "the opening request's and every event's signature, decodes each event and runs the echo model.",
         (f"CPUs: the benchmark process (every client) on CPU {client_cpus[0]}, the servers on the others, as a "
          "remote endpoint would be; unpinned, where the scheduler placed client and server moved a round trip "
          "by tens of microseconds from run to run." if client_cpus else
          "CPUs: not pinned (one CPU, or no sched_setaffinity), so round trips vary more from run to run."),
         "Events/s: one stream; a task sends while the caller reads every echo; one run after a warm-up. "
         "Client CPU: the benchmark process's CPU time per event sent and echoed (the servers run in their own "
         "processes).",
         "Memory: a fresh process sends and reads back the whole exchange in 64 KiB events; VmHWM after it "
         "minus VmRSS before it"
         + (" (VmHWM reset through /proc/self/clear_refs first)." if memory["peak_reset"] else " (an upper bound).")],
    )


def targets(section: Section) -> list[dict[str, Any]]:
    """The bidirectional-streaming targets, as ``benchmarks.run`` lists them."""
    data = section.data
    growth = data["memory"]["peak_growth_mib"]
    return [
        {"target": "Bidirectional stream, round trip of one small event through the local echo model",
         "goal": f"≤ {RTT_GOAL} x raw h2 echo",
         "value": data["rtt_vs_floor"], "measured": f"{data['rtt_vs_floor']:.2f} x raw h2",
         "met": data["rtt_vs_floor"] <= RTT_GOAL},
        {"target": f"Bidirectional stream, {data['memory']['bytes'] / GIB:g} GiB each way, peak RSS growth",
         "goal": f"≤ {MEMORY_GOAL_MIB} MiB",
         "value": growth, "measured": f"{growth:.2f} MiB", "met": growth <= MEMORY_GOAL_MIB},
    ]


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        _serve()
    else:
        standalone(run)
