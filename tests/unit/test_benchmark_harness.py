"""The benchmark harness's interleaving: every contender runs each round, in turned order."""

from __future__ import annotations

from typing import Callable

from benchmarks.common import interleave, round_order


def test_rounds_alternate_their_order_and_the_warm_up_is_not_kept() -> None:
    ran: list[str] = []

    def batch(name: str, value: float) -> tuple[str, Callable[[], float]]:
        def run() -> float:
            ran.append(name)
            return value

        return name, run

    samples = interleave(dict([batch("a", 1.0), batch("b", 2.0), batch("c", 3.0)]), rounds=3, warmup=1)

    assert ran == ["a", "b", "c", "c", "b", "a", "a", "b", "c", "c", "b", "a"]
    assert samples == {"a": [1.0] * 3, "b": [2.0] * 3, "c": [3.0] * 3}


def test_round_order_keeps_the_values() -> None:
    assert round_order({"x": 1, "y": 2}, 0) == [("x", 1), ("y", 2)]
    assert round_order({"x": 1, "y": 2}, 1) == [("y", 2), ("x", 1)]
