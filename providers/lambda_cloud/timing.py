"""Time scale and process-wide request pacing.

`LAMBDA_API_TIME_SCALE` multiplies every built-in interval (pacing, polling, backoff,
wait timeouts), so tests and benchmarks run the real logic quickly.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

# The API's documented limits: about 1 request/s overall; launches 1 per 12 s (5/min).
GENERAL_INTERVAL_S = 1.0
LAUNCH_INTERVAL_S = 12.0
# Keep a little under the limits so clock skew between us and the API never costs a 429.
PACING_MARGIN = 1.05


def time_scale() -> float:
    raw = os.environ.get("LAMBDA_API_TIME_SCALE", "1.0")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"LAMBDA_API_TIME_SCALE must be a positive number, got {raw!r}") from None
    if not scale > 0:
        raise ValueError(f"LAMBDA_API_TIME_SCALE must be a positive number, got {raw!r}")
    return scale


def scaled(seconds: float) -> float:
    return seconds * time_scale()


class Pacer:
    """Hands out send times at least `interval` apart, first come first served, across threads.

    Each caller reserves the next free slot under a lock, then sleeps outside it, so a
    burst of threads is spread evenly instead of racing (as a token bucket polled in a
    loop would). Reservation order is arrival order, so no caller starves.
    """

    def __init__(
        self,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free = float("-inf")

    def wait(self, *also: Pacer) -> None:
        """Sleep until a slot free on this pacer and on every pacer in `also` (booked together)."""
        delay = reserve_together(self, *also) - self._clock()
        if delay > 0:
            self._sleep(delay)


def reserve_together(*pacers: Pacer) -> float:
    """Claim one send time free on every pacer, so a launch also holds a general slot.

    Locks are taken in a fixed order (by id) so two callers can never deadlock.
    """
    ordered = sorted(pacers, key=id)
    for pacer in ordered:
        pacer._lock.acquire()
    try:
        slot = max(pacers[0]._clock(), *(p._next_free for p in pacers))
        for pacer in pacers:
            pacer._next_free = slot + pacer.interval
        return slot
    finally:
        for pacer in reversed(ordered):
            pacer._lock.release()


class Pacers:
    """The general and launch pacers for one API endpoint."""

    def __init__(self, scale: float) -> None:
        self.general = Pacer(GENERAL_INTERVAL_S * PACING_MARGIN * scale)
        self.launch = Pacer(LAUNCH_INTERVAL_S * PACING_MARGIN * scale)


_PACERS: dict[tuple[str, float], Pacers] = {}
_PACERS_LOCK = threading.Lock()


def pacers_for(base_url: str) -> Pacers:
    """One set of pacers per endpoint and process: every client and thread shares them."""
    key = (base_url, time_scale())
    with _PACERS_LOCK:
        if key not in _PACERS:
            _PACERS[key] = Pacers(key[1])
        return _PACERS[key]
