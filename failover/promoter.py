"""The promoter: when the primary is down, make the DR PostgreSQL the primary, fenced by the lease.

It promotes only when both hold: the primary's Route 53 health check fails (traffic is already going
to DR) and the primary's lease has expired (its guard has not renewed it for a lease and a margin, so
that guard has fenced its database or cannot take writes). It then takes the lease over with a
conditional write (only one promoter can win), promotes the DR database, and pins the primary's
health check to unhealthy so Route 53 keeps answering with DR when the primary comes back: failing
back is a deliberate step (`python -m failover.cli failback`), never automatic.

Every action is idempotent; a promoter that finds DR already holding the lease applies them again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from failover.lease import DR, Lease, LeaseStore

# The guard renews every RENEW_SECONDS and fences its database after SELF_FENCE_SECONDS without a
# renewal; the promoter waits LEASE_SECONDS + MARGIN_SECONDS, so the primary is fenced first even
# with a few seconds of clock skew between the regions.
RENEW_SECONDS = 5.0
SELF_FENCE_SECONDS = 15.0
LEASE_SECONDS = 20.0
MARGIN_SECONDS = 5.0
POLL_SECONDS = 5.0
# EventBridge invokes the promoter every SCHEDULE_SECONDS; each invocation polls for RUN_SECONDS, so
# between two invocations nobody polls for at most SCHEDULE_SECONDS - RUN_SECONDS. The function's
# timeout leaves room for a last step (two AWS calls and the EKS call, 10 s each at most).
SCHEDULE_SECONDS = 60
RUN_SECONDS = 50.0
FUNCTION_TIMEOUT_SECONDS = 85
# From naming DR the primary to a writable primary: CloudNativePG's reconcile and pg_promote.
PROMOTION_ALLOWANCE_SECONDS = 15.0


def worst_case_promotion_seconds() -> float:
    """From the primary's death to a writable DR database, at worst: its last renewal was just
    before it died, so the lease and margin run out at most LEASE + MARGIN later; a poll may just
    have missed it, or fallen in the gap between invocations; then the promotion itself."""
    gap = SCHEDULE_SECONDS - RUN_SECONDS
    return LEASE_SECONDS + MARGIN_SECONDS + max(POLL_SECONDS, gap) + PROMOTION_ALLOWANCE_SECONDS


class Promotion(Protocol):
    def promote_database(self) -> None:
        """Make the DR database the primary (idempotent)."""

    def pin_traffic_to_dr(self) -> None:
        """Keep Route 53 on DR even once the primary's health check passes again (idempotent)."""


@dataclass(frozen=True)
class Timing:
    lease_seconds: float = LEASE_SECONDS
    margin_seconds: float = MARGIN_SECONDS


@dataclass(frozen=True)
class Outcome:
    promoted: bool
    reason: str
    lease: Lease | None


class Promoter:
    def __init__(
        self,
        store: LeaseStore,
        primary_healthy: Callable[[], bool],
        promotion: Promotion,
        *,
        timing: Timing = Timing(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.primary_healthy = primary_healthy
        self.promotion = promotion
        self.timing = timing
        self.clock = clock

    def step(self) -> Outcome:
        lease = self.store.read()
        if lease is None:
            return Outcome(False, "no lease: the primary's guard has never run, nothing to fail over from", None)
        if lease.holder == DR:
            self._promote()
            return Outcome(True, f"DR holds the lease (epoch {lease.epoch})", lease)
        if self.primary_healthy():
            return Outcome(False, "the primary's health check passes", lease)
        now = self.clock()
        wait = self.timing.lease_seconds + self.timing.margin_seconds
        if not lease.expired(now, wait):
            left = wait - (now - lease.renewed_at)
            return Outcome(False, f"the primary is unhealthy; its lease runs {left:.0f}s more", lease)
        taken = self.store.take_over(lease, DR, now)
        if taken is None:
            return Outcome(False, "the lease changed under us (the primary renewed, or another promoter won)", lease)
        self._promote()
        return Outcome(True, f"took the lease over (epoch {taken.epoch}) and promoted", taken)

    def run(
        self, seconds: float, poll_seconds: float = POLL_SECONDS, sleep: Callable[[float], None] = time.sleep
    ) -> Outcome:
        """Step every `poll_seconds` for about `seconds` (one Lambda invocation), stopping once promoted."""
        deadline = self.clock() + seconds
        outcome = self.step()
        while not outcome.promoted and self.clock() + poll_seconds < deadline:
            sleep(poll_seconds)
            outcome = self.step()
        return outcome

    def _promote(self) -> None:
        self.promotion.promote_database()
        self.promotion.pin_traffic_to_dr()
