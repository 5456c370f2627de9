from __future__ import annotations

import threading

import pytest

from providers.lambda_cloud.client import ApiKey, LambdaCloudClient
from providers.lambda_cloud.timing import Pacer, reserve_together, time_scale
from providers.lambda_cloud.watcher import InstanceWatcher


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pacer_spaces_slots_first_come_first_served() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, sleep=clock.sleep)
    slots = [reserve_together(pacer) for _ in range(4)]
    assert slots == [100.0, 101.0, 102.0, 103.0]
    clock.now = 110.0
    assert reserve_together(pacer) == 110.0


def test_launch_slot_also_holds_a_general_slot() -> None:
    clock = FakeClock()
    general = Pacer(1.0, clock=clock, sleep=clock.sleep)
    launch = Pacer(12.0, clock=clock, sleep=clock.sleep)
    assert reserve_together(general) == 100.0
    assert reserve_together(general) == 101.0
    assert reserve_together(launch, general) == 102.0  # waits for the general slot too
    assert reserve_together(general) == 103.0
    assert reserve_together(launch, general) == 114.0  # 12 s after the previous launch


def test_wait_sleeps_until_the_slot() -> None:
    clock = FakeClock()
    pacer = Pacer(2.0, clock=clock, sleep=clock.sleep)
    pacer.wait()
    pacer.wait()
    assert clock.now == 102.0


@pytest.mark.parametrize("raw", ["0", "-1", "fast", "nan"])
def test_time_scale_must_be_positive(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("LAMBDA_API_TIME_SCALE", raw)
    with pytest.raises(ValueError, match="LAMBDA_API_TIME_SCALE"):
        time_scale()


def test_watcher_coalesces_waiters_into_one_fetch_per_interval() -> None:
    fetches: list[int] = []

    def fetch() -> list[dict[str, object]]:
        fetches.append(1)
        return [{"id": "a", "status": "booting"}]

    watcher = InstanceWatcher(fetch, poll_interval=0.05)
    first = watcher.fresh(0.0)
    results = []
    lock = threading.Lock()

    def waiter() -> None:
        listing = watcher.after(first)
        with lock:
            results.append(listing)

    threads = [threading.Thread(target=waiter) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fetches) == 2  # the first, then one shared by all twenty waiters
    assert len({id(r) for r in results}) == 1
    assert results[0].sent_at >= first.sent_at + 0.05


def test_fresh_listing_is_sent_after_the_given_time() -> None:
    watcher = InstanceWatcher(lambda: [], poll_interval=10.0)
    first = watcher.fresh(0.0)
    assert watcher.fresh(first.sent_at) is first
    second = watcher.fresh(first.sent_at + 1e-6)
    assert second.sent_at > first.sent_at


def test_failed_fetch_lets_the_next_caller_try() -> None:
    calls = []

    def flaky() -> list[dict[str, object]]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return []

    watcher = InstanceWatcher(flaky, poll_interval=0.0)
    with pytest.raises(RuntimeError):
        watcher.fresh(0.0)
    assert watcher.fresh(0.0).instances == {}


def test_clients_of_one_endpoint_share_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each engine call unpickles its own provider and client: pacing must be per process, not per client."""
    monkeypatch.setenv("LAMBDA_API_TIME_SCALE", "1.0")
    first = LambdaCloudClient(ApiKey("a" * 10), "https://example.invalid/api/v1")
    second = LambdaCloudClient(ApiKey("b" * 10), "https://example.invalid/api/v1/")
    other = LambdaCloudClient(ApiKey("a" * 10), "https://other.invalid/api/v1")
    assert first.pacers is second.pacers
    assert first.pacers is not other.pacers
