"""`python -m failover.cli status|failback|release`: the operator's side of the lease.

The failback runbook (docs/runbooks/dr-failover.md) uses them in this order. `failback --confirm`,
once the primary's database has been rebuilt as a replica of DR and caught up: the primary takes the
lease back (epoch + 1), before DR is demoted, so the promoter (which re-applies DR's promotion every
minute while DR holds the lease) cannot undo the demotion. Its guard renews at once. `release`,
once the primary's database has been promoted: Route 53 lets the primary's health check decide
again (until then it keeps answering with DR, which is still taking the writes).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import boto3

from failover.aws import release_traffic
from failover.lease import DR, PRIMARY, DynamoLeaseStore, Lease


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="failover", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=("status", "failback", "release"))
    parser.add_argument("--table", required=True, help="the lease table (the dr stack's output failoverLeaseTable)")
    parser.add_argument("--region", required=True, help="the DR region")
    parser.add_argument(
        "--health-check", help="release: the primary's health check id (dr output primaryHealthCheckId)"
    )
    parser.add_argument(
        "--confirm", action="store_true", help="failback: the primary database follows DR and is caught up"
    )
    args = parser.parse_args(argv)
    store = DynamoLeaseStore(boto3.client("dynamodb", region_name=args.region), args.table)
    lease = store.read()
    print(f"lease: {lease}")
    if args.command == "status":
        return 0
    if args.command == "release":
        return release(lease, args.health_check)
    if lease is None or lease.holder != DR:
        print("failback: DR does not hold the lease; nothing to fail back", file=sys.stderr)
        return 2
    if not args.confirm:
        print("failback: needs --confirm (see docs/runbooks/dr-failover.md)", file=sys.stderr)
        return 2
    taken = store.take_over(lease, PRIMARY, time.time())
    if taken is None:
        print("failback: the lease changed meanwhile; run status and try again", file=sys.stderr)
        return 1
    print(f"failback: the primary holds the lease (epoch {taken.epoch}); Route 53 still answers with DR")
    return 0


def release(lease: Lease | None, health_check: str | None) -> int:
    """Unpin the primary's health check, only once the primary holds the lease again."""
    if lease is None or lease.holder != PRIMARY:
        print("release: the primary does not hold the lease; run failback first", file=sys.stderr)
        return 2
    if not health_check:
        print("release: needs --health-check (the dr stack's output primaryHealthCheckId)", file=sys.stderr)
        return 2
    release_traffic(boto3.client("route53"), health_check)
    print("release: Route 53 follows the primary's health check again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
