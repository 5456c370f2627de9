"""`ReplicationDns`: the primary's replication host name (`drReplication.hostname`) in Route 53,
pointing at the replication load balancer.

The prod stack owns it: it owns the load balancer whose addresses the record carries, the name
is its setting and in its server certificate, and `pulumi up -s prod` is what changes the
addresses (nodes replaced, the pool resized), so the record follows in the same update. Owned by
the dr stack, it would go stale until the next `pulumi up -s dr`, and it would have to exist
before the dr stack's first bootstrap anyway."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

# Short: a load balancer whose addresses move (a node replaced) must be followed within a minute.
TTL_SECONDS = 60


@dataclass(frozen=True)
class ReplicationDnsArgs:
    """Inputs of `ReplicationDns`."""

    hostname: str
    hosted_zone_id: str
    service: k8s.core.v1.Service
    """The `LoadBalancer` Service the DR region connects to."""
    provider: aws.Provider
    tags: Mapping[str, str]


def record_for(ingress: Sequence[Mapping[str, Any]]) -> tuple[str, list[str]]:
    """(type, values) of the record for a load balancer's `status.loadBalancer.ingress`: an A record
    of its addresses (k3s ServiceLB: the nodes'), or a CNAME to its host name (a cloud load balancer)."""
    addresses = sorted(str(i["ip"]) for i in ingress if i.get("ip"))
    if addresses:
        return "A", addresses
    names = sorted(str(i["hostname"]) for i in ingress if i.get("hostname"))
    if names:
        return "CNAME", names[:1]
    raise ValueError("the replication load balancer has no address: check the Service's events")


def _ingress(status: Any) -> list[dict[str, Any]]:
    balancer = getattr(status, "load_balancer", None)
    return [
        {"ip": getattr(i, "ip", None), "hostname": getattr(i, "hostname", None)}
        for i in (getattr(balancer, "ingress", None) or [])
    ]


class ReplicationDns(pulumi.ComponentResource):
    """One record, `hostname` -> the load balancer."""

    def __init__(self, name: str, args: ReplicationDnsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:ReplicationDns", name, None, opts)
        # The Kubernetes provider waits for a LoadBalancer Service to be given an address.
        record = args.service.status.apply(lambda status: record_for(_ingress(status)))
        self.record = aws.route53.Record(
            f"{name}-record",
            zone_id=args.hosted_zone_id,
            name=args.hostname,
            type=record.apply(lambda r: r[0]),
            ttl=TTL_SECONDS,
            records=record.apply(lambda r: r[1]),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.register_outputs({"hostname": args.hostname})
