"""(6) One streaming call carrying 1 GiB: how much the client process's peak RSS grows.

The contenders: both Client configurations and boto3, and on an asyncio loop AsyncClient (its
default transport) and aiobotocore. Each contender runs in a fresh process: it builds its client, makes a small warm-up stream
call, resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), notes its RSS, then reads
one ``InvokeEndpointWithResponseStream`` answer of 1 GiB (16 384 ``PayloadPart`` frames of 64
KiB, one HTTP chunk each, generated on the fly by the server) and reports the peak RSS
(``VmHWM``) minus the RSS before the call.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from benchmarks.common import ACCESS_KEY, REGION, SECRET_KEY, Section, standalone, subprocess_env, table
from benchmarks.server import LoopbackServer

GIB = 1024 * 1024 * 1024
PART = 64 * 1024

_CHILD = f"""
import json, sys, time

def status():
    fields = {{}}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) * 1024
    return fields

url, which, total, part = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if which == "boto3":
    import boto3, botocore.config
    client = boto3.session.Session(aws_access_key_id={ACCESS_KEY!r}, aws_secret_access_key={SECRET_KEY!r},
                                   region_name={REGION!r}).client(
        "sagemaker-runtime", endpoint_url=url, config=botocore.config.Config(retries={{"mode": "standard"}}))

    def stream(size):
        response = client.invoke_endpoint_with_response_stream(
            EndpointName="bench", Body=json.dumps({{"bytes": size, "part": part}}), ContentType="application/json")
        got = 0
        for event in response["Body"]:
            got += len(event["PayloadPart"]["Bytes"])
        return got
elif which == "aiobotocore":
    import asyncio, aiobotocore.session
    from aiobotocore.config import AioConfig
    loop = asyncio.new_event_loop()
    client = loop.run_until_complete(aiobotocore.session.get_session().create_client(
        "sagemaker-runtime", region_name={REGION!r}, endpoint_url=url, aws_access_key_id={ACCESS_KEY!r},
        aws_secret_access_key={SECRET_KEY!r}, config=AioConfig(retries={{"mode": "standard"}})).__aenter__())

    async def astream(size):
        response = await client.invoke_endpoint_with_response_stream(
            EndpointName="bench", Body=json.dumps({{"bytes": size, "part": part}}), ContentType="application/json")
        got = 0
        async for event in response["Body"]:
            got += len(event["PayloadPart"]["Bytes"])
        return got

    def stream(size):
        return loop.run_until_complete(astream(size))
elif which == "AsyncClient":
    import asyncio
    from smruntime import AsyncClient
    loop = asyncio.new_event_loop()

    async def make():
        return AsyncClient(region={REGION!r}, credentials=({ACCESS_KEY!r}, {SECRET_KEY!r}), endpoint_url=url)

    client = loop.run_until_complete(make())

    async def astream(size):
        got = 0
        events = await client.invoke_endpoint_with_response_stream(
            endpoint_name="bench", body=json.dumps({{"bytes": size, "part": part}}), content_type="application/json")
        async with events:
            async for event in events:
                got += len(event.bytes)
        return got

    def stream(size):
        return loop.run_until_complete(astream(size))
else:
    from smruntime import Client
    fields = {{}}
    if which == "smruntime fastest":
        from smruntime.transport import FastHTTPClient
        fields["http_client"] = FastHTTPClient()
    client = Client(region={REGION!r}, credentials=({ACCESS_KEY!r}, {SECRET_KEY!r}), endpoint_url=url, **fields)

    def stream(size):
        got = 0
        with client.invoke_endpoint_with_response_stream(
                endpoint_name="bench", body=json.dumps({{"bytes": size, "part": part}}),
                content_type="application/json") as events:
            for event in events:
                got += len(event.bytes)
        return got

assert stream(4 * part) == 4 * part  # warm-up: every code path loaded before measuring
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    reset = True
except OSError:
    reset = False
before = status()
start = time.perf_counter()
got = stream(total)
elapsed = time.perf_counter() - start
after = status()
assert got == total, (got, total)
print(json.dumps({{"rss_before": before["VmRSS"], "hwm_after": after["VmHWM"], "rss_after": after["VmRSS"],
                  "seconds": elapsed, "bytes": got, "peak_reset": reset}}))
"""

CONTENDERS = ("smruntime default", "smruntime fastest", "boto3", "AsyncClient", "aiobotocore")


def one_run(url: str, which: str, total: int) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, url, which, str(total), str(PART)],
        capture_output=True, text=True, env=subprocess_env(), check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"stream-memory child ({which}) failed:\n{result.stderr}")
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def run(server: LoopbackServer | None = None, *, total: int = GIB, contenders: tuple[str, ...] = CONTENDERS) -> Section:
    if server is None:
        with LoopbackServer() as own:
            return run(own, total=total, contenders=contenders)
    rows = []
    data: dict[str, Any] = {"bytes": total, "part": PART}
    for which in contenders:
        figures = one_run(server.url, which, total)
        growth = figures["hwm_after"] - figures["rss_before"]
        data[which] = {**figures, "peak_growth_mib": growth / 2**20}
        rows.append((
            which,
            f"{growth / 2**20:.2f}",
            f"{figures['rss_before'] / 2**20:.0f}",
            f"{figures['hwm_after'] / 2**20:.0f}",
            f"{total / figures['seconds'] / 2**20:,.0f}",
        ))
    reset = all(data[which]["peak_reset"] for which in contenders)
    return Section(
        "stream_memory",
        f"6. One streaming call carrying {total / GIB:g} GiB",
        table(["client", "peak RSS growth MiB", "RSS before MiB", "peak RSS MiB", "MiB/s"], rows),
        data,
        [f"{total // PART:,} PayloadPart frames of {PART // 1024} KiB; one fresh process per client, one run each "
         "(memory is not noisy the way time is).",
         "Peak RSS growth = VmHWM after the call minus VmRSS just before it"
         + (" (VmHWM reset through /proc/self/clear_refs first)." if reset else
            " (VmHWM could not be reset, so this may include an earlier peak: an upper bound).")],
    )


if __name__ == "__main__":
    standalone(run)
