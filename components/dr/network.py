"""`DrNetwork`: the DR VPC over three availability zones. Data lives in private subnets with no
route from the internet; public subnets hold only the NAT gateways (one per zone, so losing a
zone does not cut the others off). Every flow is logged to the audit bucket."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from settings.dr import DrSettings

# Client ports of the DR data stores; reachable only from inside the VPC.
DATA_PORTS = {"postgres": 5432, "redis": 6379, "qdrant": 6333}


@dataclass(frozen=True)
class DrNetworkArgs:
    """Inputs of `DrNetwork`."""

    dr: DrSettings
    tags: Mapping[str, str]
    provider: aws.Provider
    flow_log_destination: str
    """S3 ARN (with prefix) the VPC flow logs go to."""
    flow_log_bucket_policy: pulumi.Resource | None = None
    """The destination's bucket policy, which must admit log delivery before the flow log exists."""


def subnet_plan(vpc_cidr: str, zones: int = 3) -> tuple[list[str], list[str]]:
    """(private, public) CIDRs: the VPC cut in sixteen; the first `zones` private, the next public."""
    network = ipaddress.IPv4Network(vpc_cidr)
    blocks = [str(block) for block in network.subnets(prefixlen_diff=4)]
    return blocks[:zones], blocks[zones : 2 * zones]


class DrNetwork(pulumi.ComponentResource):
    """`private_subnet_ids` for data and EKS nodes; `data_security_group_id` admits only the VPC."""

    def __init__(self, name: str, args: DrNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sophia:dr:Network", name, None, opts)
        dr = args.dr
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=dr.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={**tags, "Name": f"{name}-vpc"},
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="s3",
            log_destination=args.flow_log_destination,
            max_aggregation_interval=60,
            tags=tags,
            # Without our policy in place, log delivery writes its own over it ("This policy
            # overwrites any existing policy", VPC User Guide, flow logs to S3).
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(depends_on=[args.flow_log_bucket_policy] if args.flow_log_bucket_policy else []),
            ),
        )
        # No rule: the VPC's default security group admits nothing.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=self.vpc.id, tags=tags, opts=child)
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, tags=tags, opts=child)
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
            tags=tags,
            opts=child,
        )
        private_cidrs, public_cidrs = subnet_plan(dr.vpc_cidr)
        self.nat_public_ips: list[pulumi.Output[str]] = []
        """The region's egress addresses: the primary's replication endpoint admits only these."""
        self.private_subnet_ids: list[pulumi.Output[str]] = []
        self.public_subnet_ids: list[pulumi.Output[str]] = []
        for index, zone in enumerate(dr.availability_zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=self.vpc.id,
                cidr_block=public_cidrs[index],
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**tags, "Name": f"{name}-public-{zone}", "kubernetes.io/role/elb": "1"},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}", subnet_id=public.id, route_table_id=public_routes.id, opts=child
            )
            address = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", tags=tags, opts=child)
            self.nat_public_ips.append(address.public_ip)
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{zone}", subnet_id=public.id, allocation_id=address.id, tags=tags, opts=child
            )
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=self.vpc.id,
                cidr_block=private_cidrs[index],
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={**tags, "Name": f"{name}-private-{zone}", "kubernetes.io/role/internal-elb": "1"},
                opts=child,
            )
            routes = aws.ec2.RouteTable(
                f"{name}-private-{zone}",
                vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags=tags,
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=private.id, route_table_id=routes.id, opts=child
            )
            self.private_subnet_ids.append(private.id)
            self.public_subnet_ids.append(public.id)
        self.data_security_group = aws.ec2.SecurityGroup(
            f"{name}-data",
            vpc_id=self.vpc.id,
            description="DR data stores: client ports from inside the VPC only",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=port, to_port=port, cidr_blocks=[dr.vpc_cidr], description=store
                )
                for store, port in DATA_PORTS.items()
            ],
            egress=[
                aws.ec2.SecurityGroupEgressArgs(
                    protocol="-1", from_port=0, to_port=0, cidr_blocks=[dr.vpc_cidr], description="inside the VPC"
                )
            ],
            tags=tags,
            opts=child,
        )
        self.register_outputs({"vpcId": self.vpc.id})
