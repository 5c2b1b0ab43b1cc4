"""The tracing benchmark runs and reports each client (its figures are not asserted)."""

from __future__ import annotations

from benchmarks import tracing


def test_the_tracing_benchmark_reports_every_client() -> None:
    section = tracing.run(rounds=1)
    assert set(section.data["us_per_call"]) == {"not instrumented", "no-op providers", "SDK, in-memory exporter"}
    assert set(section.data["overhead_us"]) == {"no-op providers", "SDK, in-memory exporter"}
    assert "tracing's cost" in section.markdown()
