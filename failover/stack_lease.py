"""The lease as the Pulumi programs read it: before registering anything, the prod program learns
whether DR holds the primary role (then its database stays fenced) and the dr program whether its
database was promoted (then it stays a primary). The lease is the one source of truth: a later
`pulumi up` of either stack renders what the lease says instead of undoing a failover.

`READER` is what the programs call; `tools/harness.py` replaces it so offline plans read no AWS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from failover.lease import DR, DynamoLeaseStore, Lease


class LeaseReadError(RuntimeError):
    """The lease table could not be read: the program must stop, not guess."""


@dataclass(frozen=True)
class LeaseView:
    table: str
    region: str
    table_exists: bool
    lease: Lease | None
    """None: no guard has run yet (or the table does not exist)."""

    @property
    def dr_holds(self) -> bool:
        return self.lease is not None and self.lease.holder == DR

    def describe(self) -> str:
        if not self.table_exists:
            return f"lease table {self.table} ({self.region}) does not exist yet"
        if self.lease is None:
            return f"lease table {self.table} ({self.region}) holds no lease: no guard has run yet"
        return f"the {self.lease.holder} region holds the lease (epoch {self.lease.epoch})"


def read_from_dynamodb(table: str, region: str) -> LeaseView:
    """One consistent read through boto3 with the deployer's AWS credentials (the provider's)."""
    import boto3  # noqa: PLC0415 - only the real deployment path needs it
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    client = boto3.client("dynamodb", region_name=region)
    try:
        lease = DynamoLeaseStore(client, table).read()
    except client.exceptions.ResourceNotFoundException:
        return LeaseView(table, region, table_exists=False, lease=None)
    except (BotoCoreError, ClientError) as error:
        raise LeaseReadError(f"could not read lease table {table} in {region}: {error}") from error
    return LeaseView(table, region, table_exists=True, lease=lease)


READER: Callable[[str, str], LeaseView] = read_from_dynamodb
