"""Coalesced polling: every create waiting in the process shares one `GET /instances` per interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Fetch = Callable[[], list[dict[str, Any]]]
# One `GET /instances` per interval serves every waiter in the process.
POLL_INTERVAL_S = 10.0


@dataclass(frozen=True)
class Listing:
    """One `GET /instances` answer, stamped with when its request was sent."""

    sent_at: float
    instances: Mapping[str, Mapping[str, Any]]

    def with_tag(self, key: str, value: str) -> list[Mapping[str, Any]]:
        return [
            i
            for i in self.instances.values()
            if any(t.get("key") == key and t.get("value") == value for t in i.get("tags") or [])
        ]


class InstanceWatcher:
    """Hands out instance listings; one thread fetches while the others wait for its answer.

    `fresh(t)` returns a listing whose request was sent at or after `t` (fetching at once if
    there is none); `after(listing)` returns the next listing, fetched no sooner than one poll
    interval after the given one, however many threads ask.
    """

    def __init__(
        self,
        fetch: Fetch,
        poll_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.poll_interval = poll_interval
        self._clock = clock
        self._cond = threading.Condition()
        self._latest: Listing | None = None
        self._fetching = False
        self._urgent = False
        self.fetches = 0

    def fresh(self, not_before: float) -> Listing:
        return self._get(not_before, earliest=None)

    def after(self, seen: Listing) -> Listing:
        return self._get(seen.sent_at + 1e-9, earliest=seen.sent_at + self.poll_interval)

    def _get(self, not_before: float, earliest: float | None) -> Listing:
        with self._cond:
            while True:
                if self._latest is not None and self._latest.sent_at >= not_before:
                    return self._latest
                if not self._fetching:
                    self._fetching = True
                    self._urgent = earliest is None
                    break
                if earliest is None:
                    self._urgent = True
                    self._cond.notify_all()
                self._cond.wait()
            # We lead this round: wait out the poll interval unless someone needs a fresh answer.
            while earliest is not None and not self._urgent:
                remaining = earliest - self._clock()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        try:
            sent_at = self._clock()
            listing = Listing(sent_at, {i["id"]: i for i in self._fetch()})
        except BaseException:
            with self._cond:
                self._fetching = False
                self._cond.notify_all()
            raise
        with self._cond:
            self.fetches += 1
            self._latest = listing
            self._fetching = False
            self._urgent = False
            self._cond.notify_all()
        return listing


_WATCHERS: dict[tuple[str, str, float], InstanceWatcher] = {}
_WATCHERS_LOCK = threading.Lock()


def watcher_for(endpoint_key: tuple[str, str, float], fetch: Fetch, poll_interval: float) -> InstanceWatcher:
    """One watcher per (endpoint, key fingerprint, time scale) in the process."""
    with _WATCHERS_LOCK:
        if endpoint_key not in _WATCHERS:
            _WATCHERS[endpoint_key] = InstanceWatcher(fetch, poll_interval)
        return _WATCHERS[endpoint_key]
