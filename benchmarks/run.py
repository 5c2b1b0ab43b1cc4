"""Run every benchmark against one loopback server; write tables, targets and a chart.

``python -m benchmarks.run [--out DIR]`` (what ``make bench`` runs) writes into DIR, by default
``benchmarks/out/`` (not tracked): ``results.md`` (the machine, the targets, every table),
``results.json`` (all figures) and ``benchmarks.png``. It takes about six minutes on two cores
(half of it the bulk-scoring section).
The committed figures in ``benchmarks/results/`` change only when asked:
``make bench BENCH_OUT=benchmarks/results``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks import (
    async_concurrency,
    async_per_call,
    bench_eventstream,
    bidi,
    bulk,
    cold_start,
    concurrency,
    in_process,
    per_call,
    stream_memory,
    tracing,
)
from benchmarks.common import REPO, Section, isolate_aws_env, machine, machine_line, table, write_json
from benchmarks.server import LoopbackServer


def _target(name: str, goal: str, value: float, shown: str, met: bool) -> dict[str, Any]:
    return {"target": name, "goal": goal, "value": value, "measured": shown, "met": met}


def targets(by_key: dict[str, Section]) -> list[dict[str, Any]]:
    """Each performance target, measured in this run."""
    call = by_key["per_call"].data
    inproc = by_key["in_process"].data
    cold = by_key["cold_start"].data
    events = by_key["eventstream"].data["cases"]
    threads = by_key["concurrency"].data
    memory = by_key["stream_memory"].data
    pool = threads["max_pool_connections"]
    ours = ("smruntime default", "smruntime fastest")
    connections = max(threads["connections_max"][name] for name in ours)
    growth = max(memory[name]["peak_growth_mib"] for name in ours if name in memory)
    return [
        _target("Default client, time per call", "≤ 0.5 x boto3", call["default_vs_boto3"],
                f"{call['default_vs_boto3']:.2f} x boto3", call["default_vs_boto3"] <= 0.5),
        _target("Fastest configuration, time per call", "≤ 1.3 x raw http.client", call["fastest_vs_floor"],
                f"{call['fastest_vs_floor']:.2f} x http.client", call["fastest_vs_floor"] <= 1.3),
        _target("In-process cost, default stack", "≤ 50 µs", inproc["smruntime_us"],
                f"{inproc['smruntime_us']:.1f} µs (boto3 {inproc['boto3_us']:.0f} µs; "
                f"{inproc['smruntime_vs_boto3']:.3f} x boto3)", inproc["smruntime_us"] <= 50),
        *(
            _target(f"Cold start to first answer, {label}", "≤ 0.5 x boto3", cold[key],
                    f"{cold[key]:.2f} x boto3 (floor {cold['floor_vs_boto3']:.2f} x)", cold[key] <= 0.5)
            for label, key in (
                ("fastest configuration", "fastest_vs_boto3"),
                ("default client", "smruntime_vs_boto3"),
                ("default client, env credentials, endpoint_url", "env_endpoint_url_vs_boto3"),
                ("default client, env credentials, regional endpoint", "env_regional_vs_boto3"),
            )
        ),
        _target("Event-stream decoding, 64-byte PayloadParts", "≥ 3 x botocore msgs/s",
                events["small_payloadpart"]["speedup"], f"{events['small_payloadpart']['speedup']:.1f} x botocore",
                events["small_payloadpart"]["speedup"] >= 3),
        *(
            _target(f"Event-stream decoding, one 16 MiB message in {size} KiB chunks", "≥ 10 x botocore",
                    events[f"large_{size}k"]["speedup"], f"{events[f'large_{size}k']['speedup']:.1f} x botocore",
                    events[f"large_{size}k"]["speedup"] >= 10)
            for size in (16, 64)
        ),
        _target("16 threads, one default client", "≥ 2 x boto3 calls/s", threads["default_vs_boto3"],
                f"{threads['default_vs_boto3']:.2f} x boto3", threads["default_vs_boto3"] >= 2),
        _target("16 threads, connections opened", f"≤ max_pool_connections ({pool})", connections,
                f"{connections}", connections <= pool),
        _target("1 GiB streamed through one call, peak RSS growth", "≤ 32 MiB", growth, f"{growth:.2f} MiB",
                growth <= 32),
        *(
            _target("1 GiB streamed through one AsyncClient call, peak RSS growth", "≤ 32 MiB", grown,
                    f"{grown:.2f} MiB", grown <= 32)
            for grown in [memory[name]["peak_growth_mib"] for name in ("AsyncClient",) if name in memory]
        ),
        *_tracing_targets(by_key),
        *_async_targets(by_key),
        *bidi.targets(by_key["bidi"]),
        *_bulk_targets(by_key),
    ]


def _async_targets(by_key: dict[str, Section]) -> list[dict[str, Any]]:
    if "async_per_call" not in by_key:
        return []
    versus = by_key["async_per_call"].data["default_vs_aiobotocore"]
    found = [_target("AsyncClient, time per call", "≤ 0.3 x aiobotocore", versus, f"{versus:.2f} x aiobotocore",
                     versus <= 0.3)]
    if "async_concurrency" in by_key:
        waiting = by_key["async_concurrency"].data
        versus = waiting["default_vs_aiobotocore"]
        pool = waiting["max_pool_connections"]
        opened = waiting["connections_opened"][async_concurrency.DEFAULT]
        found += [
            _target("AsyncClient, 256 calls in flight, server answers after 10 ms", "≥ 3 x aiobotocore calls/s",
                    versus, f"{versus:.2f} x aiobotocore", versus >= 3),
            _target("AsyncClient, 256 calls in flight, connections opened", f"≤ max_pool_connections ({pool})",
                    opened, f"{opened}", opened <= pool),
        ]
    return found


def _bulk_targets(by_key: dict[str, Section]) -> list[dict[str, Any]]:
    if "bulk" not in by_key:
        return []
    data = by_key["bulk"].data
    speed, capped, big = data["throughput"], data["throttling"], data["memory"]
    batch_rate = speed["records_per_s"]["smruntime batch"]
    of_limit = batch_rate / speed["limit_per_s"]
    settled = capped["settled_per_s"] / capped["allowed_per_s"]
    return [
        _target("Bulk: smruntime batch, 64 in flight", "≥ 2 x ThreadPool(64)+boto3", speed["batch_vs_boto3"],
                f"{speed['batch_vs_boto3']:.2f} x boto3", speed["batch_vs_boto3"] >= 2),
        _target("Bulk: smruntime batch, share of the model's limit (64 / 20 ms)", "≥ 80 %", of_limit,
                f"{of_limit:.0%}", of_limit >= 0.8),
        _target("Bulk: throttling endpoint, settled rate", "≥ 80 % of what it allows", settled,
                f"{settled:.0%} ({capped['answered']:,}/{capped['records']:,} answered)",
                settled >= 0.8 and capped["answered"] == capped["records"]),
        _target(f"Bulk: {big['records']:,} records streamed, peak RSS growth", "≤ 64 MiB", big["peak_growth_mib"],
                f"{big['peak_growth_mib']:.1f} MiB", big["peak_growth_mib"] <= 64),
    ]


def _tracing_targets(by_key: dict[str, Section]) -> list[dict[str, Any]]:
    if "tracing" not in by_key:
        return []
    cost = by_key["tracing"].data["overhead_us"]["no-op providers"]
    return [_target("Tracing middleware, no-op providers, cost per call", f"≤ {tracing.GOAL_US:.0f} µs", cost,
                    f"{cost:.1f} µs", cost <= tracing.GOAL_US)]


def chart(by_key: dict[str, Section], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(16, 9))
    colors = {"boto3": "#999999", "http.client (floor)": "#cccccc", "smruntime default": "#1f77b4",
              "smruntime fastest": "#2ca02c", "smruntime default stack": "#1f77b4", "smruntime": "#1f77b4",
              "botocore": "#999999"}

    def bars(axis: Any, values: dict[str, float], title: str, unit: str, log: bool = False) -> None:
        names = list(values)
        axis.bar(names, [values[n] for n in names], color=[colors.get(n, "#1f77b4") for n in names])
        axis.set_title(title, fontsize=10)
        axis.set_ylabel(unit)
        if log:
            axis.set_yscale("log")
        axis.tick_params(axis="x", labelrotation=20, labelsize=8)
        for index, name in enumerate(names):
            axis.annotate(f"{values[name]:,.0f}" if values[name] >= 10 else f"{values[name]:.2f}",
                          (index, values[name]), ha="center", va="bottom", fontsize=8)

    bars(axes[0][0], by_key["per_call"].data["us_per_call"], "1. Time per call (loopback)", "µs per call")
    inproc = by_key["in_process"].data
    steps = inproc["steps_us"]
    axis = axes[0][1]
    bottom = 0.0
    for step, value in steps.items():
        axis.bar(["smruntime (timed)"], [value], bottom=bottom, label=step.replace(" stack step", ""))
        bottom += value
    axis.bar(["smruntime (timed)"], [inproc["transport_us"]], bottom=bottom, label="canned exchange")
    axis.bar(["smruntime"], [inproc["smruntime_us"]], color=colors["smruntime"])
    axis.bar(["boto3"], [inproc["boto3_us"]], color=colors["boto3"])
    for index, value in enumerate((bottom + inproc["transport_us"], inproc["smruntime_us"], inproc["boto3_us"])):
        axis.annotate(f"{value:,.0f}", (index, value), ha="center", va="bottom", fontsize=8)
    axis.set_title("2. In-process cost per call (canned response)", fontsize=10)
    axis.set_ylabel("µs per call")
    axis.legend(fontsize=7)
    cold = {name: figures["total"] for name, figures in by_key["cold_start"].data["ms"].items()}
    bars(axes[0][2], cold, "3. Cold start: import + client + first call", "ms")
    events = by_key["eventstream"].data["cases"]
    axis = axes[1][0]
    cases = ["small_payloadpart", "small_varied", "small_bare"]
    xs = range(len(cases))
    axis.bar([x - 0.2 for x in xs], [events[c]["smruntime_msgs_per_s"] for c in cases], 0.4, label="smruntime",
             color=colors["smruntime"])
    axis.bar([x + 0.2 for x in xs], [events[c]["botocore_msgs_per_s"] for c in cases], 0.4, label="botocore",
             color=colors["botocore"])
    axis.set_xticks(list(xs), ["PayloadPart", "varied headers", "no headers"], fontsize=8)
    large = events["large_64k"]
    axis.set_title(f"4. Decoding 64-byte messages (16 MiB message: {large['smruntime_ms']:.0f} ms vs "
                   f"{large['botocore_ms']:.0f} ms)", fontsize=10)
    axis.set_ylabel("messages/s")
    axis.legend(fontsize=8)
    bars(axes[1][1], by_key["concurrency"].data["calls_per_s"], "5. 16 threads on one client", "calls/s")
    memory = by_key["stream_memory"].data
    bars(axes[1][2], {name: memory[name]["peak_growth_mib"] for name in stream_memory.CONTENDERS if name in memory},
         "6. 1 GiB stream: peak RSS growth", "MiB")
    figure.suptitle(f"smruntime benchmarks — {machine_line(machine())}", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


DEFAULT_OUT = REPO / "benchmarks" / "out"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where results.md, results.json and benchmarks.png go (default: benchmarks/out)")
    out = parser.parse_args(argv).out
    isolate_aws_env()
    info = machine()
    started = time.perf_counter()
    sections: list[Section] = []

    def step(name: str, run: Callable[[], Section]) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {name} …", file=sys.stderr, flush=True)
        sections.append(run())

    with LoopbackServer() as server:
        step("1. time per call", lambda: per_call.run(server))
        step("2. in-process cost", in_process.run)
        step("3. cold start", lambda: cold_start.run(server))
        step("4. event-stream decoding", bench_eventstream.run)
        step("5. 16 threads", lambda: concurrency.run(server))
        step("6. 1 GiB stream", lambda: stream_memory.run(server))
        step("7. tracing middleware", tracing.run)
        step("8. asyncio", lambda: async_per_call.run(server))
        step("9. asyncio, server answers after 10 ms", async_concurrency.run)
        step("10. bidirectional streaming", bidi.run)
        step("11. bulk scoring", bulk.run)
    elapsed = time.perf_counter() - started
    by_key = {section.key: section for section in sections}
    goals = targets(by_key)
    target_table = table(
        ["target", "goal", "measured", "met"],
        [(goal["target"], goal["goal"], goal["measured"], "yes" if goal["met"] else "**no**") for goal in goals],
        "lllr",
    )
    report = [
        "# smruntime benchmark results",
        "",
        f"Machine: {machine_line(info)}. Packages: "
        + ", ".join(f"{name} {version}" for name, version in info["packages"].items())
        + f". Run on {info['date']}, {elapsed:.0f} s in all.",
        "",
        "## Targets",
        "",
        target_table,
        "",
        *(section.markdown() for section in sections),
        "![benchmarks](benchmarks.png)",
        "",
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text("\n".join(report))
    write_json(out / "results.json", {"machine": info, "seconds": elapsed, "targets": goals,
                                     "sections": {section.key: section.data for section in sections}})
    chart(by_key, str(out / "benchmarks.png"))
    print("\n".join(report))
    print(f"\nwrote {out / 'results.md'}, results.json and benchmarks.png in {elapsed:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
