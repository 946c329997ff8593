"""GCRA arithmetic (shared by the Lua script and the in-memory fallback) and the fallback store."""

from __future__ import annotations

from spotless.lib.ratelimit.fallback import MemoryGCRA, gcra

SECOND = 1_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000 * SECOND

    def __call__(self) -> int:
        return self.now


def test_idle_caller_gets_the_burst_then_one_per_interval():
    clock = FakeClock()
    store = MemoryGCRA(300, clock_us=clock)
    interval = 2 * SECOND  # 30 per minute
    outcomes = [store.hit("k", interval, burst=5) for _ in range(7)]
    assert [o[0] for o in outcomes] == [True] * 5 + [False] * 2
    assert [o[1] for o in outcomes[:5]] == [4, 3, 2, 1, 0]
    refused = outcomes[5]
    assert refused[2] == interval  # retry after one interval
    clock.now += interval - 1
    assert store.hit("k", interval, burst=5)[0] is False
    clock.now += 1
    assert store.hit("k", interval, burst=5)[0] is True
    assert store.hit("k", interval, burst=5)[0] is False


def test_refusals_do_not_push_the_reset_further():
    clock = FakeClock()
    store = MemoryGCRA(300, clock_us=clock)
    for _ in range(3):
        store.hit("k", SECOND, burst=3)
    first = store.hit("k", SECOND, burst=3)
    for _ in range(50):
        store.hit("k", SECOND, burst=3)
    assert store.hit("k", SECOND, burst=3)[2:] == first[2:]


def test_reset_after_is_the_time_until_the_quota_is_whole():
    outcome, new_tat = gcra(None, now=0, interval=SECOND, burst=10)
    assert outcome == (True, 9, 0, SECOND)
    outcome, _ = gcra(new_tat, now=0, interval=SECOND, burst=10)
    assert outcome == (True, 8, 0, 2 * SECOND)


def test_keys_are_independent():
    store = MemoryGCRA(300, clock_us=FakeClock())
    assert store.hit("a", SECOND, burst=1)[0] and store.hit("b", SECOND, burst=1)[0]
    assert not store.hit("a", SECOND, burst=1)[0]


def test_cleanup_drops_only_entries_that_limit_nobody():
    clock = FakeClock()
    store = MemoryGCRA(60, clock_us=clock)
    store.hit("old", SECOND, burst=5)
    clock.now += 30 * SECOND
    for _ in range(5):
        store.hit("busy", 60 * SECOND, burst=5)  # full for five minutes
    assert store.cleanup() == 1
    assert len(store) == 1
    assert store.hit("busy", 60 * SECOND, burst=5)[0] is False


def test_cleanup_runs_by_itself_every_interval():
    clock = FakeClock()
    store = MemoryGCRA(60, clock_us=clock)
    for i in range(100):
        store.hit(f"k{i}", SECOND, burst=5)
    assert len(store) == 100
    clock.now += 61 * SECOND
    store.hit("new", SECOND, burst=5)
    assert len(store) == 1


def test_a_flood_of_distinct_callers_is_bounded():
    clock = FakeClock()
    store = MemoryGCRA(3600, max_keys=1000, clock_us=clock)
    for i in range(5000):
        store.hit(f"k{i}", 60 * SECOND, burst=5)
    assert len(store) <= 1001
