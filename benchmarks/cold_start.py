"""(3) Cold start: import + client + first call, each run in a fresh Python process.

The child times itself from just before the import to the first answer (interpreter start-up
excluded, it is the same for all); the parent also records the whole process's wall time.
Runs alternate smruntime default, smruntime fastest (``FastHTTPClient``) and boto3 (in turned
round order every other round) against the same loopback server; medians.
"""

from __future__ import annotations

import compileall
import json
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import (
    ACCESS_KEY,
    REGION,
    REPO,
    SECRET_KEY,
    Section,
    median,
    paired_ratio,
    ratio,
    round_order,
    spread,
    standalone,
    subprocess_env,
    table,
)
from benchmarks.server import LoopbackServer

RUNS = 10

_PRELUDE = """
import json, sys, time
url = sys.argv[1]
start = time.perf_counter()
"""

_SMRUNTIME = _PRELUDE + f"""
from smruntime import Client
imported = time.perf_counter()
client = Client(region={REGION!r}, credentials=({ACCESS_KEY!r}, {SECRET_KEY!r}), endpoint_url=url)
created = time.perf_counter()
body = client.invoke_endpoint(endpoint_name="bench", body=b"{{}}", content_type="application/json").body
"""

_SMRUNTIME_FAST = _PRELUDE + f"""
from smruntime import Client
from smruntime.transport import FastHTTPClient
imported = time.perf_counter()
client = Client(region={REGION!r}, credentials=({ACCESS_KEY!r}, {SECRET_KEY!r}), endpoint_url=url,
                http_client=FastHTTPClient())
created = time.perf_counter()
body = client.invoke_endpoint(endpoint_name="bench", body=b"{{}}", content_type="application/json").body
"""

_BOTO3 = _PRELUDE + f"""
import boto3
import botocore.config
imported = time.perf_counter()
session = boto3.session.Session(aws_access_key_id={ACCESS_KEY!r}, aws_secret_access_key={SECRET_KEY!r},
                                region_name={REGION!r})
client = session.client("sagemaker-runtime", endpoint_url=url,
                        config=botocore.config.Config(retries={{"mode": "standard"}}))
created = time.perf_counter()
body = client.invoke_endpoint(EndpointName="bench", Body=b"{{}}", ContentType="application/json")["Body"].read()
"""

_REPORT = """
done = time.perf_counter()
assert body == b"{}", body
print(json.dumps({"import": imported - start, "client": created - imported, "first_call": done - created,
                  "total": done - start}))
"""

SCRIPTS = {
    "smruntime default": _SMRUNTIME + _REPORT,
    "smruntime fastest": _SMRUNTIME_FAST + _REPORT,
    "boto3": _BOTO3 + _REPORT,
}


def one_run(script: str, url: str) -> dict[str, float]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", script, url], capture_output=True, text=True, env=subprocess_env(), check=False
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"cold-start child failed:\n{result.stderr}")
    figures: dict[str, float] = json.loads(result.stdout)
    figures["process"] = wall
    return figures


def run(server: LoopbackServer | None = None, *, runs: int = RUNS) -> Section:
    if server is None:
        with LoopbackServer() as own:
            return run(own, runs=runs)
    # pip compiles a package's bytecode when it installs it; a checkout run with
    # PYTHONDONTWRITEBYTECODE would otherwise compile smruntime from source in every child.
    compileall.compile_dir(str(REPO / "smruntime"), quiet=1)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in SCRIPTS}
    for index in range(runs + 1):  # the first round warms the page cache and is not kept
        for name, script in round_order(SCRIPTS, index):
            figures = one_run(script, server.url)
            if index:
                samples[name].append(figures)

    def med(name: str, part: str) -> float:
        return median([figures[part] for figures in samples[name]])

    def versus(name: str) -> float:
        return paired_ratio([figures["total"] for figures in samples[name]],
                            [figures["total"] for figures in samples["boto3"]])

    rows = []
    for name in SCRIPTS:
        totals = [figures["total"] for figures in samples[name]]
        rows.append((
            name,
            f"{med(name, 'import') * 1e3:.0f}",
            f"{med(name, 'client') * 1e3:.1f}",
            f"{med(name, 'first_call') * 1e3:.1f}",
            f"**{med(name, 'total') * 1e3:.0f}**",
            spread(totals),
            f"{med(name, 'process') * 1e3:.0f}",
            ratio(versus(name)),
        ))
    data: dict[str, Any] = {
        "runs": runs,
        "ms": {name: {part: med(name, part) * 1e3 for part in ("import", "client", "first_call", "total", "process")}
               for name in SCRIPTS},
        "smruntime_vs_boto3": versus("smruntime default"),
        "fastest_vs_boto3": versus("smruntime fastest"),
    }
    return Section(
        "cold_start",
        "3. Cold start (fresh process: import + client + first call)",
        table(["client", "import ms", "client ms", "first call ms", "total ms", "spread", "process wall ms",
               "vs boto3"], rows),
        data,
        [f"{runs} runs each, alternating, after one warm-up round; medians (ratios: medians of per-round ratios). "
         "'process wall' adds the interpreter's "
         "own start-up and exit, the same for all.",
         "smruntime's bytecode is compiled first (`compileall`), as `pip install` does; boto3's already is."],
    )


if __name__ == "__main__":
    standalone(run)
