"""The harness every benchmark shares: interleaved rounds, medians, tables, the machine."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import attrs

REPO = Path(__file__).resolve().parents[1]

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"  # the AWS documentation's example key
REGION = "us-east-1"

Batch = Callable[[], float]
"""Runs one batch of calls and returns the time per call, in seconds."""


@attrs.define
class Section:
    """One question's answer: a Markdown table, notes, and the raw figures (for JSON and the chart)."""

    key: str
    title: str
    table: str
    data: dict[str, Any]
    notes: list[str] = attrs.field(factory=list)

    def markdown(self) -> str:
        parts = [f"## {self.title}", "", self.table]
        if self.notes:
            parts += ["", *(f"- {note}" for note in self.notes)]
        return "\n".join(parts) + "\n"


def isolate_aws_env() -> None:
    """No shared config, credentials files or instance metadata: every client gets what we pass."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
                 "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(subprocess_env_overrides())


def subprocess_env_overrides() -> dict[str, str]:
    return {
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REGION": REGION,
    }


def subprocess_env() -> dict[str, str]:
    """The environment of a fresh benchmark process: this checkout importable, AWS isolated."""
    env = dict(os.environ)
    env.update(subprocess_env_overrides())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
    return env


@contextlib.contextmanager
def client_apart_from_servers() -> Iterator[Callable[[], list[int]]]:
    """Servers started inside get every CPU but one; calling the function yielded (once they are up)
    moves this process's thread to that one CPU and returns it as a list. The affinity comes back at
    the end. Unpinned, the scheduler decides per run whether a round trip between a client and its
    server crosses cores, which moves a round trip by tens of microseconds from run to run.
    Without ``sched_setaffinity`` or with one CPU nothing is pinned (the function returns ``[]``)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
    if len(cpus) < 2:
        yield list
        return

    def pin_client() -> list[int]:
        os.sched_setaffinity(0, cpus[:1])
        return cpus[:1]

    os.sched_setaffinity(0, cpus[1:])
    try:
        yield pin_client
    finally:
        os.sched_setaffinity(0, cpus)


def per_call(fn: Callable[[], object], calls: int) -> Batch:
    """A batch that makes ``calls`` calls of ``fn``."""

    def batch() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - start) / calls

    return batch


T = TypeVar("T")


def round_order(contenders: Mapping[str, T], index: int) -> list[tuple[str, T]]:
    """The contenders in the order round ``index`` runs them: A B C, then C B A, and so on.

    A contender inherits the CPU caches and the allocator's free memory its predecessor left,
    so none should always follow the same one; with an even number of kept rounds, each order
    runs equally often.
    """
    order = list(contenders.items())
    return order if index % 2 == 0 else order[::-1]


def interleave(batches: Mapping[str, Batch], rounds: int, *, warmup: int = 1) -> dict[str, list[float]]:
    """Run the batches in rounds (in :func:`round_order`), so that drift and load spikes hit them all.

    The first ``warmup`` rounds are not kept.
    """
    samples: dict[str, list[float]] = {name: [] for name in batches}
    for index in range(warmup + rounds):
        for name, batch in round_order(batches, index):
            value = batch()
            if index >= warmup:
                samples[name].append(value)
    return samples


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def paired_ratio(values: Sequence[float], baseline: Sequence[float]) -> float:
    """The median of per-round ratios: each round's two figures were taken side by side, so a
    slow stretch of the machine cancels out instead of landing on one contender."""
    return median([value / base for value, base in zip(values, baseline, strict=True)])


def spread(values: Sequence[float]) -> str:
    """The samples' range relative to their median, e.g. ``±4%``."""
    mid = median(values)
    if not mid or len(values) < 2:
        return "-"
    return f"±{max(abs(max(values) - mid), abs(mid - min(values))) / mid * 100:.0f}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A Markdown table; ``align`` has one letter per column, ``l`` or ``r`` (default: l then r…)."""
    align = align or "l" + "r" * (len(headers) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("boto3", "botocore", "requests", "urllib3", "attrs", "tenacity"):
        try:
            from importlib.metadata import version

            versions[package] = version(package)
        except Exception:  # not installed: nothing to report
            versions[package] = "-"
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": versions,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def machine_line(info: Mapping[str, Any]) -> str:
    return f"{info['nproc']} CPUs ({info['cpu']}), {info['implementation']} {info['python']}, {info['platform']}"


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def standalone(run: Callable[[], Section]) -> None:
    """``python -m benchmarks.<name>``: run one question and print its table."""
    isolate_aws_env()
    section = run()
    print(f"{machine_line(machine())}\n")
    print(section.markdown())
    sys.stdout.flush()


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}"


def ratio(value: float) -> str:
    return f"{value:.2f}x"
