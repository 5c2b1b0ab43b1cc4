"""The batch command's bounded bookkeeping: latency percentiles and the finished-record set."""

from __future__ import annotations

import pytest

from smruntime.batch_cli import IndexSet, LatencyHistogram


def test_latency_histogram_percentiles_within_one_percent() -> None:
    histogram = LatencyHistogram()
    for ms in range(1, 1001):
        histogram.add(ms / 1000)
    assert histogram.percentile(0.5) == pytest.approx(0.501, rel=0.01)
    assert histogram.percentile(0.99) == pytest.approx(0.991, rel=0.01)
    assert LatencyHistogram().percentile(0.5) == 0.0


def test_index_set_remembers_indices_in_a_bit_each() -> None:
    done = IndexSet()
    for index in (0, 7, 8, 100_000):
        done.add(index)
    done.add(7)
    assert [i for i in (0, 1, 7, 8, 9, 100_000, 10**9) if i in done] == [0, 7, 8, 100_000]
    assert len(done) == 4
