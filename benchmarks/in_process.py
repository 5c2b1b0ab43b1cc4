"""(2) In-process cost: what each client spends in its own code when the network costs nothing.

smruntime runs its default stack on a canned-response HTTP client (a minimal ``HTTPClient``
that returns a ready ``HTTPResponse``); boto3 gets a ``before-send`` handler that returns a
canned ``AWSResponse``, so botocore does everything but the HTTP exchange. Interleaved rounds,
medians. Then a second smruntime client with ``record_timings`` breaks one call down per step
and per middleware (medians over many calls; the timers themselves add about a microsecond
per middleware, so the breakdown sums to more than the untimed total).
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks import clients
from benchmarks.common import Section, interleave, median, paired_ratio, per_call, ratio, spread, standalone, table
from smruntime.http import BytesBody, Headers, HTTPRequest, HTTPResponse
from smruntime.timing import STEP_ORDER, record_timings

SMRUNTIME_CALLS = 2000
BOTO3_CALLS = 200
ROUNDS = 16
TIMED_CALLS = 3000

_RESPONSE_HEADERS = {
    "Content-Type": "application/json",
    "x-Amzn-Invoked-Production-Variant": "AllTraffic",
    "x-amzn-RequestId": "5f0c4a8e-2b1d-4c47-9a8f-1d2e3f405162",
    "Content-Length": "2",
}
_CANNED_URL = "http://canned.invalid"


class CannedHTTPClient:
    """An ``HTTPClient`` that answers every request with the same 200 (a fresh body each time)."""

    def __init__(self) -> None:
        self.headers = Headers(_RESPONSE_HEADERS)

    def send(self, request: HTTPRequest, *, stream: bool = False) -> HTTPResponse:
        return HTTPResponse(200, self.headers, BytesBody(b"{}"))

    def close(self) -> None:
        """Nothing to release."""


class _CannedRaw:
    """What botocore reads a canned response body from."""

    def stream(self, **_: Any) -> Any:
        yield b"{}"

    def read(self, *_: Any, **__: Any) -> bytes:
        return b"{}"


def boto3_canned() -> Any:
    from botocore.awsrequest import AWSResponse

    client = clients.boto3_client(_CANNED_URL)

    def answer(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, 200, dict(_RESPONSE_HEADERS), _CannedRaw())

    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", answer)
    return client


def breakdown(calls: int = TIMED_CALLS) -> dict[str, Any]:
    """Median seconds per middleware, per step and in the (canned) HTTP exchange, over ``calls`` calls."""
    client = clients.smruntime_client(_CANNED_URL, http_client=CannedHTTPClient(), api_options=[record_timings])
    call = clients.smruntime_call(client)
    for _ in range(calls // 5):
        call()
    middleware: dict[str, list[float]] = {}
    steps: dict[str, list[float]] = {}
    transport: list[float] = []
    for _ in range(calls):
        out = client.invoke_endpoint(endpoint_name=clients.ENDPOINT_NAME, body=clients.BODY,
                                     content_type=clients.CONTENT_TYPE)
        timings = out.metadata.timings
        for name, seconds in timings["middleware"].items():
            middleware.setdefault(name, []).append(seconds)
        for name, seconds in timings["steps"].items():
            steps.setdefault(name, []).append(seconds)
        transport.append(timings["transport"])
    client.close()
    order = client.stack("InvokeEndpoint").list()
    return {
        "middleware": {name: statistics.median(middleware[name]) for name in order if name in middleware},
        "steps": {name: statistics.median(steps[name]) for name in STEP_ORDER if name in steps},
        "transport": statistics.median(transport),
        "order": order,
    }


def run(*, rounds: int = ROUNDS) -> Section:
    default = clients.smruntime_client(_CANNED_URL, http_client=CannedHTTPClient())
    boto = boto3_canned()
    calls = {"smruntime default stack": clients.smruntime_call(default), "boto3": clients.boto3_call(boto)}
    for name, call in calls.items():
        if call() != b"{}":
            raise SystemExit(f"{name}: the canned answer did not come back")
    samples = interleave(
        {
            "smruntime default stack": per_call(calls["smruntime default stack"], SMRUNTIME_CALLS),
            "boto3": per_call(calls["boto3"], BOTO3_CALLS),
        },
        rounds,
    )
    default.close()
    boto.close()
    ours = median(samples["smruntime default stack"])
    theirs = median(samples["boto3"])
    versus = paired_ratio(samples["smruntime default stack"], samples["boto3"])
    parts = breakdown()
    rows: list[tuple[str, ...]] = [
        ("**smruntime, whole call (no timers)**", f"**{ours * 1e6:.1f}**", spread(samples["smruntime default stack"]),
         ratio(versus)),
        ("**boto3, whole call**", f"**{theirs * 1e6:.1f}**", spread(samples["boto3"]), "1.00x"),
    ]
    step_of = _step_of(parts["order"])
    for step, seconds in parts["steps"].items():
        rows.append((f"{step}", f"{seconds * 1e6:.1f}", "", ""))
        for name, own in parts["middleware"].items():
            if step_of.get(name) == step:
                rows.append((f"&nbsp;&nbsp;&nbsp;&nbsp;{name}", f"{own * 1e6:.1f}", "", ""))
    rows.append(("canned HTTP exchange (building the response)", f"{parts['transport'] * 1e6:.1f}", "", ""))
    timed_sum = sum(parts["steps"].values()) + parts["transport"]
    rows.append(("outside the stack (client call, Context, step hand-offs), by difference",
                 f"{max(ours - timed_sum, 0.0) * 1e6:.1f}", "", ""))
    data = {
        "smruntime_us": ours * 1e6,
        "boto3_us": theirs * 1e6,
        "smruntime_vs_boto3": versus,
        "samples_us": {name: [v * 1e6 for v in values] for name, values in samples.items()},
        "steps_us": {name: value * 1e6 for name, value in parts["steps"].items()},
        "middleware_us": {name: value * 1e6 for name, value in parts["middleware"].items()},
        "transport_us": parts["transport"] * 1e6,
        "rounds": rounds,
    }
    return Section(
        "in_process",
        "2. In-process cost (canned response, no network)",
        table(["where", "µs per call (median)", "spread", "vs boto3"], rows),
        data,
        [
            f"Whole-call figures: {SMRUNTIME_CALLS} smruntime / {BOTO3_CALLS} boto3 calls per round, {rounds} "
            "interleaved rounds, median of the rounds.",
            f"Breakdown: `record_timings` on a separate client, medians over {TIMED_CALLS} calls; each middleware's "
            "own time, its `next` excluded. The timers add about 1 µs per middleware, so the breakdown adds up to "
            "more than the untimed whole call; 'outside the stack' is the untimed total minus the timed parts "
            "(0 when the timers' overhead exceeds it).",
        ],
    )


def _step_of(order: list[str]) -> dict[str, str]:
    step = ""
    found: dict[str, str] = {}
    for name in order[1:]:
        if name in STEP_ORDER:
            step = name
        else:
            found[name] = step
    return found


if __name__ == "__main__":
    standalone(run)
