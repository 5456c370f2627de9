"""`python -m failover.cli status|failback --confirm`: the operator's side of the lease.

`failback` is the last step of the failback runbook (docs/runbooks/dr-failover.md): once the
primary's database has been rebuilt from DR and switched over, the primary takes the lease back
(epoch + 1) and Route 53 lets the primary's health check decide again.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import boto3

from failover.aws import release_traffic
from failover.lease import DR, PRIMARY, DynamoLeaseStore


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="failover", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=("status", "failback"))
    parser.add_argument("--table", required=True, help="the lease table (the dr stack's output failoverLeaseTable)")
    parser.add_argument("--region", required=True, help="the DR region")
    parser.add_argument("--health-check", help="the primary's health check id (failback)")
    parser.add_argument(
        "--confirm", action="store_true", help="failback: the primary database follows DR and is caught up"
    )
    args = parser.parse_args(argv)
    store = DynamoLeaseStore(boto3.client("dynamodb", region_name=args.region), args.table)
    lease = store.read()
    print(f"lease: {lease}")
    if args.command == "status":
        return 0
    if lease is None or lease.holder != DR:
        print("failback: DR does not hold the lease; nothing to fail back", file=sys.stderr)
        return 2
    if not args.confirm or not args.health_check:
        print("failback: needs --health-check and --confirm (see docs/runbooks/dr-failover.md)", file=sys.stderr)
        return 2
    taken = store.take_over(lease, PRIMARY, time.time())
    if taken is None:
        print("failback: the lease changed meanwhile; run status and try again", file=sys.stderr)
        return 1
    release_traffic(boto3.client("route53"), args.health_check)
    print(f"failback: the primary holds the lease (epoch {taken.epoch}); Route 53 follows its health check again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
