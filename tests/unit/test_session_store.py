"""The local endpoint's session store stays bounded: expired sessions go, the oldest give way."""

from __future__ import annotations

from smruntime.local.sessions import SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_expired_sessions_are_pruned_without_being_looked_up() -> None:
    clock = Clock()
    store = SessionStore(60, clock=clock)
    for _ in range(100):
        store.open("ep", "AllTraffic")
    clock.now += 61

    store.open("ep", "AllTraffic")

    assert len(store) == 1


def test_the_store_never_holds_more_than_its_bound_and_drops_the_oldest() -> None:
    clock = Clock()
    store = SessionStore(3600, clock=clock, max_sessions=10)
    first = store.open("ep", "AllTraffic")
    for _ in range(50):
        clock.now += 1
        store.open("ep", "AllTraffic")
    newest = store.open("ep", "AllTraffic")

    assert len(store) == 10
    assert store.get("ep", first.id) is None
    assert store.get("ep", newest.id) == newest


def test_a_full_store_drops_expired_sessions_before_live_ones_whatever_the_clock_did() -> None:
    clock = Clock()
    store = SessionStore(60, clock=clock, max_sessions=5)
    early = store.open("ep", "AllTraffic")  # expires at 1060
    clock.now -= 100  # the clock steps back: later sessions expire sooner (at 960)
    for _ in range(4):
        store.open("ep", "AllTraffic")
    clock.now = 1_000.0

    kept = store.open("ep", "AllTraffic")

    assert len(store) == 2  # the four expired ones went, the first (still live) stayed
    assert store.get("ep", early.id) == early
    assert store.get("ep", kept.id) == kept


def test_the_default_bound() -> None:
    assert SessionStore(60).max_sessions == 10_000
