"""(1) µs per call against a loopback keep-alive server that answers at once.

boto3 (standard retry mode), a raw ``http.client`` keep-alive POST (the floor: no signing, no
parsing beyond HTTP), smruntime's default client and its fastest configuration, each making
``CALLS`` calls per round on its own warm connection, in interleaved rounds; medians of rounds.
"""

from __future__ import annotations

from benchmarks import clients
from benchmarks.common import Section, interleave, median, paired_ratio, per_call, ratio, spread, standalone, table
from benchmarks.server import LoopbackServer

CALLS = 400
ROUNDS = 16


def run(server: LoopbackServer | None = None, *, calls: int = CALLS, rounds: int = ROUNDS) -> Section:
    if server is None:
        with LoopbackServer() as own:
            return run(own, calls=calls, rounds=rounds)
    url = server.url
    boto = clients.boto3_client(url)
    raw = clients.RawHTTP(url)
    default = clients.smruntime_client(url)
    fastest = clients.smruntime_client(url, fast=True)
    calls_by_name: dict[str, clients.Call] = {
        "boto3": clients.boto3_call(boto),
        "http.client (floor)": raw,
        "smruntime default": clients.smruntime_call(default),
        "smruntime fastest": clients.smruntime_call(fastest),
    }
    for name, call in calls_by_name.items():
        if call() != b"{}":
            raise SystemExit(f"{name}: unexpected answer from the benchmark server")
    try:
        samples = interleave({name: per_call(call, calls) for name, call in calls_by_name.items()}, rounds)
    finally:
        raw.close()
        default.close()
        fastest.close()
        boto.close()
    medians = {name: median(values) for name, values in samples.items()}
    floor = samples["http.client (floor)"]
    boto3 = samples["boto3"]
    rows = [
        (name, f"{value * 1e6:,.0f}", spread(samples[name]), ratio(paired_ratio(samples[name], boto3)),
         ratio(paired_ratio(samples[name], floor)))
        for name, value in medians.items()
    ]
    data = {
        "calls_per_round": calls,
        "rounds": rounds,
        "us_per_call": {name: value * 1e6 for name, value in medians.items()},
        "samples_us": {name: [v * 1e6 for v in values] for name, values in samples.items()},
        "default_vs_boto3": paired_ratio(samples["smruntime default"], boto3),
        "fastest_vs_floor": paired_ratio(samples["smruntime fastest"], floor),
    }
    return Section(
        "per_call",
        "1. Time per call (loopback keep-alive server)",
        table(["client", "µs per call (median)", "spread", "vs boto3", "vs http.client"], rows),
        data,
        [
            f"{calls} calls per round, {rounds} interleaved rounds (plus one warm-up round), median of the rounds; "
            "ratios are medians of the per-round ratios.",
            "smruntime fastest = the default stack (signing, retries, validation) on `FastHTTPClient`.",
        ],
    )


if __name__ == "__main__":
    standalone(run)
