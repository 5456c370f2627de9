"""The lease on the PostgreSQL primary role, one DynamoDB item both regions write conditionally.

The primary's guard renews it every few seconds while it holds it; the DR promoter may take it over
(epoch + 1) only once it has expired and the primary's health check fails. Whoever does not hold it
must not take writes: the guard fences the primary's database when the holder is not the primary,
or when it could not renew for most of a lease (it may be cut off while DR takes over).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

PRIMARY = "primary"
DR = "dr"
ITEM_KEY = "postgres"


@dataclass(frozen=True)
class Lease:
    holder: str
    """`primary` or `dr`: the region whose database may take writes."""
    epoch: int
    """Raised by one at every takeover; conditional writes compare it."""
    renewed_at: float
    """Seconds since the epoch, by the holder's clock (clocks are NTP-synced; the timing has a margin)."""

    def expired(self, now: float, lease_seconds: float) -> bool:
        return now - self.renewed_at > lease_seconds


class LeaseStore(Protocol):
    def read(self) -> Lease | None: ...

    def create(self, holder: str, now: float) -> Lease | None:
        """The first lease (epoch 1), unless one exists."""

    def renew(self, lease: Lease, now: float) -> bool:
        """Renew `lease` if the item still has its holder and epoch."""

    def take_over(self, lease: Lease, holder: str, now: float) -> Lease | None:
        """Give the lease to `holder` with epoch + 1, if the item is still at `lease.epoch`."""


class DynamoLeaseStore:
    """The lease as item `postgres` of a DynamoDB table (key attribute `id`), read consistently."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table
        self._key = {"id": {"S": ITEM_KEY}}

    def read(self) -> Lease | None:
        item = self.client.get_item(TableName=self.table, Key=self._key, ConsistentRead=True).get("Item")
        if not item:
            return None
        return Lease(item["holder"]["S"], int(item["epoch"]["N"]), float(item["renewed_at"]["N"]))

    def create(self, holder: str, now: float) -> Lease | None:
        lease = Lease(holder, 1, now)
        return lease if self._put(lease, "attribute_not_exists(id)", {}) else None

    def renew(self, lease: Lease, now: float) -> bool:
        return self._update(
            "SET renewed_at = :now",
            "holder = :holder AND epoch = :epoch",
            {":now": {"N": repr(now)}, ":holder": {"S": lease.holder}, ":epoch": {"N": str(lease.epoch)}},
        )

    def take_over(self, lease: Lease, holder: str, now: float) -> Lease | None:
        taken = Lease(holder, lease.epoch + 1, now)
        done = self._update(
            "SET holder = :holder, epoch = :next, renewed_at = :now",
            "epoch = :epoch",
            {
                ":holder": {"S": holder},
                ":next": {"N": str(taken.epoch)},
                ":now": {"N": repr(now)},
                ":epoch": {"N": str(lease.epoch)},
            },
        )
        return taken if done else None

    def _put(self, lease: Lease, condition: str, values: dict[str, Any]) -> bool:
        item = {
            **self._key,
            "holder": {"S": lease.holder},
            "epoch": {"N": str(lease.epoch)},
            "renewed_at": {"N": repr(lease.renewed_at)},
        }
        try:
            self.client.put_item(TableName=self.table, Item=item, ConditionExpression=condition, **_values(values))
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _update(self, update: str, condition: str, values: dict[str, Any]) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key=self._key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _values(values: dict[str, Any]) -> dict[str, Any]:
    return {"ExpressionAttributeValues": values} if values else {}
